"""The sky position of a cutout: its position cards, else the centre of its celestial WCS.

Order of sources, first usable wins:

1. the layout's position cards (e.g. the first challenge's ``RA``/``DEC`` in radians), which
   name the object's own position: numbers in the spec's unit, or sexagesimal strings
   (``'10:01:08.62'``, ``'+02:18:25.3'``: RA in hours, DEC in degrees; :func:`card_angle`);
2. the world coordinates of the image centre, pixel ((nx + 1) / 2, (ny + 1) / 2) in FITS
   convention, through the header's celestial WCS (:mod:`astropy.wcs`), transformed from the frame
   the header declares (``RADESYS``/``EQUINOX``, or galactic/ecliptic ``CTYPE``) to ICRS.

``CRVAL1``/``CRVAL2`` are never read as a position on their own: they are the world coordinates of
the reference pixel, which is the centre only when ``CRPIX`` is (astropy's ``Cutout2D`` keeps the
parent tile's ``CRVAL`` and shifts ``CRPIX``). A layout spec naming ``CRVAL1``/``CRVAL2`` therefore
stands for step 2. A header whose WCS is an undistorted RA/DEC projection in ICRS with ``CRPIX`` at
the centre takes a shortcut to the same answer (``CRVAL``), without building an astropy WCS
(about 0.9 ms a file); every other WCS goes through astropy.

A celestial WCS that is there but cannot be used (:func:`pipeline.sources.wcs_check.wcs_defect`:
an unknown projection, a zero or singular pixel matrix, CTYPEs that are not a celestial pair; or
one astropy cannot build or evaluate) gives no position, as no WCS does, and its reason names the
defect; so does a position card that cannot be read, a DEC outside [-90, 90] deg or an RA outside
[-360, 360] deg (more than a turn: no RA in the layout's unit, e.g. ``RA = 150.1`` in degrees where the
layout says radians), with its value.

A layout whose files' WCS is a placeholder (``wcs_position: false``, the first challenge's
``CRVAL1 = CRVAL2 = 0`` in every file) skips step 2 (``wcs=False``): a file without a usable card
has no position, and its reason says so.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.sources.wcs_check import PROJECTIONS, wcs_defect
from schemas.layout import CoordinateSpec

_WCS_KEYS = ("CRVAL1", "CRVAL2")
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


def sky_position(
    header: Mapping,
    coordinates: tuple[CoordinateSpec, ...],
    shape: tuple[int, int] | None = None,
    *,
    full_wcs: bool = True,
    wcs_defects: list[str] | None = None,
    wcs: bool = True,
    unusable_cards: list[str] | None = None,
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
    wcs
        False: the WCS gives no position (the layout's ``wcs_position``: a placeholder WCS), only
        the cards do; the WCS is still checked for ``wcs_defects``.
    unusable_cards
        A list to which ``"position cards unusable (...)"`` is appended, naming each card and value,
        where some of the layout's position cards are there but cannot be read (also where other
        cards or the WCS give the position: trial, a band's ``DEC = 95`` went unsaid as another band
        gave the object's position).

    RA is wrapped into [0, 360). Position cards may hold numbers (in the spec's unit) or sexagesimal
    strings (:func:`card_angle`: RA in hours, DEC in degrees, as FITS headers write them); a card
    that cannot be read, a DEC outside [-90, 90] deg or an RA outside [-360, 360] deg, is named with
    its value in the reason.
    """
    defect = wcs_defect(header) if wcs_defects is not None or shape is not None else None
    if defect and wcs_defects is not None:
        wcs_defects.append(defect)
    unread = []  # trial: RA/DEC cards in sexagesimal, or DEC = 95, were called "no RA,DEC cards"
    for spec in coordinates:
        if (spec.ra, spec.dec) == _WCS_KEYS:
            continue  # the WCS below, centred
        present = [key for key in (spec.ra, spec.dec) if key in header]
        if len(present) == 1:
            unread.append(f"{present[0]} card without {({spec.ra, spec.dec} - set(present)).pop()}")
        if len(present) != 2:
            continue
        try:
            ra = card_angle(spec.ra, header[spec.ra], spec.unit, hours=True)
            dec = card_angle(spec.dec, header[spec.dec], spec.unit, hours=False)
        except ValueError as exc:
            unread.append(str(exc))
            continue
        bad = [  # trial: RA = 150.1 (degrees) in a layout of radians was read as 320.1 deg
            _out_of_range(key, header[key], degrees, limit, spec.unit)
            for key, degrees, limit in ((spec.ra, ra, 360.0), (spec.dec, dec, 90.0))
            if not -limit <= degrees <= limit
        ]
        if not bad:
            _say_unusable(unread, unusable_cards)
            return wrap_ra(ra), dec, None
        unread += bad
    _say_unusable(unread, unusable_cards)
    cards = "/".join(f"{spec.ra},{spec.dec}" for spec in coordinates if (spec.ra, spec.dec) != _WCS_KEYS)
    no_cards = f"no {cards} cards" if cards else "no position cards"
    if unread:
        no_cards = f"position cards unusable ({'; '.join(unread)})"
    if not wcs:  # trial: the first challenge's placeholder WCS put such objects at (0, 0), flags 0
        return math.nan, math.nan, f"{no_cards}, and the layout's WCS gives no position (wcs_position: false)"
    if shape is None:
        return math.nan, math.nan, f"{no_cards}, WCS not read"
    if defect:  # before the CTYPEs: WCS cards without them are a defect (an incomplete WCS)
        return math.nan, math.nan, f"{no_cards} and an unusable WCS ({defect})"
    if "CTYPE1" not in header and "CTYPE2" not in header:
        return math.nan, math.nan, f"{no_cards} and no celestial WCS"
    shortcut = icrs_crval(header, shape)
    if shortcut is not None:
        return wrap_ra(shortcut[0]), shortcut[1], None
    if not full_wcs:
        return math.nan, math.nan, f"{no_cards}, full WCS not read"
    try:
        ra, dec = wcs_centre(header, shape)
    except ValueError as exc:
        if wcs_defects is not None and str(exc) != _NO_CELESTIAL:
            wcs_defects.append(str(exc))
        return math.nan, math.nan, f"{no_cards} and {exc}"
    return ra, dec, None


