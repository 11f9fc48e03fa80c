"""The fastest reader of the common cutout file: one uncompressed floating-point primary image.

Survey cutouts are overwhelmingly one primary HDU of ``BITPIX = -32`` (or -64) pixels and a
header of a few dozen cards. For exactly that kind of file, :func:`read_simple_image` reads the
whole file in one system call, finds the cards by their fixed 80-column positions, and views the
pixels in place (big-endian, as FITS stores them). It parses a card's value only when asked
(:class:`RawHeader`), so a file costs a few tens of microseconds instead of fitsio's ~100 us
(which parses every card into Python) or astropy's ~500 us.

Anything else is refused with :class:`NotSimpleImageError`, and the general readers of
:mod:`pipeline.sources.fits_io` (fitsio, then astropy) decide: tile-compressed files (a gzip or bzip2
file's bytes come here decompressed, their CRC checked: :mod:`pipeline.sources.compressed`),
images in extensions, integer images (``BLANK`` nulls, unsigned and scaled integers), scaled
floats (``BSCALE``/``BZERO`` other than 1/0), files with extensions after the primary image (the
layout may name another HDU, or the file hold several images: :mod:`pipeline.sources.hdu_choice`),
random groups, degenerate or extra axes, headers
with ``CONTINUE`` or unparsable value cards, headers without ``END``, and truncated data. The
pixels and flags are the same whichever reader reads a file (``tests/test_fast_fits.py`` checks
every kind against astropy).

Examples
--------
>>> import io, numpy as np
>>> from astropy.io import fits
>>> buffer = io.BytesIO()
>>> fits.PrimaryHDU(np.ones((3, 4), ">f4"), fits.Header({"BUNIT": "Jy"})).writeto(buffer)
>>> image = read_simple_image_bytes(buffer.getvalue())
>>> image.dims, image.header["BUNIT"], image.data.dtype.str
((3, 4), 'Jy', '>f4')
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BLOCK = 2880
CARD = 80
_END = b"END" + b" " * 77
_FLOAT_DTYPES = {-32: ">f4", -64: ">f8"}
_REFUSED = frozenset({"GROUPS", "PCOUNT", "GCOUNT", "CONTINUE", "ZIMAGE", "XTENSION"})
_INTEGER = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$")
_MAX_HEADER_BLOCKS = 64


class NotSimpleImageError(Exception):
    """The file is not one uncompressed float primary image: a general reader must read it."""


class RawHeader:
    """A FITS header read straight from its bytes, values parsed on demand.

    Offers what :mod:`pipeline.sources.positions` and :mod:`pipeline.sources.headers` use of a
    fitsio ``FITSHDR``: ``in``, ``[]``, ``get``, ``keys()`` and ``records()`` (dicts with
    ``name``, ``card_string`` and ``value``). The first card of a keyword wins, as in astropy
    and fitsio. ``HIERARCH`` cards and odd values go through astropy's card parser.
    """

    __slots__ = ("_cards", "_index", "_names", "_values")

    def __init__(self, cards: list[str]) -> None:
        self._cards = cards
        self._names = names = [card[:8].rstrip() for card in cards]
        self._values: dict[str, object] = {}
        if "HIERARCH" in names:
            for position, keyword in enumerate(names):
                if keyword == "HIERARCH":
                    names[position] = _astropy_card(cards[position]).keyword
        # keyword -> its first card: built from the last card back, so the first one is written last
        upper = [keyword.upper() for keyword in names]
        self._index: dict[str, int] = dict(zip(reversed(upper), range(len(upper) - 1, -1, -1)))
        self._index.pop("", None)  # blank cards

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self._index

    def __getitem__(self, keyword: str) -> object:
        keyword = keyword.upper()
        if keyword not in self._values:
            self._values[keyword] = card_value(self._cards[self._index[keyword]])
        return self._values[keyword]

    def get(self, keyword: str, default: object = None) -> object:
        try:
            return self[keyword]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        return list(self._index)

    def card_images(self, keywords: tuple[str, ...]) -> tuple[str | None, ...]:
        """The 80-column card of each of ``keywords`` (upper case) whose value ``[]`` gives, None if
        absent: what decides those values (:mod:`pipeline.sources.card_memo`)."""
        index, cards = self._index, self._cards
        return tuple([cards[index[keyword]] if keyword in index else None for keyword in keywords])

    def cards(self) -> Iterator[tuple[str, str]]:
        """(keyword, 80-column card image) of every card, in file order (no END)."""
        return zip(self._names, self._cards)

    def records(self) -> list[dict]:
        """fitsio-style records; commentary cards (no value indicator) keep their text as value."""
        records = []
        for position, (name, card) in enumerate(self.cards()):
            if card[8:10] == "= " or card.startswith("HIERARCH"):
                first = self._index.get(name.upper()) == position
                value = self[name] if first else card_value(card)
            else:
                value = card[8:].rstrip()
            records.append({"name": name, "card_string": card, "value": value})
        return records


@functools.lru_cache(maxsize=4096)
def card_value(card: str) -> object:
    """The value of one 80-column card: str, bool, int, float, or None when it has none.

    Fixed- and free-format strings, logicals, integers and reals (``D`` exponents too) are parsed
    here; anything else (complex values, HIERARCH cards, malformed values) by astropy, so values
    are always astropy's. Remembered by card image (values are immutable): the files of a set
    repeat most of their cards (BITPIX, NAXISn, CTYPEn, CDELTn, BUNIT, ...), and each parse costs
    a few microseconds.

    Raises
    ------
    NotSimpleImageError
        If astropy cannot parse the card either (the general readers then read the file).
    """
    if card[8:10] != "= " or card.startswith("HIERARCH"):
        return _astropy_card(card).value
    field = card[10:].lstrip()
    if not field or field.startswith("/"):
        return None
    if field.startswith("'"):
        end = 1
        while True:
            end = field.find("'", end)
            if end < 0:
                return _astropy_card(card).value
            if field[end + 1 : end + 2] == "'":
                end += 2
                continue
            break
        return field[1:end].replace("''", "'").rstrip()
    token = field.split("/", 1)[0].strip()
    if token == "T":
        return True
    if token == "F":
        return False
    if _INTEGER.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token.replace("D", "E").replace("d", "e"))
    return _astropy_card(card).value


def _astropy_card(card: str):
    """astropy's parse of ``card``; NotSimpleImageError when astropy cannot parse it either."""
    import warnings

    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = fits.Card.fromstring(card)
            parsed.value  # noqa: B018 - parse now, inside the warning filter
        except Exception as exc:  # astropy raises VerifyError, ValueError, ... on malformed cards
            raise NotSimpleImageError(f"unparsable card {card[:8].strip()!r}") from exc
    return parsed


