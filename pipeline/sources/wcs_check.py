"""Whether a header's celestial WCS can be used, checked on its cards without building one.

A cutout's WCS may be there and still be unusable: an unknown projection (``RA---XYZ``), a zero
pixel scale (``CDELT1 = 0``, no CD matrix), a singular CD matrix, CTYPEs that are not a longitude
and a latitude of one frame, a ``RADESYS`` the standard does not define, or a WCS left incomplete
(a celestial CTYPE without ``CRVAL``, or WCS cards without a CTYPE), or a WCS card whose value is no
finite number (``CRVAL1 = NaN`` or ``CRPIX1 = 1.2.3`` unparsable, kept as a string; ``'INF'``; no
value: wcslib reads such a card as 0, with a warning). astropy then fails, gives NaN
or another place (the reference pixel at RA 0, Dec 0; linear pixel axes), and fitsverify rejects the
file the store would write back (trial: such a VIS band had flags 0). :func:`wcs_defect` says why in
a few microseconds (no astropy WCS is built: about 1 ms a header), so every band is checked; ingest
flags the band BAD_WCS and ``lenshunt cutout`` leaves the cards of :data:`CELESTIAL_WCS_CARD` out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from pipeline.sources.card_memo import by_cards

PROJECTIONS = frozenset(
    {
        *("AZP", "SZP", "TAN", "STG", "SIN", "ARC", "ZPN", "ZEA", "AIR", "CYP", "CEA", "CAR", "MER"),
        *("COP", "COE", "COD", "COO", "SFL", "PAR", "MOL", "AIT", "BON", "PCO", "TSC", "CSC", "QSC"),
        *("HPX", "XPH"),
    }
)
"""Standard projections of FITS WCS Paper II; with no PV cards, CRPIX maps to CRVAL in all of them."""
# Projection codes astropy also reads: TAN with polynomial terms, IRAF's, and AIPS's old ones (fixed).
_READ_PROJECTIONS = PROJECTIONS | {"TPV", "TPD", "TNX", "ZPX", "NCP", "GLS"}
CELESTIAL_WCS_CARD = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d|CRVAL\d|CTYPE\d|CUNIT\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+"
    r"|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+))$"
)
"""Keywords of a header's celestial WCS (FITS Papers I-II, SIP): what a cutout written from the store
leaves out when :func:`wcs_defect` finds its WCS unusable."""


_FRAMES = ("ICRS", "FK5", "FK4", "FK4-NO-E", "GAPPT")  # RADESYS values of the FITS standard
_CD_KEYS = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
_PC_KEYS = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")


_NUMBER_KEYS = ("CRPIX1", "CRPIX2", "CROTA1", "CROTA2", "LONPOLE", "LATPOLE")
"""Numeric cards of a celestial WCS besides CRVAL and the pixel matrix: where present, each must be a
finite number (wcslib reads a string, ``NaN`` or no value as the card's default, 0, with a warning)."""

_SKY_CARDS = ("CRVAL1", "CRVAL2", *_CD_KEYS, "CDELT1", "CDELT2", *_PC_KEYS, "CROTA1", "CROTA2")
"""Cards of a celestial WCS besides CTYPE: with none of CTYPE1/CTYPE2 they are a WCS left incomplete."""


def wcs_defect(header: Mapping) -> str | None:
    """Why the header's celestial WCS cannot be used, or None (usable, or no celestial WCS at all).

    The checks of :func:`card_defect` (remembered by their cards), then whether the WCS is whole:
    a celestial CTYPE pair needs ``CRVAL1`` and ``CRVAL2``, finite numbers (wcslib takes the
    standard's default, 0, for a missing one and reads a string, as an unparsable ``CRVAL1 = NaN``
    is kept, as 0: the reference pixel put at (0, 0), a position far from the object's), and the cards
    of a celestial WCS (:data:`_SKY_CARDS`) need a CTYPE (without one astropy reads linear pixel
    axes, silently; `lenshunt cutout` later warned of an offset). ``CRPIX`` alone is no WCS. These
    are tests of presence and of two values (a few us), as ``CRVAL`` differs from file to file.

    Parameters
    ----------
    header
        Anything with ``in`` and ``[]`` (astropy ``Header``, fitsio ``FITSHDR``, a dict).

    Returns
    -------
    str or None
        The defect, naming the cards; None when the WCS is usable or there is none.

    >>> wcs_defect({"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CDELT1": 0.0, "CDELT2": 0.0})
    "unknown projection 'XYZ' in CTYPE1 'RA---XYZ'"
    >>> wcs_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL2": 2.0, "CD1_1": 1e-5, "CD2_2": 1e-5})
    "no CRVAL1 for CTYPE1 'RA---TAN' (taken as 0: the reference pixel put at 0, 0)"
    >>> wcs_defect({"CRVAL1": 150.0, "CRVAL2": 2.0, "CDELT1": -1e-5, "CDELT2": 1e-5})
    'WCS cards CRVAL1, CRVAL2, CDELT1, CDELT2 without CTYPE1/CTYPE2 (read as linear pixel axes, not the sky)'
    >>> wcs_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": "NaN", "CRVAL2": 2.0,
    ...             "CD1_1": -1e-5, "CD2_2": 1e-5})
    "CRVAL1 = 'NaN' is not a finite number"
    >>> wcs_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0})
    'no CDELT1, CDELT2 and no CD matrix (the pixel scale taken as 1 degree, the FITS default)'
    >>> wcs_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
    ...             "CD1_1": -1e-5, "CD2_2": 1e-5}) is None
    True
    """
    defect, celestial = card_defect(header)
    if defect:
        return defect
    if celestial:
        if "CRVAL1" in header and "CRVAL2" in header:  # the common case: two plain tests and two values
            for key in ("CRVAL1", "CRVAL2"):  # they differ from file to file: read here, not remembered
                if not _finite_number(header[key]):
                    return _not_a_number(key, header[key])
            return None
        missing = ", ".join(key for key in ("CRVAL1", "CRVAL2") if key not in header)
        ctype = f"CTYPE1 {str(header['CTYPE1']).strip()!r}"
        return f"no {missing} for {ctype} (taken as 0: the reference pixel put at 0, 0)"
    if "CTYPE1" not in header and "CTYPE2" not in header:
        present = [key for key in _SKY_CARDS if key in header]
        if present:
            shown = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
            return f"WCS cards {shown} without CTYPE1/CTYPE2 (read as linear pixel axes, not the sky)"
    return None


@by_cards(("CTYPE1", "CTYPE2", "RADESYS", *_CD_KEYS, "CDELT1", "CDELT2", *_PC_KEYS, *_NUMBER_KEYS))
def card_defect(header: Mapping) -> tuple[str | None, bool]:
    """Why the header's celestial WCS cards cannot be used, or None; and whether its CTYPEs are celestial.

    Cheap checks of the cards, no astropy WCS built (about 10 us; for a header of the fast reader,
    once per distinct set of these cards: :mod:`pipeline.sources.card_memo`): the CTYPE1/CTYPE2
    pair, when either names a celestial axis (``RA``/``DEC``, ``xLON``/``xLAT``, ``xyLN``/``xyLT``),
    must be a longitude and a latitude of one projection that FITS Paper II defines (or TPV, TPD,
    TNX, ZPX, NCP, GLS, which astropy reads), in a frame of the standard (``RADESYS``); the cards of
    :data:`_NUMBER_KEYS` there must be finite numbers (not strings, no empty value); the pixel
    matrix (``CDi_j``, else ``CDELTi`` times ``PCi_j``, with the standard's defaults) must be finite
    and non-singular, and without a ``CDi_j`` card both ``CDELTi`` must be there (their default, 1
    degree a pixel, is no cutout's scale).

    Parameters
    ----------
    header
        Anything with ``in`` and ``[]`` (astropy ``Header``, fitsio ``FITSHDR``, a dict).

    Returns
    -------
    (str or None, bool)
        The defect, naming the card and its value (None when the WCS is usable or not celestial),
        and whether CTYPE1 or CTYPE2 names a celestial axis.

    >>> card_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": 0.0, "CDELT2": 1e-5})
    ('a singular pixel matrix (CDELT1 = 0)', True)
    >>> card_defect({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR"})
    (None, False)
    """
    ctypes = [str(header[key]).strip().upper() if key in header else "" for key in ("CTYPE1", "CTYPE2")]
    kinds = [_celestial_kind(ctype.split("-")[0]) for ctype in ctypes]
    if kinds == [None, None]:
        return None, False  # a linear or pixel WCS, or none: no sky to use
    if None in kinds or kinds[0][0] == kinds[1][0] or kinds[0][1] != kinds[1][1]:
        return f"CTYPE1 {ctypes[0]!r} and CTYPE2 {ctypes[1]!r} are not a celestial pair", True
    codes = []
    for axis, ctype in enumerate(ctypes, 1):
        code = ctype[5:8] if len(ctype) >= 8 and ctype[4] == "-" else ""
        if code not in _READ_PROJECTIONS:
            what = f"unknown projection {code!r}" if code else "no projection"
            return f"{what} in CTYPE{axis} {ctype!r}", True
        codes.append(code)
    if codes[0] != codes[1]:
        return f"projections differ: CTYPE1 {ctypes[0]!r}, CTYPE2 {ctypes[1]!r}", True
    frame = str(header["RADESYS"]).strip().upper() if "RADESYS" in header else ""
    if kinds[0][1] == "equatorial" and frame not in ("", *_FRAMES):
        return f"unknown frame RADESYS {header['RADESYS']!r}", True
    for key in _NUMBER_KEYS:
        if key in header and not _finite_number(header[key]):
            return _not_a_number(key, header[key]), True
    return _matrix_defect(header), True


def _celestial_kind(name: str) -> tuple[str, str] | None:
    """("lon" or "lat", the frame) of a celestial CTYPE name, None for another axis."""
    if name in ("RA", "DEC"):
        return ("lon" if name == "RA" else "lat", "equatorial")
    if len(name) == 4 and name[1:] in ("LON", "LAT"):
        return (name[1:].lower(), name[0])
    if len(name) == 4 and name[2:] in ("LN", "LT"):
        return ("lon" if name[2:] == "LN" else "lat", name[:2])
    return None


def _matrix_defect(header: Mapping) -> str | None:
    """Why the pixel matrix is unusable (not a finite number, no pixel scale, singular), or None; plain
    floats, as numpy costs tens of microseconds a 2x2 matrix. Without a CDi_j card a missing CDELTi
    is 1 (FITS Paper I): astropy and DS9 read such a cutout at 3600" a pixel (trial: flags 0, and
    `lenshunt cutout` kept that WCS). Some CDi_j cards without the others are whole: the rest are 0."""
    has_cd = any(key in header for key in _CD_KEYS)
    used = _CD_KEYS if has_cd else ("CDELT1", "CDELT2", *_PC_KEYS)
    values = {}
    for key in used:
        if key in header:
            if not _finite_number(header[key]):
                return _not_a_number(key, header[key])
            values[key] = float(header[key])
    if not has_cd and ("CDELT1" not in header or "CDELT2" not in header):
        missing = ", ".join(key for key in ("CDELT1", "CDELT2") if key not in header)
        return f"no {missing} and no CD matrix (the pixel scale taken as 1 degree, the FITS default)"
    zero = ""
    if has_cd:
        a, b, c, d = (values.get(key, 0.0) for key in _CD_KEYS)
    else:
        deltas = values.get("CDELT1", 1.0), values.get("CDELT2", 1.0)
        a, b, c, d = (values.get(key, float(key[2] == key[4])) for key in _PC_KEYS)
        a, b, c, d = a * deltas[0], b * deltas[0], c * deltas[1], d * deltas[1]
        zero = ", ".join(f"CDELT{i} = 0" for i, delta in enumerate(deltas, 1) if delta == 0)
    # |det| = product of the singular values, a*a+b*b+c*c+d*d the sum of their squares: the smaller
    # is zero within rounding (review: CD rows 1e-5, 2e-5 gave a determinant of 1e-26, not 0)
    if not abs(a * d - b * c) > 1e-10 * (a * a + b * b + c * c + d * d):
        return f"a singular pixel matrix ({zero or 'determinant 0'})"
    return None


def _finite_number(value) -> bool:  # type: ignore[no-untyped-def]
    """Whether a card's value is a finite number: not a string (``'NaN'``, ``'1.5'``: an unparsable
    card is kept as the string of its text, :mod:`pipeline.sources.unparsable`; wcslib reads a string
    as the default, 0), a logical, no value (None, astropy's ``Undefined``) or NaN/infinite."""
    if value is None or isinstance(value, (str, bool)):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _not_a_number(key: str, value) -> str:  # type: ignore[no-untyped-def]
    """The defect of a WCS card whose value is not a finite number (:func:`_finite_number`).

    >>> _not_a_number("CRVAL1", "NaN"), _not_a_number("CRPIX1", None)
    ("CRVAL1 = 'NaN' is not a finite number", 'CRPIX1 has no value')
    """
    if value is None or type(value).__name__ == "Undefined":
        return f"{key} has no value"
    return f"{key} = {value!r} is not a finite number"
