"""An image HDU's ``DATASUM`` and ``CHECKSUM`` cards checked against its bytes: a mismatch is a corrupt file.

Archive files often carry the FITS checksum convention's cards: ``DATASUM``, the 32-bit ones'
complement sum of the HDU's data records (a decimal string), and ``CHECKSUM``, encoded so that the
sum of the whole HDU, header and data, is -0 (all ones). A file whose bytes changed after it was
written (a new-user trial: 40 data bytes overwritten with 0x7f, ``fitscheck``: "BAD ... Datasum
verification failed") was read as good data, pixels of 3.39e38 and flags 0, and scored.
:func:`checksum_defect` checks the cards of the HDU a reader chose, on the bytes
:func:`pipeline.sources.compressed.whole_bytes` gave (a gzip file's decompressed ones), as cfitsio's
``fits_verify_chksum`` and astropy's ``verify_datasum``/``verify_checksum`` do; a header without
the cards costs one search of its bytes.

A tile-compressed image (``.fits.fz``) is a binary table: its ``DATASUM``/``CHECKSUM`` are of the
table's (compressed) bytes, checked here; its ``ZDATASUM``/``ZHECKSUM`` (of the uncompressed image,
which cfitsio does not check either) are not. Files over the fast reader's size (not cutouts), or
whose compressed stream is cut, are not checked; neither is an empty or non-integer ``DATASUM``.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.sources.fast_fits import BLOCK, CARD, NotSimpleImageError, RawHeader

_END = b"END" + b" " * 77
_ONES = 0xFFFFFFFF
_MAX_HEADER_BLOCKS = 1024


def checksum_defect(raw: bytes | None, index: int) -> str | None:
    """Why HDU ``index`` of a FITS file's bytes fails its ``DATASUM`` or ``CHECKSUM`` card; None if not.

    Parameters
    ----------
    raw
        The file's (decompressed) bytes; None (not read whole) is not checked.
    index
        The HDU the readers chose (0: the primary HDU).

    Returns
    -------
    str or None
        ``corrupt file (DATASUM 123 does not match its data: 456)``, or ``corrupt file (CHECKSUM
        'AbCd...' does not match its header and data)`` where the data match their DATASUM (or it is
        absent); None where the cards match, are absent or empty, or the HDU is not found whole.
        Never raises.
    """
    if raw is None:
        return None
    try:
        span = _hdu_span(raw, index)
    except (NotSimpleImageError, ValueError, TypeError, KeyError):
        return None  # the readers read it; a header this walk cannot follow is not checked
    if span is None:
        return None
    start, data_start, data_end, header = span
    data = memoryview(raw)[data_start : min(data_end, len(raw))]
    datasum = None
    written = str(header.get("DATASUM", "")).strip()  # a string by the convention; an integer read too
    if written.isdigit():
        datasum = ones_complement_sum(data)
        if datasum != int(written):
            return f"corrupt file (DATASUM {written} does not match its data: {datasum})"
    checksum = header.get("CHECKSUM")
    if isinstance(checksum, str) and checksum.strip():
        datasum = ones_complement_sum(data) if datasum is None else datasum
        if ones_complement_sum(memoryview(raw)[start:data_start], datasum) not in (0, _ONES):
            return f"corrupt file (CHECKSUM '{checksum.strip()}' does not match its header and data)"
    return None


def ones_complement_sum(data: bytes | memoryview, start: int = 0) -> int:
    """The 32-bit ones' complement sum of ``data`` (big-endian words, zero-padded), added to ``start``.

    The FITS checksum convention's sum (astropy's ``_compute_checksum``, cfitsio's ``ffcsum``): a
    ``DATASUM`` card's value is that of the HDU's data records.

    >>> ones_complement_sum(b"\\xff\\xff\\xff\\xff\\x00\\x00\\x00\\x02")  # carry wraps around
    2
    """
    if len(data) % 4:
        data = bytes(data) + b"\x00" * (4 - len(data) % 4)
    total = start + int(np.frombuffer(data, ">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & _ONES) + (total >> 32)
    return total


def _hdu_span(raw: bytes, index: int) -> tuple[int, int, int, RawHeader] | None:
    """(header start, data start, padded data end, header) of HDU ``index``; None where that header
    lacks both cards, or the file ends before it."""
    start = 0
    for place in range(index + 1):
        end = _end_card(raw, start)
        if end is None:
            return None
        data_start = start + -(-(end + CARD - start) // BLOCK) * BLOCK
        if (
            place == index
            and raw.find(b"DATASUM =", start, end) < 0
            and raw.find(b"CHECKSUM=", start, end) < 0
        ):
            return None  # the common file: no cards, no parse
        text = raw[start:end].decode("latin-1")
        header = RawHeader([text[i : i + CARD] for i in range(0, len(text), CARD)])
        data_end = data_start + -(-_data_bytes(header) // BLOCK) * BLOCK
        if place == index:
            return start, data_start, data_end, header
        start = data_end
    return None


def _end_card(raw: bytes, start: int) -> int | None:
    """Where the END card of the header at ``start`` begins; None if none (within 1024 blocks)."""
    limit = min(len(raw), start + _MAX_HEADER_BLOCKS * BLOCK)
    found = raw.find(b"END", start, limit)
    while found >= 0:
        if (found - start) % CARD == 0 and raw[found : found + CARD] == _END:
            return found
        found = raw.find(b"END", found + 1, limit)
    return None


def _data_bytes(header: RawHeader) -> int:
    """The bytes of an HDU's data, heap included (FITS 4.0, eq. 2; random groups, eq. 4)."""
    naxis = int(header["NAXIS"])
    if naxis == 0:
        return 0
    axes = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
    if header.get("GROUPS") is True and axes[0] == 0:
        axes = axes[1:]
    count = math.prod(axes)
    return (
        abs(int(header["BITPIX"]))
        // 8
        * int(header.get("GCOUNT", 1))
        * (int(header.get("PCOUNT", 0)) + count)
    )
