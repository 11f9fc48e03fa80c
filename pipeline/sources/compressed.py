"""A FITS file's bytes, a compressed one's decompressed with its stream read to its end and checked.

The readers take a compressed file by its first bytes, whatever its name: gzip (``.gz``), bzip2
(``.bz2``), and for astropy xz and zip too. A gzip stream's CRC-32 and length are in its trailer,
after the data, and fitsio and astropy stop decompressing once they have the pixels: a new-user
trial's ``.fits.gz`` with 50 bytes zeroed mid-file, or one bit flipped (``gzip -t``: "invalid
compressed data--crc error"), was read as good data with wrong pixels and flags 0.
:func:`whole_bytes` reads every compressed stream to its end, so each check its format carries is
made (gzip: CRC-32 and length of each member; bzip2: each block's CRC and the stream's; xz: each
block's check; zip: the member's CRC-32), and a failed one raises :class:`CorruptStreamError`
naming it. A cutout's stream is small, so this costs one decompression of a few tens of kB
(fitsio then reads the file again only when the fast reader cannot read the bytes).

Trailing bytes after the last whole stream (zeros, or anything else) are ignored, as ``gzip -d``, bzip2
and cfitsio do: every stream before them was checked. Null bytes after an xz stream are its stream
padding (the xz format's), skipped to the next stream as ``xz -d`` does (review: a valid file of three
xz streams each followed by 4 null bytes was read as its first stream alone); a stream cut short, its
next stream's magic too, raises EOFError ``its xz stream ends early``. Bytes that start as a stream of
the file's format does (its magic) are a stream, checked as the first: Python's bz2 and lzma readers
took a later stream that fails within its first 8 kB for such trailing bytes, and the file for its first
streams alone.

A tile-compressed image (``.fits.fz``) has no check of its own: :func:`tile_failure` says in words
which of its tiles does not decompress (trial: ``unreadable data (error: Error -3 while decompressing
data)``).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
_CRC_FAILURES = ("CRC check failed", "Incorrect length", "incorrect data check", "incorrect length check")


class CorruptStreamError(Exception):
    """A compressed file's stream fails a check of its format (CRC, length, block): its pixels are not
    the ones written. The message says which, e.g. ``its gzip stream fails its CRC check``."""


class StreamCutError(EOFError):
    """A compressed file's stream ends early, ``its xz stream ends early``; ``partial``: the bytes
    decompressed before the cut (None over the bytes kept), so the readers may read its header."""

    def __init__(self, message: str, partial: bytes | None) -> None:
        super().__init__(message)
        self.partial = partial


def compression(head: bytes) -> str:
    """The compression a file's first bytes announce: "gzip", "bzip2", "xz", "zip", or "" (none).

    >>> compression(b"\\x1f\\x8b\\x08\\x00"), compression(b"SIMPLE  =")
    ('gzip', '')
    """
    magics = {"gzip": GZIP_MAGIC, "bzip2": _BZIP2_MAGIC, "xz": _XZ_MAGIC, "zip": _ZIP_MAGIC}
    return next((kind for kind, magic in magics.items() if head.startswith(magic)), "")


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts as a gzip stream does."""
    with open(path, "rb") as stream:
        return stream.read(2) == GZIP_MAGIC


def whole_bytes(path: str | os.PathLike[str], size: int, keep: int) -> bytes | None:
    """The file's bytes, decompressed where it is compressed, every check of its stream(s) made.

    Parameters
    ----------
    path
        The file.
    size
        Its size in bytes (``os.stat``).
    keep
        The most bytes to return: a larger file (decompressed) is still read to its end and checked,
        and None comes back.

    Returns
    -------
    bytes or None
        The plain or decompressed bytes; None where they are over ``keep`` bytes, or the file is a zip
        archive of other than one member (the readers decide).

    Raises
    ------
    CorruptStreamError
        If a compressed stream fails a check (CRC, length, invalid data): the message says which.
    StreamCutError
        If a compressed stream ends early (a cut file: TRUNCATED), an EOFError: its message is the
        reason's words, ``its xz stream ends early``; its ``partial`` the bytes before the cut.
    OSError
        If the file cannot be read.
    """
    with open(path, "rb", buffering=0) as stream:
        raw = stream.read() if size <= keep else stream.read(8)
        kind = compression(raw[:8])
        if not kind:
            return raw if size <= keep else None
        if size > keep:
            stream.seek(0)
            return _decompressed(stream, kind, keep)
    return _decompressed(io.BytesIO(raw), kind, keep)