def _say_unusable(unread: list[str], unusable_cards: list[str] | None) -> None:
    """Append ``"position cards unusable (...)"`` to ``unusable_cards`` (where given) if any card was."""
    if unread and unusable_cards is not None:
        unusable_cards.append(f"position cards unusable ({'; '.join(unread)})")


def _out_of_range(keyword: str, value: object, degrees: float, limit: float, unit: str) -> str:
    """Why a position card's value is no angle of its kind: ``value`` read as ``degrees``.

    >>> _out_of_range("RA", 150.1, math.degrees(150.1), 360.0, "rad")
    'RA = 150.1 rad (8600.1 deg) outside [-360, 360] deg'
    """
    read = f" {unit} ({degrees:.6g} deg)" if unit != "deg" and not isinstance(value, str) else ""
    return f"{keyword} = {value!r}{read} outside [-{limit:g}, {limit:g}] deg"


_NO_CELESTIAL = "no celestial WCS"
_SEXAGESIMAL_UNIT = re.compile(r"[hdms°'\"]", re.IGNORECASE)


def wrap_ra(ra: Any) -> Any:
    """``ra`` (deg; a number or an array) wrapped into [0, 360).

    ``ra % 360`` alone gives exactly 360.0 for a tiny negative ``ra`` (the float nearest to
    ``360 - 1e-15`` is 360.0): trial, an RA card of -1e-15 was stored as 360.0, and the catalog
    contract ([0, 360)) refused the whole catalog. Those give 0.

    >>> wrap_ra(-1e-15), wrap_ra(-90.0), wrap_ra(360.0), wrap_ra(np.array([359.5, 720.25])).tolist()
    (0.0, 270.0, 0.0, [359.5, 0.25])
    """
    if isinstance(ra, float | int):  # a file's position: plain floats (numpy costs microseconds)
        wrapped = float(ra) % 360.0
        return 0.0 if wrapped >= 360.0 else wrapped
    wrapped = np.mod(ra, 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def card_angle(keyword: str, value: object, unit: str, *, hours: bool) -> float:
    """A position card's value in degrees: a number in ``unit`` ("deg" or "rad"), or a string.

    A string that is not a number is a sexagesimal angle read by :class:`astropy.coordinates.Angle`:
    with unit letters (``10h01m08.62s``, ``+2d18m25.3s``) as they say; with colons or blanks only
    (``10:01:08.62``, ``+02 18 25.3``) in hours for RA (``hours=True``) and degrees for DEC, the FITS
    convention of ``RA``/``DEC``/``OBJCTRA`` cards. ``unit`` applies to numbers only.

    Raises
    ------
    ValueError
        If the value is not a finite number or an angle; the message names the card and its value.

    >>> card_angle("RA", "10:01:08.62", "deg", hours=True)
    150.28591666666665
    >>> card_angle("DEC", "-02:18:25.3", "deg", hours=False)
    -2.3070277777777775
    >>> card_angle("DEC", "abc", "deg", hours=False)
    Traceback (most recent call last):
    ...
    ValueError: DEC = 'abc' is not a number or an angle
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{keyword} = {value!r} is not a number or an angle")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return _sexagesimal(keyword, value, text, hours)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{keyword} = {value!r} is not a number or an angle") from None
    if not math.isfinite(number):
        raise ValueError(f"{keyword} = {value!r} is not finite")
    return math.degrees(number) if unit == "rad" else number


def card_unit(value: object, unit: str, *, hours: bool) -> str:
    """The unit a position card's ``value`` is read in by :func:`card_angle`, for users to read.

    ``unit`` (the layout's) for a number; for a sexagesimal string, hours or degrees as its letters
    say, else hours for RA (``hours=True``) and degrees for DEC (trial: ``RA = '10:01:08.62'``, read
    as hours, was described as the layout's ``(rad)``).

    >>> card_unit(2.6, "rad", hours=True), card_unit("2.6", "rad", hours=True)
    ('rad', 'rad')
    >>> card_unit("10:01:08.62", "rad", hours=True), card_unit("+02:18:25.3", "rad", hours=False)
    ('sexagesimal hours', 'sexagesimal deg')
    >>> card_unit("10h01m08.62s", "deg", hours=False)
    'sexagesimal hours'
    """
    if not isinstance(value, str):
        return unit
    text = value.strip()
    try:
        float(text)
        return unit
    except ValueError:
        pass
    if _SEXAGESIMAL_UNIT.search(text):
        hours = "h" in text.lower()
    return "sexagesimal hours" if hours else "sexagesimal deg"


def _sexagesimal(keyword: str, value: str, text: str, hours: bool) -> float:
    from astropy import units
    from astropy.coordinates import Angle

    try:
        if _SEXAGESIMAL_UNIT.search(text):
            angle = Angle(text)
        else:
            angle = Angle(text, unit=units.hourangle if hours else units.deg)
        degrees = float(angle.to_value(units.deg))
    except Exception:  # astropy raises ValueError, UnitsError, ... on what is not an angle
        raise ValueError(f"{keyword} = {value!r} is not a number or an angle") from None
    if not math.isfinite(degrees):
        raise ValueError(f"{keyword} = {value!r} is not finite")
    return degrees


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
    return wrap_ra(lng), lat


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


def icrs_crval(header: Mapping, shape: tuple[int, int] | None) -> tuple[float, float] | None:
    """CRVAL when it is exactly the centre's ICRS position (see module docstring), else None; with
    ``shape`` None, wherever ``CRPIX`` is (an undistorted ICRS RA/DEC projection in degrees)."""
    try:
        ctype1, ctype2 = str(header["CTYPE1"]).strip(), str(header["CTYPE2"]).strip()
        if not (ctype1.startswith("RA---") and ctype2.startswith("DEC--")):
            return None
        if ctype1[5:] != ctype2[5:] or ctype1[5:] not in PROJECTIONS:
            return None
        if shape is not None and (
            float(header["CRPIX1"]) != (shape[1] + 1) / 2.0 or float(header["CRPIX2"]) != (shape[0] + 1) / 2.0
        ):
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
