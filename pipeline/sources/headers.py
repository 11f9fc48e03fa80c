"""What a cutout's FITS header says about the sky and the photometry, kept for the store.

:func:`summarise_header` keeps, verbatim, the header cards that define the band's world
coordinate system (WCS keywords of FITS Papers I-III and SIP distortion terms), its units
(``BUNIT``) and photometric calibration (zero points, ``PHOTFLAM``, ``EXPTIME``, ...), plus the
sky position keywords of the challenge files (``RA``, ``DEC``), their field cards (``NX``, ``NY``:
the image size in pixels; ``HIERARCH range x``: the field width in radians) and the cards of the
image's PSF and noise (``PSF_FWHM``, ``PSF_TYPE``, ``SEEING``, ``NOISESIG``, ...). Those stay true of a
cutout written back: the store holds each band's whole image, of the shape of the input (ingest
flags any other WRONG_SHAPE and keeps no pixels of it). The cards are stored as they were read (80-column
card images), so a cutout written back from the store (:mod:`pipeline.store.cutouts`) has the
input's WCS exactly, and the astronomer's tools (DS9, Aladin, astropy) read it unchanged. A store
holds :data:`MAX_CARDS` cards per band; a header with more kept cards is chosen from by
:func:`pipeline.sources.card_choice.choose_cards` (the data-defining cards first, a distortion whole
or not at all), never cut in file order.

Examples
--------
>>> from astropy.io import fits
>>> cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -2.7778e-05, "CD2_2": 2.7778e-05}
>>> summary = summarise_header(fits.Header({**cards, "BUNIT": "Jy"}))
>>> summary.bunit, round(summary.pixel_scale_arcsec, 3), len(summary.cards) // CARD_LENGTH
('Jy', 0.1, 5)
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np

from pipeline.sources.card_choice import CARD_LENGTH, STORE_CARDS
from pipeline.sources.card_memo import by_cards
from pipeline.sources.fast_fits import RawHeader
from pipeline.sources.orientation import ZENITHAL, grid_orientation
from pipeline.sources.unparsable import parsable_image

MAX_CARDS = STORE_CARDS
"""Cards a store made today holds per band and object (a store made before 2026-12-06: 64)."""
HEADER_BYTES = CARD_LENGTH * MAX_CARDS

_KEPT = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d|CRVAL\d|CTYPE\d|CUNIT\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+"
    r"|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|MJD-OBS|DATE-OBS|MJDREF|"
    r"A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_\d+_\d+|B_\d+_\d+|AP_\d+_\d+|BP_\d+_\d+|A_DMAX|B_DMAX|"
    r"BUNIT|MAGZP|MAGZPT|MAGZERO|ZEROPT|ZP|ZPAB|PHOTZP|FLUXMAG0|PHOTFLAM|PHOTPLAM|PHOTFNU|"
    r"EXPTIME|GAIN|SATURATE|FILTER|TELESCOP|INSTRUME|RA|DEC|NX|NY|RANGE X|"
    r"PSF_FWHM|PSF_TYPE|PSF_BETA|PSFFWHM|SEEING|FWHM|NOISESIG|SKYSIG|RDNOISE)$"
)
"""Keywords whose cards are kept, upper-cased (the challenge's ``HIERARCH range x`` reads as ``range x``)."""
ZERO_POINT_KEYWORDS = ("MAGZP", "MAGZPT", "MAGZERO", "ZEROPT", "ZPAB", "ZP", "PHOTZP")
"""Header keywords read as the AB magnitude zero point, first found wins."""
SIMULATED_PIXEL_UNIT = "adu"
"""``BUNIT`` of ``lenshunt simulate``'s files (:mod:`pipeline.simulate.writer`; a cutout writes an
older file's ``'flux'`` as it, :mod:`pipeline.store.cutout_unit`). The pixels are data numbers
calibrated by ``MAGZP`` alone (a pixel sum of 1 is AB magnitude ``MAGZP``; 0 for the standard
instrument, so a unit is 3631 Jy), not counts of a detector or a physical flux density. The FITS
standard (4.0, sec. 4.3) allows no factor but powers of ten, so ``3631 Jy`` cannot be written;
``adu`` is its unit for zero-point calibrated data numbers, which ``astropy.nddata.CCDData.read``
reads (trial: it refused the ``'flux'`` written before)."""
_CD_KEYWORDS = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
_PC_KEYWORDS = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")
_MATRIX_KEYWORDS = (*_CD_KEYWORDS, "CDELT1", "CDELT2", *_PC_KEYWORDS, "CROTA1", "CROTA2")


@dataclass(frozen=True)
class HeaderSummary:
    """The kept header of one band of one object.

    ``cards`` is ASCII, a multiple of 80 bytes (no END card), every kept card in file order (a store
    with less room chooses among them: :func:`pipeline.sources.card_choice.choose_cards`);
    ``zero_point`` is a magnitude and ``pixel_scale_arcsec`` is the WCS pixel scale (sqrt of the pixel
    area), NaN when unknown; a pixel of 0.07" x 0.14" has the area of a 0.1" one, so ``pixel_aspect``
    says it is not square.
    """

    cards: bytes
    bunit: str
    zero_point: float
    pixel_scale_arcsec: float
    pixel_aspect: float = math.nan
    """How far the WCS pixel is from a square: for a rectangle its longer side over its shorter, in
    general the ratio of the CD matrix's singular values (1 for square pixels), NaN when unknown."""
    rotation_deg: float = math.nan
    """Position angle (degrees east of north) of the pixel grid's +y axis, NaN when unknown
    (:func:`pipeline.sources.orientation.grid_orientation`)."""
    parity: int = 0
    """1: the grid is seen as the sky is (east left of north), -1: mirrored, 0: unknown."""


def _cards(header) -> list[tuple[str, str, object]]:
    """(keyword, 80-column card image, value) of every card of a fitsio FITSHDR or astropy Header."""
    if hasattr(header, "records"):  # fitsio
        return [
            (str(r.get("name") or ""), str(r.get("card_string") or ""), r.get("value"))
            for r in header.records()
        ]
    return [(card.keyword, card.image, card.value) for card in header.cards]


def summarise_header(header) -> HeaderSummary:
    """Keep the WCS, unit and calibration cards of ``header`` and read them.

    ``header`` is a fitsio FITSHDR, an astropy Header or a
    :class:`~pipeline.sources.fast_fits.RawHeader` (read from the file's bytes: its cards are
    80 columns already, and only the values read here are parsed).
    """
    kept, values = [], {}
    if isinstance(header, RawHeader):  # values parsed only for the cards read below
        kept = [image for name, image in header.cards() if _kept(name)]
        values = header
    else:
        for name, image, value in _cards(header):
            if _kept(name):
                kept.append(parsable_image(image.ljust(CARD_LENGTH)[:CARD_LENGTH]))  # fitsio's: as read
                values.setdefault(name, value)
    cards = "".join(kept).encode("ascii", errors="replace")
    bunit, zero_point, scale, aspect, rotation, parity = _read_values(values)
    return HeaderSummary(cards, bunit, zero_point, scale, aspect, rotation, parity)


@functools.lru_cache(maxsize=1024)
def _kept(name: str) -> bool:
    """Whether cards of keyword ``name`` are kept (:data:`_KEPT`; remembered: about 30 names a file)."""
    return _KEPT.match(name.upper()) is not None


@by_cards(
    ("BUNIT", *ZERO_POINT_KEYWORDS, "CUNIT1", "CUNIT2", "CTYPE1", "CTYPE2", *_MATRIX_KEYWORDS, "LONPOLE")
)
def _read_values(values) -> tuple[str, float, float, float, float, int]:  # type: ignore[no-untyped-def]
    """(BUNIT, zero point, pixel scale in arcsec, pixel aspect, grid rotation in degrees, parity) of a
    header's values (see :class:`HeaderSummary`), remembered by their cards for the fast reader's
    headers."""
    bunit = str(values["BUNIT"]).strip() if values.get("BUNIT") is not None else ""
    matrix = _pixel_matrix(values)
    rotation, parity = _orientation(values, matrix)
    return bunit, _zero_point(values), _pixel_scale(matrix), _pixel_aspect(matrix), rotation, parity


def _orientation(values: dict, matrix: tuple | None) -> tuple[float, int]:
    """:func:`~pipeline.sources.orientation.grid_orientation` of the header's pixel matrix: an
    explicit ``LONPOLE`` of a zenithal projection taken into account, unknown for another projection
    (its default there depends on ``CRVAL2``, which differs from file to file)."""
    turn = 0.0
    if matrix is not None and "LONPOLE" in values:
        lonpole = _number(values, "LONPOLE")
        if str(values.get("CTYPE1", "")).strip().upper()[5:8] not in ZENITHAL or math.isnan(lonpole):
            return math.nan, 0
        turn = lonpole - 180.0
    return grid_orientation(matrix, latitude_first=_latitude_first(values), lonpole_turn_deg=turn)


def _latitude_first(values: dict) -> bool:
    """Whether world axis 1 is the latitude (``CTYPE1 = 'DEC--TAN'``, ``GLAT-CAR``, ...)."""
    name = str(values.get("CTYPE1", "")).strip().upper().split("-")[0]
    return name == "DEC" or name.endswith(("LAT", "LT"))


def _number(values: dict, keyword: str) -> float:
    try:
        value = float(values[keyword])
    except (KeyError, TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _zero_point(values: dict) -> float:
    for keyword in ZERO_POINT_KEYWORDS:
        value = _number(values, keyword)
        if not math.isnan(value):
            return value
    return math.nan


def _celestial(values: dict) -> bool:
    """Whether CTYPE1/CTYPE2 name a celestial pair (RA/DEC, or xLON/xLAT as GLON/GLAT, ELON/ELAT)."""
    names = [str(values.get(key, "")).strip().upper().split("-")[0] for key in ("CTYPE1", "CTYPE2")]
    pairs = ({"RA", "DEC"}, {names[0][:-3] + "LON", names[0][:-3] + "LAT"})
    return set(names) in pairs and names[0] != names[1]


_ANGLE_UNITS = {
    "": 1.0,
    "deg": 1.0,
    "arcmin": 1 / 60,
    "arcsec": 1 / 3600,
    "mas": 1 / 3.6e6,
    "rad": 180 / math.pi,
    "degree": 1.0,  # and the spellings wcslib also reads (new-user trial: 'degree' gave no scale)
    "degrees": 1.0,
    "arcminute": 1 / 60,
    "arcsecond": 1 / 3600,
}
"""Degrees per CUNITn unit of a celestial axis (FITS Paper I, Table 3; none given: degrees, Paper II)."""


def _pixel_matrix(values: dict) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The CD matrix (or CDELT times PC) in degrees per pixel, for celestial axes; None when unknown.

    Row ``i`` is world axis ``i`` in its CUNITi (:data:`_ANGLE_UNITS`; new-user trial: CUNIT
    ``arcsec`` was read as no scale at all), column ``j`` pixel axis ``j`` (FITS Paper I)."""
    factors = [_ANGLE_UNITS.get(str(values.get(k, "")).strip().lower()) for k in ("CUNIT1", "CUNIT2")]
    if None in factors or not _celestial(values):  # review: CDELT 1 of pixel axes read as 3600"
        return None

    def element(prefix: str, i: int, j: int, default: float) -> float:
        value = _number(values, f"{prefix}{i}_{j}")
        return default if math.isnan(value) else value

    if any(key in values for key in _CD_KEYWORDS):  # review: a turn by 90 degrees may omit CD1_1, CD2_2
        rows = [[element("CD", i, j, 0.0) for j in (1, 2)] for i in (1, 2)]
    elif "CDELT1" in values and "CDELT2" in values:
        delta = [_number(values, "CDELT1"), _number(values, "CDELT2")]
        rows = [[delta[i - 1] * element("PC", i, j, float(i == j)) for j in (1, 2)] for i in (1, 2)]
        lat = 0 if _latitude_first(values) else 1
        if f"CROTA{lat + 1}" in values and not any(key in values for key in _PC_KEYWORDS):
            # no PC: the latitude axis's CROTA turns the grid (FITS Paper II, eq. 189; as wcslib)
            rho, lng = math.radians(_number(values, f"CROTA{lat + 1}")), 1 - lat
            cos, sin = math.cos(rho), math.sin(rho)
            rows = [[0.0, 0.0], [0.0, 0.0]]
            rows[lng][lng], rows[lng][lat] = delta[lng] * cos, -delta[lat] * sin
            rows[lat][lng], rows[lat][lat] = delta[lng] * sin, delta[lat] * cos
    else:
        return None
    # CDi_j and CDELTi are in the units of axis i; plain floats, as numpy costs tens of microseconds
    # a 2x2 matrix (bench/RESULTS.md, "Ingest per object" of 2026-12-05)
    matrix = tuple(tuple(value * factor for value in row) for row, factor in zip(rows, factors, strict=True))
    return matrix if all(math.isfinite(value) for row in matrix for value in row) else None


def _singular_values(matrix: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, float]:
    """The two singular values of a 2x2 matrix, largest first (closed form: their squares are the
    eigenvalues of M^T M, whose trace is the sum of the squared entries and determinant det(M)^2)."""
    (a, b), (c, d) = matrix
    total, det = a * a + b * b + c * c + d * d, abs(a * d - b * c)
    root = math.sqrt(max(total * total - 4 * det * det, 0.0))
    longest = math.sqrt((total + root) / 2)
    return longest, (det / longest if longest > 0 else 0.0)


@by_cards(("CUNIT1", "CUNIT2", "CTYPE1", "CTYPE2", *_MATRIX_KEYWORDS))
def longest_pixel_side_deg(header) -> float:  # type: ignore[no-untyped-def]
    """The longest sky length (degrees) of a one-pixel step in any direction through the header's
    celestial pixel matrix (its largest singular value), NaN when unknown; remembered by its cards
    for the fast reader's headers (:mod:`pipeline.sources.card_memo`).

    >>> longest_pixel_side_deg({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -1e-5, "CDELT2": 2e-5})
    2e-05
    """
    matrix = _pixel_matrix(header)
    return _singular_values(matrix)[0] if matrix is not None else math.nan


@by_cards(("CUNIT1", "CUNIT2", "CTYPE1", "CTYPE2", *_MATRIX_KEYWORDS))
def pixel_matrix_deg(header) -> tuple[tuple[float, float], tuple[float, float]] | None:  # type: ignore[no-untyped-def]
    """The celestial pixel matrix (CD, or CDELT times PC or CROTA) in degrees per pixel, row ``i``
    world axis ``i``, column ``j`` pixel axis ``j``; None when unknown; remembered by its cards.

    >>> pixel_matrix_deg({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -1e-5, "CDELT2": 2e-5})
    ((-1e-05, -0.0), (0.0, 2e-05))
    """
    return _pixel_matrix(header)


def _pixel_scale(matrix: tuple | None) -> float:
    """sqrt(|det CD|) in arcsec (:func:`_pixel_matrix`), NaN when unknown or degenerate."""
    if matrix is None:
        return math.nan
    (a, b), (c, d) = matrix
    area = abs(a * d - b * c)
    return math.sqrt(area) * 3600.0 if area > 0 else math.nan


def _pixel_aspect(matrix: tuple | None) -> float:
    """How far the pixel is from a square: the ratio of the CD matrix's singular values (the longest
    and shortest sky lengths of a unit step in any pixel direction), NaN when unknown or degenerate.
    For a rectangle, rotated or not, its longer side over its shorter; it also sees a shear, which
    sides of equal length hide (review: CDELT 0.07" x 0.143" turned by a 45-degree PC read as 1)."""
    if matrix is None:
        return math.nan
    longest, shortest = _singular_values(matrix)
    return longest / shortest if shortest > 0 else math.nan


def cards_to_text(cards: np.ndarray | bytes) -> str:
    """Stored header bytes (uint8 array or bytes, zero padded) back to card text."""
    raw = bytes(np.asarray(cards, dtype=np.uint8)) if not isinstance(cards, bytes) else cards
    return raw.rstrip(b"\0").decode("ascii", errors="replace")


def fits_text(value: str) -> str:
    """``value`` as a FITS string (printable ASCII only): other characters and ``%`` percent-encoded
    as UTF-8 (``ø`` -> ``%C3%B8``), so that :func:`urllib.parse.unquote` gives ``value`` back
    (new-user trial: a store path with ``ø`` ended the score run in astropy's ValueError).

    >>> fits_text("runs/st ø 100%.zarr")
    'runs/st %C3%B8 100%25.zarr'
    """
    from urllib.parse import quote

    return "".join(c if " " <= c <= "~" and c != "%" else quote(c, safe="") for c in value)