@dataclass(frozen=True)
class SimpleImage:
    """One uncompressed float primary image: its header, its (ny, nx) and its big-endian pixels."""

    header: RawHeader
    dims: tuple[int, int]
    data: np.ndarray | None
    """(ny, nx) ``>f4`` or ``>f8`` view of the file's bytes, or None when not asked for."""


def read_simple_image(path: str | os.PathLike[str], expected: tuple[int, int] | None = None) -> SimpleImage:
    """Read ``path`` if it is one uncompressed float primary image; else raise NotSimpleImageError.

    ``expected`` is the shape the caller wants: an image of another shape comes back without
    pixels (``data`` None), as the general readers do for a WRONG_SHAPE band.

    Raises
    ------
    NotSimpleImageError
        For every file this reader does not read itself (see the module docstring).
    OSError
        If the file cannot be opened or read.
    """
    with open(path, "rb", buffering=0) as stream:
        raw = stream.read()
    return read_simple_image_bytes(raw, expected)


def read_simple_image_bytes(raw: bytes, expected: tuple[int, int] | None = None) -> SimpleImage:
    """:func:`read_simple_image` on a file's bytes already in memory."""
    if raw[:9] != b"SIMPLE  =" or len(raw) < BLOCK:
        raise NotSimpleImageError("not a plain FITS primary header")
    end = -1
    for block in range(min(len(raw) // BLOCK, _MAX_HEADER_BLOCKS)):
        found = raw.find(b"END", block * BLOCK, (block + 1) * BLOCK)
        while found >= 0:
            if found % CARD == 0 and raw[found : found + CARD] == _END:
                end = found
                break
            found = raw.find(b"END", found + 1, (block + 1) * BLOCK)
        if end >= 0:
            break
    if end < 0:
        raise NotSimpleImageError("no END card")
    text = raw[:end].decode("latin-1")
    cards = [text[i : i + CARD] for i in range(0, end, CARD)]
    header = RawHeader(cards)
    keys = header._index
    if _REFUSED.intersection(keys) or cards[0][10:].split("/", 1)[0].strip() != "T":
        raise NotSimpleImageError("not a simple primary image")
    try:
        bitpix, naxis = header["BITPIX"], header["NAXIS"]
        dtype = _FLOAT_DTYPES[bitpix]
        if naxis != 2:
            raise NotSimpleImageError(f"{naxis} axes")
        nx, ny = header["NAXIS1"], header["NAXIS2"]
        if ("BSCALE" in keys and header["BSCALE"] != 1) or ("BZERO" in keys and header["BZERO"] != 0):
            raise NotSimpleImageError("scaled floats")
    except (KeyError, TypeError) as exc:
        raise NotSimpleImageError(f"not a float image ({exc})") from None
    if not (type(nx) is int and type(ny) is int and nx > 0 and ny > 0):
        raise NotSimpleImageError("no pixels")
    offset = (end // BLOCK + 1) * BLOCK
    count = nx * ny
    after = offset + -(-count * abs(bitpix) // 8 // BLOCK) * BLOCK
    if raw[after : after + 8] == b"XTENSION":  # which image to read is for the general readers to say
        raise NotSimpleImageError("extensions follow the primary image")
    if expected is not None and (ny, nx) != tuple(expected):
        return SimpleImage(header, (ny, nx), None)
    if len(raw) < offset + count * abs(bitpix) // 8:
        raise NotSimpleImageError("truncated data")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(ny, nx)
    return SimpleImage(header, (ny, nx), data)
