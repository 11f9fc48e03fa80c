"""Whether a FITS file the readers refused was cut short: its compressed stream, or one of its headers.

A file cut inside a header (trial: the first 1000 bytes of a valid cutout, ``SIMPLE  = T`` and no
``END`` card) makes astropy raise "Empty or corrupt FITS file", and such a band was UNREADABLE, "not
a FITS file", while a file cut in its data was TRUNCATED. :func:`cut_short` walks the file's HDUs
(headers read, data skipped by the sizes its cards give) and says where it ends early; a header
without its END card that goes on into data (bytes no header holds) is not a cut one. It reads
the file again, and decompresses a compressed one whole, so it is called only for files the readers
refused.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
from typing import BinaryIO

_BLOCK = 2880
_CARD = 80
_GZIP_MAGIC = b"\x1f\x8b"
_END = b"END" + b" " * 77
_SIZE_KEYS = frozenset({"BITPIX", "NAXIS", "PCOUNT", "GCOUNT"})
_HEADER_BYTES = bytes(range(32, 127))  # a header holds printable ASCII only (FITS Paper I)


def cut_short(path: str | os.PathLike[str]) -> str:
    """Why the file ends early, or "" (whole, or not a FITS file, or a defect other than a cut).

    Parameters
    ----------
    path
        A FITS file, plain or gzip/bzip2 compressed.

    Returns
    -------
    str
        ``"its gzip stream ends early"`` (or bzip2); ``"its header ends at byte N, before its END
        card"`` for the primary header, ``"the header of HDU k ends ..."`` for an extension's (N
        counted in the uncompressed stream); else "".

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".fits") as cut:
    ...     _ = cut.write(b"SIMPLE  =                    T".ljust(80) + b"BITPIX  = -32".ljust(80))
    ...     cut.flush()
    ...     cut_short(cut.name)
    'its header ends at byte 160, before its END card'
    """
    kind = _compression(path)
    if kind:
        opener = gzip.open if kind == "gzip" else bz2.open
        try:
            with opener(path, "rb") as stream:
                while stream.read(1 << 20):
                    pass
        except EOFError:
            return f"its {kind} stream ends early"
        except Exception:  # a corrupt stream (bad CRC, bad block) is not a short one: UNREADABLE says why
            return ""
        with opener(path, "rb") as stream:
            return _header_cut(stream)
    with open(path, "rb") as stream:
        return _header_cut(stream)


def _compression(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as stream:
        magic = stream.read(3)
    return "gzip" if magic[:2] == _GZIP_MAGIC else "bzip2" if magic == b"BZh" else ""


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
                where = "its header" if hdu == 0 else f"the header of HDU {hdu}"
                return f"{where} ends at byte {position + len(block)}, before its END card"
            break
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
