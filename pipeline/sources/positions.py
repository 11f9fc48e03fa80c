"""The sky position of a cutout: its position cards, else the centre of its celestial WCS.

Order of sources, first usable wins:

1. the layout's position cards (e.g. the first challenge's ``RA``/``DEC`` in radians), which
   name the object's own position;
2. the world coordinates of the image centre, pixel ((nx + 1) / 2, (ny + 1) / 2) in FITS
   convention, through the header's celestial WCS (:mod:`astropy.wcs`), transformed from the frame
   the header declares (``RADESYS``/``EQUINOX``, or galactic/ecliptic ``CTYPE``) to ICRS.

``CRVAL1``/``CRVAL2`` are never read as a position on their own: they are the world coordinates of
the reference pixel, which is the centre only when ``CRPIX`` is (astropy's ``Cutout2D`` keeps the
parent tile's ``CRVAL`` and shifts ``CRPIX``). A layout spec naming ``CRVAL1``/``CRVAL2`` therefore
stands for step 2. A header whose WCS is an undistorted RA/DEC projection in ICRS with ``CRPIX`` at
the centre takes a shortcut to the same answer (``CRVAL``), without building an astropy WCS
(about 0.9 ms a file); every other WCS goes through astropy.

A celestial WCS that is there but cannot be used (:func:`wcs_defect`: an unknown projection, a
zero or singular pixel matrix, CTYPEs that are not a celestial pair; or one astropy cannot build or
evaluate) gives no position, as no WCS does, and its reason names the defect.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Mapping

from schemas.layout import CoordinateSpec

_WCS_KEYS = ("CRVAL1", "CRVAL2")
# Standard projections of FITS WCS paper II; with no PV cards, CRPIX maps to CRVAL in all of them.
_PROJECTIONS = frozenset(
    {
        *("AZP", "SZP", "TAN", "STG", "SIN", "ARC", "ZPN", "ZEA", "AIR", "CYP", "CEA", "CAR", "MER"),
        *("COP", "COE", "COD", "COO", "SFL", "PAR", "MOL", "AIT", "BON", "PCO", "TSC", "CSC", "QSC"),
        *("HPX", "XPH"),
    }
)
# Cards that define a WCS besides CRPIX (cache key), and distortions in absolute pixels (no cache).
_WCS_CARD = re.compile(
    r"^(CTYPE|CRVAL|CDELT|CUNIT|CROTA|CD\d|PC\d|PV\d|PS\d|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|"
    r"EPOCH|WCSAXES|MJD|DATE|A_|B_|AP_|BP_|RESTFR|RESTWAV|SPECSYS|SSYSOBS|OBSGEO|VELREF|TIMESYS)"
)
_ABSOLUTE_PIXEL = re.compile(r"^(CPDIS|CQDIS|D2IM|DP\d|DQ\d)")
_WCS_CACHE: dict[tuple, tuple] = {}
_WCS_CACHE_SIZE = 256
_WCS_LOCK = threading.Lock()
_DISTORTION = re.compile(r"^(PV\d|PS\d|A_|B_|AP_|BP_|DP\d|DQ\d|CPDIS|CQDIS|D2IMDIS)")
# Projection codes astropy also reads: TAN with polynomial terms, IRAF's, and AIPS's old ones (fixed).
_READ_PROJECTIONS = _PROJECTIONS | {"TPV", "TPD", "TNX", "ZPX", "NCP", "GLS"}
CELESTIAL_WCS_CARD = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d|CRVAL\d|CTYPE\d|CUNIT\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+"
    r"|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+))$"
)
"""Keywords of a header's celestial WCS (FITS Papers I-II, SIP): what a cutout written from the store
leaves out when :func:`wcs_defect` finds its WCS unusable."""


def sky_position(
    header: Mapping,
    coordinates: tuple[CoordinateSpec, ...],
    shape: tuple[int, int] | None = None,
    *,
    full_wcs: bool = True,
    wcs_defects: list[str] | None = None,
) -> tuple[float, float, str | None]:
    """(ra, dec) in degrees (ICRS for a WCS) and None, or NaN, NaN and why there is none.

    Parameters
    ----------
    header
        The image HDU's header (astropy ``Header`` or fitsio ``FITSHDR``; anything with ``in``,
        ``[]`` and, for the WCS, ``records()`` or ``cards``).
    coordinates
        The layout's position cards to try first, in order.
    shape
        Image shape (ny, nx) for the centre; None skips the WCS.
    full_wcs
        False: only a centred ICRS WCS's ``CRVAL`` (no astropy WCS, about 1-10 ms a header where a
        frame transform or distortion is needed; review: a check of every band's position).
    wcs_defects
        A list to which why the header's celestial WCS is unusable is appended, if it is: always
        what :func:`wcs_defect` finds, and what astropy says when the WCS is built for the centre.

    RA is wrapped into [0, 360).
    """
    defect = wcs_defect(header) if wcs_defects is not None or shape is not None else None
    if defect and wcs_defects is not None:
        wcs_defects.append(defect)
    for spec in coordinates:
        if (spec.ra, spec.dec) == _WCS_KEYS:
            continue  # the WCS below, centred
        if spec.ra in header and spec.dec in header:
            try:
                ra, dec = float(header[spec.ra]), float(header[spec.dec])
            except (TypeError, ValueError):
                continue
            if spec.unit == "rad":
                ra, dec = math.degrees(ra), math.degrees(dec)
            if math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0:
                return ra % 360.0, dec, None
    cards = "/".join(f"{spec.ra},{spec.dec}" for spec in coordinates if (spec.ra, spec.dec) != _WCS_KEYS)
    no_cards = f"no {cards} cards" if cards else "no position cards"
    if shape is None:
        return math.nan, math.nan, f"{no_cards}, WCS not read"
    if "CTYPE1" not in header and "CTYPE2" not in header:
        return math.nan, math.nan, f"{no_cards} and no celestial WCS"
    if defect:
        return math.nan, math.nan, f"{no_cards} and an unusable WCS ({defect})"
    shortcut = _centred_icrs_crval(header, shape)
    if shortcut is not None:
        return shortcut[0] % 360.0, shortcut[1], None
    if not full_wcs:
        return math.nan, math.nan, f"{no_cards}, full WCS not read"
    try:
        ra, dec = wcs_centre(header, shape)
    except ValueError as exc:
        if wcs_defects is not None and str(exc) != _NO_CELESTIAL:
            wcs_defects.append(str(exc))
        return math.nan, math.nan, f"{no_cards} and {exc}"
    return ra, dec, None


_NO_CELESTIAL = "no celestial WCS"
_FRAMES = ("ICRS", "FK5", "FK4", "FK4-NO-E", "GAPPT")  # RADESYS values of the FITS standard


def wcs_defect(header: Mapping) -> str | None:
    """Why the header's celestial WCS cannot be used, or None (usable, or no celestial CTYPE at all).

    Cheap checks of the cards, no astropy WCS built (about 10 us): the CTYPE1/CTYPE2 pair, when
    either names a celestial axis (``RA``/``DEC``, ``xLON``/``xLAT``, ``xyLN``/``xyLT``), must be a
    longitude and a latitude of one projection that FITS Paper II defines (or TPV, TPD, TNX, ZPX,
    NCP, GLS, which astropy reads), in a frame of the standard (``RADESYS``); the pixel matrix
    (``CDi_j``, else ``CDELTi`` times ``PCi_j``, with the standard's defaults) must be finite and
    non-singular.

    Parameters
    ----------
    header
        Anything with ``in`` and ``[]`` (astropy ``Header``, fitsio ``FITSHDR``, a dict).

    Returns
    -------
    str or None
        The defect, naming the card and its value; None when the WCS is usable or not celestial.

    >>> wcs_defect({"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CDELT1": 0.0, "CDELT2": 0.0})
    "unknown projection 'XYZ' in CTYPE1 'RA---XYZ'"
    >>> wcs_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": 0.0, "CDELT2": 1e-5})
    'a singular pixel matrix (CDELT1 = 0)'
    >>> wcs_defect({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"}) is None
    True
    """
    ctypes = [str(header[key]).strip().upper() if key in header else "" for key in ("CTYPE1", "CTYPE2")]
    kinds = [_celestial_kind(ctype.split("-")[0]) for ctype in ctypes]
    if kinds == [None, None]:
        return None  # a linear or pixel WCS, or none: no sky to use
    if None in kinds or kinds[0][0] == kinds[1][0] or kinds[0][1] != kinds[1][1]:
        return f"CTYPE1 {ctypes[0]!r} and CTYPE2 {ctypes[1]!r} are not a celestial pair"
    codes = []
    for axis, ctype in enumerate(ctypes, 1):
        code = ctype[5:8] if len(ctype) >= 8 and ctype[4] == "-" else ""
        if code not in _READ_PROJECTIONS:
            what = f"unknown projection {code!r}" if code else "no projection"
            return f"{what} in CTYPE{axis} {ctype!r}"
        codes.append(code)
    if codes[0] != codes[1]:
        return f"projections differ: CTYPE1 {ctypes[0]!r}, CTYPE2 {ctypes[1]!r}"
    frame = str(header["RADESYS"]).strip().upper() if "RADESYS" in header else ""
    if kinds[0][1] == "equatorial" and frame not in ("", *_FRAMES):
        return f"unknown frame RADESYS {header['RADESYS']!r}"
    return _matrix_defect(header)


def _celestial_kind(name: str) -> tuple[str, str] | None:
    """("lon" or "lat", the frame) of a celestial CTYPE name, None for another axis."""
    if name in ("RA", "DEC"):
        return ("lon" if name == "RA" else "lat", "equatorial")
    if len(name) == 4 and name[1:] in ("LON", "LAT"):
        return (name[1:].lower(), name[0])
    if len(name) == 4 and name[2:] in ("LN", "LT"):
        return ("lon" if name[2:] == "LN" else "lat", name[:2])
    return None


_CD_KEYS = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
_PC_KEYS = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")


def _matrix_defect(header: Mapping) -> str | None:
    """Why the pixel matrix is unusable (not a finite number, singular), or None; plain floats, as
    numpy costs tens of microseconds a 2x2 matrix."""
    has_cd = any(key in header for key in _CD_KEYS)
    used = _CD_KEYS if has_cd else ("CDELT1", "CDELT2", *_PC_KEYS)
    values = {}
    for key in used:
        if key in header:
            if not _finite_number(header[key]):
                return f"{key} = {header[key]!r} is not a finite number"
            values[key] = float(header[key])
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


def _finite_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def wcs_centre(header: Mapping, shape: tuple[int, int]) -> tuple[float, float]:
    """ICRS (ra, dec) in degrees of the centre of an image of ``shape`` through its celestial WCS.

    Distortions (SIP, lookup tables) are applied (``all_pix2world``). Cutouts of one tile share
    every WCS card but ``CRPIX``, and pixel coordinates enter a WCS only as offsets from
    ``CRPIX`` (lookup-table distortions aside), so the WCS built for one such header serves the
    others at the shifted pixel: building an astropy WCS (about 0.9 ms) is done once per tile.

    Raises
    ------
    ValueError
        If the header has no usable celestial WCS (the message says what is wrong).
    """
    from astropy.coordinates import ICRS, SkyCoord

    cards = _cards(header)
    key = None
    if not any(_ABSOLUTE_PIXEL.match(name) for name in cards) and "CTYPE3" not in cards:
        key = tuple((name, repr(value)) for name, value in cards.items() if _WCS_CARD.match(name))
    crpix = (_number(cards.get("CRPIX1", 0.0)), _number(cards.get("CRPIX2", 0.0)))
    entry = _WCS_CACHE.get(key) if key is not None else None
    if entry is None:
        entry = _celestial_wcs(header, crpix)
        if key is not None:
            if len(_WCS_CACHE) >= _WCS_CACHE_SIZE:
                _WCS_CACHE.clear()
            _WCS_CACHE[key] = entry
    wcs, frame, built_crpix = entry
    if isinstance(frame, ValueError):
        raise frame
    ny, nx = shape
    pixel = [(nx - 1) / 2.0 + built_crpix[0] - crpix[0], (ny - 1) / 2.0 + built_crpix[1] - crpix[1]]
    with warnings.catch_warnings(), _WCS_LOCK:  # one WCS object may serve several threads
        warnings.simplefilter("ignore")
        try:
            world = wcs.all_pix2world([pixel], 0)[0]
        except Exception as exc:  # wcslib raises many types on malformed cards
            raise ValueError(f"an invalid WCS ({type(exc).__name__})") from exc
        lng, lat = float(world[wcs.wcs.lng]), float(world[wcs.wcs.lat])
        if not (math.isfinite(lng) and math.isfinite(lat) and -90.0 <= lat <= 90.0):
            raise ValueError("a WCS without a finite centre")
        if not isinstance(frame, ICRS):
            icrs = SkyCoord(lng, lat, unit="deg", frame=frame).icrs
            lng, lat = float(icrs.ra.deg), float(icrs.dec.deg)
    return lng % 360.0, lat


def _celestial_wcs(header, crpix: tuple[float, float]):
    """(celestial astropy WCS, its frame or the ValueError saying why there is none, CRPIX)."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.wcs.utils import wcs_to_celestial_frame

    astropy_header = header if isinstance(header, fits.Header) else to_astropy_header(header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(astropy_header, relax=True, fix=True).celestial
        except Exception as exc:  # wcslib raises many types on malformed cards
            return None, ValueError(f"an invalid WCS ({type(exc).__name__})"), crpix
        if not wcs.has_celestial or wcs.naxis != 2:
            return None, ValueError(_NO_CELESTIAL), crpix
        try:
            frame = wcs_to_celestial_frame(wcs)
        except ValueError:
            return None, ValueError("a WCS in an unknown celestial frame"), crpix
    return wcs, frame, crpix


def _cards(header) -> dict[str, object]:
    """Keyword -> value of a header (astropy or fitsio)."""
    if hasattr(header, "records"):
        return {
            str(record["name"]).upper(): record.get("value")
            for record in header.records()
            if record.get("name")
        }
    return {str(card.keyword).upper(): card.value for card in header.cards if card.keyword}


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _centred_icrs_crval(header: Mapping, shape: tuple[int, int]) -> tuple[float, float] | None:
    """CRVAL when it is exactly the centre's ICRS position (see module docstring), else None."""
    try:
        ctype1, ctype2 = str(header["CTYPE1"]).strip(), str(header["CTYPE2"]).strip()
        if not (ctype1.startswith("RA---") and ctype2.startswith("DEC--")):
            return None
        if ctype1[5:] != ctype2[5:] or ctype1[5:] not in _PROJECTIONS:
            return None
        ny, nx = shape
        if float(header["CRPIX1"]) != (nx + 1) / 2.0 or float(header["CRPIX2"]) != (ny + 1) / 2.0:
            return None
        # The standard's defaults: no RADESYS and no EQUINOX is ICRS; an EQUINOX makes FK4/FK5.
        if "RADESYS" in header:
            if str(header["RADESYS"]).strip().upper() != "ICRS":
                return None
        elif any(key in header for key in ("EQUINOX", "EPOCH", "RADECSYS")):
            return None
        for key in ("CUNIT1", "CUNIT2"):
            if key in header and str(header[key]).strip().lower() not in ("deg", ""):
                return None
        if "WCSAXES" in header and int(header["WCSAXES"]) != 2:
            return None
        if any(_DISTORTION.match(str(key)) for key in _keys(header)):
            return None
        ra, dec = float(header["CRVAL1"]), float(header["CRVAL2"])
    except (KeyError, TypeError, ValueError):
        return None
    if math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0:
        return ra, dec
    return None


def _keys(header: Mapping) -> list[str]:
    if hasattr(header, "keys"):
        return [str(key) for key in header.keys()]  # noqa: SIM118 (fitsio's FITSHDR)
    return []


def to_astropy_header(header):
    """An astropy Header from a fitsio FITSHDR (its raw cards)."""
    from astropy.io import fits

    cards = []
    for record in header.records():
        card = record.get("card_string")
        if card:
            cards.append(card[:80].ljust(80))
    return fits.Header.fromstring("".join(cards))