@contextlib.contextmanager
def decompressed(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """The file's bytes as a binary stream: a gzip, bzip2 or xz file's decompressed, every stream of it
    (the xz padding between them skipped, as :func:`whole_bytes` reads them); a plain or zip file's as
    they are.

    Raises
    ------
    EOFError, OSError, lzma.LZMAError
        From ``read``, where a stream ends early or fails a check (:func:`whole_bytes` says which).
    """
    with open(path, "rb") as stream:
        kind = compression(stream.read(8))
        stream.seek(0)
        yield stream if kind in ("", "zip") else io.BufferedReader(_PartsReader(_parts(stream, kind)))


@contextlib.contextmanager
def fits_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """The file as astropy is to read it, a seekable binary stream: an xz file's streams decompressed
    into a temporary file (astropy's xz reader stops at stream padding: review, a valid padded file over
    the readers' in-memory limit was TRUNCATED; a cut one's bytes before the cut, its header read from
    them); any other file as it is (astropy reads gzip and bzip2 streams whole).
    """
    with open(path, "rb") as stream:
        if compression(stream.read(8)) != "xz":
            stream.seek(0)
            yield stream
            return
    with tempfile.TemporaryDirectory(prefix="lenshunt-xz-") as folder:
        copy = os.path.join(folder, "decompressed.fits")
        # part by part: a cut's EOFError keeps every part before it (the readers read its header)
        with open(path, "rb") as stream, open(copy, "wb") as out, contextlib.suppress(EOFError):
            for part in _parts(stream, "xz"):
                out.write(part)
        with open(copy, "rb") as stream:  # astropy's read-only mode takes a file opened "rb" alone
            yield stream


class _PartsReader(io.RawIOBase):
    """A raw binary stream of decompressed parts (for :class:`io.BufferedReader`)."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts, self._rest = parts, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        self._rest = self._rest or next(self._parts, b"")
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


def _decompressed(stream, kind: str, keep: int) -> bytes | None:
    """The stream's decompressed bytes (None over ``keep``), read to the end of its last stream."""
    kept = _Kept(keep)
    try:
        if kind == "zip":
            return _unzipped(stream, keep)
        for part in _parts(stream, kind):
            kept.add(part)
        return kept.joined()
    except EOFError as exc:  # the words cut_short and the readers give: "its xz stream ends early"
        raise StreamCutError(f"its {kind} stream ends early", kept.joined()) from exc
    except (OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise CorruptStreamError(_failure(kind, exc)) from exc


def _parts(stream, kind: str) -> Iterator[bytes]:
    """The decompressed parts of a gzip, bzip2 or xz ``stream``, every stream of it read and checked."""
    if kind != "gzip":
        yield from _stream_parts(stream, kind)
        return
    with gzip.GzipFile(fileobj=stream) as decoder:
        yield from _member_parts(decoder, trailing_ok=True)


def _member_parts(decoder, trailing_ok: bool = False) -> Iterator[bytes]:
    """Everything ``decoder`` (a gzip file or a zip member) gives, part by part."""
    given = False
    while True:
        try:
            part = decoder.read1(_CHUNK)  # one member at a time: trailing bytes raise after it
        except OSError as exc:  # trailing bytes after a whole, checked gzip member: ignored, as gzip -d does
            if trailing_ok and given and str(exc).startswith("Not a gzipped file"):
                return
            raise
        if not part:
            return
        given = True
        yield part


class _Kept:
    """Decompressed parts, kept while their total is at most ``keep`` bytes (then only counted)."""

    def __init__(self, keep: int) -> None:
        self.keep, self.total = keep, 0
        self.parts: list[bytes] | None = []

    def add(self, part: bytes) -> None:
        self.total += len(part)
        if self.parts is not None and self.total <= self.keep:
            self.parts.append(part)
        else:
            self.parts = None

    def joined(self) -> bytes | None:
        return b"".join(self.parts) if self.parts is not None else None


def _stream_parts(stream, kind: str) -> Iterator[bytes]:
    """Every bzip2 or xz stream of ``stream`` decompressed and checked, one after the other; what follows
    the last, not starting with the format's magic, is trailing and ignored. An xz stream may be followed
    by stream padding, null bytes (a multiple of four, the xz format's 2.2), before the next one or the
    end: ``xz`` reads it (trial: three ``xz -c`` streams each followed by 4 null bytes were read as the
    first stream's bytes alone, "unreadable data (TypeError: buffer is too small ...)").

    Raises
    ------
    EOFError
        If a stream ends before its end-of-stream marker.
    OSError, lzma.LZMAError
        If a stream fails a check (bzip2: ``Invalid data stream``; xz: ``Corrupt input data``, also for
        stream padding of other than a multiple of four bytes before a stream).
    """
    new = bz2.BZ2Decompressor if kind == "bzip2" else lzma.LZMADecompressor
    magic = _BZIP2_MAGIC if kind == "bzip2" else _XZ_MAGIC
    decoder, data, at_end = new(), b"", False
    while True:
        if decoder.eof:  # the bytes after a whole stream: another stream, padding or trailing
            data, padding = decoder.unused_data, 0
            while True:
                if kind == "xz":  # stream padding: null bytes
                    stripped = data.lstrip(b"\0")
                    padding, data = padding + len(data) - len(stripped), stripped
                if len(data) >= len(magic) or at_end:
                    break
                more = stream.read(_CHUNK)
                at_end, data = not more, data + more
            if at_end and data and magic.startswith(data):  # cut in the next stream's magic
                raise EOFError("Compressed file ended in a stream's magic")
            if not data.startswith(magic):
                return
            if padding % 4:
                raise lzma.LZMAError(f"Corrupt input data (stream padding of {padding} bytes)")
            decoder = new()
        elif decoder.needs_input and not data:
            data = stream.read(_CHUNK)
            if not data:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        part = decoder.decompress(data, _CHUNK)
        data = b""
        if part:
            yield part


def tile_failure(compression_type: str, index: int, exc: BaseException) -> str:
    """Why a tile-compressed image's pixels cannot be read, as a reason: ``corrupt file (a compressed tile
    of HDU 1 does not decompress: ...)``, what failed in words (path-free, no tile numbers).

    Parameters
    ----------
    compression_type : str
        The HDU's ``ZCMPTYPE`` (``GZIP_1``, ``GZIP_2``, ``RICE_1``, ``HCOMPRESS_1``, ``PLIO_1``).
    index : int
        The HDU's index in the file (0: the primary HDU).
    exc : BaseException
        What astropy raised decoding it: ``zlib.error``, ``EOFError`` or ``gzip.BadGzipFile`` for a GZIP
        tile, a ``ValueError`` where a tile gives too few values, cfitsio's message for the others.

    >>> tile_failure("GZIP_2", 1, zlib.error("Error -3 while decompressing data: invalid block type"))
    'corrupt file (a compressed GZIP_2 tile of HDU 1 does not decompress: invalid data, invalid block type)'
    >>> tile_failure("RICE_1", 1, Exception("decompression error: hit end of compressed byte stream"))
    'corrupt file (a compressed RICE_1 tile of HDU 1 does not decompress: hit end of compressed byte stream)'
    """
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, EOFError):
        detail = "its data end early"
    elif any(words in message for words in _CRC_FAILURES):
        detail = "it fails its CRC check"
    elif isinstance(exc, ValueError) and "reshape" in message:
        detail = "it gives another number of pixels than the tile holds"
    elif isinstance(exc, zlib.error):
        detail = "invalid data, " + message.split(": ", 1)[-1]
    else:  # cfitsio's decoders: "decompression error: ...", "qtree_decode64: bad format code"
        words = message.split(": ", 1)
        detail = words[-1] if words[0].startswith("decompression") else message or type(exc).__name__
    name = f"{str(compression_type).strip().upper()} ".lstrip()
    return f"corrupt file (a compressed {name}tile of HDU {index} does not decompress: {detail[:80]})"


def _unzipped(stream, keep: int) -> bytes | None:
    """The one member of a zip archive, its CRC-32 checked; None for other archives (or none)."""
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        return None  # no central directory (cut, or no archive): the readers decide
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            return None
        with archive.open(members[0]) as member:
            kept = _Kept(keep)
            for part in _member_parts(member):
                kept.add(part)
            return kept.joined()


def _failure(kind: str, exc: BaseException) -> str:
    """The failed check in words, path-free: ``its gzip stream fails its CRC check``, ``its bzip2 stream
    fails its checks: invalid data stream`` (bzip2 says no more of a block's CRC that fails)."""
    message = str(exc)
    if any(words in message for words in _CRC_FAILURES) or "Bad CRC-32" in message:
        return f"its {kind} stream fails its CRC check"
    detail = message.split(": ", 1)[-1].split(" (")[0].strip().rstrip(".") or type(exc).__name__
    return f"its {kind} stream fails its checks: {detail[:60].lower()}"


def cfitsio_decodes(header, compressed: bool, bitpix: int) -> bool:  # type: ignore[no-untyped-def]
    """Whether fitsio (cfitsio) may decode an image HDU's pixels (``header``: its header, ``ZBITPIX`` for
    a ``compressed`` one); else astropy does.

    Not an integer image that declares null pixels (``BLANK``, ``ZBLANK`` card or column: cfitsio
    returns them as numbers), nor a tile-compressed image of GZIP tiles: a trial's ``.fits.fz`` with 30
    bytes overwritten in a GZIP_1 tile made cfitsio's ``read`` hang for good (astropy says the tile is
    corrupt at once). astropy decodes such an image in some 15 ms against cfitsio's 2 ms (a 101x101
    float image, measured 2026-12-07); RICE (fpack's default), HCOMPRESS and PLIO tiles stay with cfitsio.

    >>> cfitsio_decodes({"ZCMPTYPE": "GZIP_1"}, True, -32), cfitsio_decodes({"ZCMPTYPE": "RICE_1"}, True, -32)
    (False, True)
    >>> cfitsio_decodes({"BLANK": -32768}, False, 16), cfitsio_decodes({}, False, 16)
    (False, True)
    """
    if compressed and str(header.get("ZCMPTYPE", "")).strip().upper().startswith("GZIP"):
        return False
    if bitpix <= 0:
        return True
    if "BLANK" in header or "ZBLANK" in header:
        return False
    n_fields = int(header.get("TFIELDS", 0) or 0)
    return not any(str(header.get(f"TTYPE{i}", "")).strip() == "ZBLANK" for i in range(1, n_fields + 1))
