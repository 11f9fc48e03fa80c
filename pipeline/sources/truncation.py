"""Whether a FITS file the readers refused was cut short: its compressed stream, or one of its headers.

A file cut inside a header (trial: the first 1000 bytes of a valid cutout, ``SIMPLE  = T`` and no
``END`` card) makes astropy raise "Empty or corrupt FITS file", and such a band was UNREADABLE, "not
a FITS file", while a file cut in its data was TRUNCATED. :func:`cut_short` walks the file's HDUs
(headers read, data skipped by the sizes its cards give) and says where it ends early; a header
without its END card that goes on into data (bytes no header holds) is not a cut one, and a header
whose END card is there but whose 2880-byte block is cut short is (trial: "not a FITS file"). A
compressed file's streams are read as :func:`pipeline.sources.compressed.whole_bytes` reads them
(several gzip members, bzip2 or xz streams, xz stream padding, trailing bytes; review: Python's
``lzma`` reader stopped at xz stream padding, and a cut ``.fits.xz`` was "not a FITS file"). It reads
the file again, and decompresses a compressed one whole, so it is called only for files the readers
refused.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

from pipeline.sources.compressed import CorruptStreamError, decompressed, whole_bytes

_BLOCK = 2880
_CARD = 80
_END = b"END" + b" " * 77
_SIZE_KEYS = frozenset({"BITPIX", "NAXIS", "PCOUNT", "GCOUNT"})
_HEADER_BYTES = bytes(range(32, 127))  # a header holds printable ASCII only (FITS Paper I)


def cut_short(path: str | os.PathLike[str]) -> str:
    """Why the file ends early, or "" (whole, or not a FITS file, or a defect other than a cut).

    Parameters
    ----------
    path
        A FITS file, plain or gzip, bzip2 or xz compressed (one stream or several).

    Returns
    -------
    str
        ``"its gzip stream ends early"`` (or bzip2, xz: the last stream, or one before it, ends before
        its end-of-stream marker, trailer or footer); ``"its header ends at byte N, before its END
        card"`` (or ``"..., short of its 2880-byte block"``, its END card there) for the primary
        header, ``"the header of HDU k ends ..."`` for an extension's (N counted in the uncompressed
        stream); else "" (a corrupt stream too: the readers say which check it fails).

    Raises
    ------
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".fits") as cut:
    ...     _ = cut.write(b"SIMPLE  =                    T".ljust(80) + b"BITPIX  = -32".ljust(80))
    ...     cut.flush()
    ...     cut_short(cut.name)
    'its header ends at byte 160, before its END card'
    """
    try:  # every stream read to its end (a cutout's: a few tens of kB), as the readers read it
        whole_bytes(path, os.stat(path).st_size, 0)
    except EOFError as exc:
        return str(exc)  # "its xz stream ends early"
    except CorruptStreamError:  # a corrupt stream (bad CRC, bad block) is not a short one: UNREADABLE
        return ""
    with decompressed(path) as stream:
        return _header_cut(stream)


def _header_cut(stream: BinaryIO) -> str:
    """Where the stream ends inside a header of its HDUs, or "" (it does not, or is no FITS file)."""
    position, hdu = 0, 0
    while True:
        block = stream.read(_BLOCK)
        if not block:
            return ""  # the file ends after an HDU's data: whole, as far as headers go
        if hdu == 0 and not block.startswith(b"SIMPLE  =" + b" " * 20 + b"T"):
            return ""  # not a FITS file: UNREADABLE says so
        if hdu > 0 and not block.startswith(b"XTENSION="):
            return ""  # padding or junk after the last HDU: not a cut header
        sizes: dict[str, int] = {}
        where = "its header" if hdu == 0 else f"the header of HDU {hdu}"
        while True:
            if block.translate(None, _HEADER_BYTES):
                return ""  # data where the header should go on: no END card, but not cut (UNREADABLE)
            for start in range(0, len(block) - _CARD + 1, _CARD):
                card = block[start : start + _CARD]
                if card == _END:
                    break
                _note_size_card(card, sizes)
            else:
                if len(block) == _BLOCK:
                    position += _BLOCK
                    block = stream.read(_BLOCK)
                    if block:
                        continue
                return f"{where} ends at byte {position + len(block)}, before its END card"
            break
        if len(block) < _BLOCK:  # trial: a cutout's first 1000 bytes, END at 400, were "not a FITS file"
            return f"{where} ends at byte {position + len(block)}, short of its 2880-byte block"
        position += _BLOCK
        data = _data_bytes(sizes)
        padded = -(-data // _BLOCK) * _BLOCK
        skipped = len(stream.read(padded)) if padded else 0
        if skipped < padded:
            return ""  # cut in its data: the readers say TRUNCATED
        position += padded
        hdu += 1


def _note_size_card(card: bytes, sizes: dict[str, int]) -> None:
    """Keep the integer value of a card that sizes the data (BITPIX, NAXISn, PCOUNT, GCOUNT)."""
    key = card[:8].decode("ascii", "replace").strip()
    if (key in _SIZE_KEYS or key.startswith("NAXIS")) and card[8:10] == b"= " and key not in sizes:
        with contextlib.suppress(ValueError):  # a size card astropy cannot read either: left out
            sizes[key] = int(card[10:].split(b"/")[0].strip())


def _data_bytes(sizes: dict[str, int]) -> int:
    """The data's size in bytes by FITS Paper I's formula (random groups: NAXIS1 = 0 left out)."""
    naxis = sizes.get("NAXIS", 0)
    if naxis == 0:
        return 0
    axes = [sizes.get(f"NAXIS{i}", 0) for i in range(1, naxis + 1)]
    if axes[0] == 0 and naxis > 1:  # random groups
        axes = axes[1:]
    count = 1
    for n in axes:
        count *= n
    return abs(sizes.get("BITPIX", 8)) // 8 * sizes.get("GCOUNT", 1) * (sizes.get("PCOUNT", 0) + count)
