"""Whether a band file's position cards agree with its own WCS's world position of the image centre.

Ingest takes an object's position from the layout's position cards (``RA``/``DEC``) before the WCS
(:mod:`pipeline.sources.positions`), and compares the bands' positions with each other
(POSITION_MISMATCH). Cards that disagree with the file's own WCS in every band of an object passed
that comparison, and the store and catalog took the cards' position with flags 0; only
``lenshunt cutout`` warned (trial: RA cards moved by 0.5 degree, 1798.6" from the WCS's centre; a
sexagesimal ``RA = '10:00:00.0'``, hours, 1.2 degree from it). :func:`card_wcs_disagreement` says
so per band, and ingest flags the band POSITION_MISMATCH: the cards or the WCS are wrong, and DS9
or Aladin place the object elsewhere than the catalog does.

The WCS centre is the one the reading code works out for a position (no second implementation):
``CRVAL`` where the WCS is an undistorted ICRS RA/DEC projection with ``CRPIX`` at the centre (a few
microseconds, :func:`~pipeline.sources.positions.icrs_crval`), else, where a full WCS may be read,
:func:`~pipeline.sources.positions.wcs_centre` (an astropy WCS, built once per set of WCS cards other
than ``CRPIX``: once per tile for cutouts of one tile, but about 1.3 ms a file where every file has
its own ``CRVAL``, 20 times a file's whole read). Before that, for such a WCS of a zenithal projection
with ``CRPIX`` elsewhere (``CRPIX1 = 100`` in a 200-pixel image), the tangent plane at ``CRVAL``
decides with a bound on its error (:func:`_decided_on_plane`: every case of 3000 random headers
against astropy, cards 1.99" and 2.01" away included), else the triangle inequality
(:func:`_decided_by_bounds`). Bands checked ``"cheap"`` (those after the band that gave the object's
position: :func:`pipeline.sources.read_band`) build no astropy WCS, as their position does not: a
distorted, non-ICRS or non-zenithal WCS of theirs is not compared.

Nothing is compared where the layout declares its files' WCS a placeholder (``wcs_position: false``,
the first challenge's ``CRVAL1 = CRVAL2 = 0``), where the file has no position cards or no usable
celestial WCS (BAD_WCS says why), or where the position came from the WCS itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pipeline.flags import POSITION_TOLERANCE_ARCSEC
from pipeline.sources.headers import longest_pixel_side_deg, pixel_matrix_deg
from pipeline.sources.positions import icrs_crval, wcs_centre
from pipeline.sources.wcs_check import wcs_defect
from schemas.layout import CoordinateSpec

CARD_WCS_TOLERANCE_ARCSEC = POSITION_TOLERANCE_ARCSEC
"""Largest separation (arcsec) between a band's position cards and its WCS's world position of the
image centre before the band is flagged POSITION_MISMATCH: the tolerance the bands' positions are
compared with (:data:`pipeline.flags.POSITION_TOLERANCE_ARCSEC`, 2"), so that one rule says where a
band's position is another than the object's. Cards that name the object's catalogue position while
the cutout is centred on the nearest pixel differ from the centre by at most half a pixel's diagonal
(0.07" for VIS, 0.21" for NISP, 0.14" for a 0.2" ground band), far within it; the trial's offsets
(1798.6", 1.2 degree) are far beyond it. ``lenshunt cutout`` warns from one pixel up
(:mod:`pipeline.store.cutout_position`), a sub-arcsecond offset that ingest does not flag."""

_WCS_KEYS = ("CRVAL1", "CRVAL2")


def card_wcs_disagreement(
    header: Mapping,
    coordinates: tuple[CoordinateSpec, ...],
    shape: tuple[int, int],
    ra_deg: float,
    dec_deg: float,
    *,
    full_wcs: bool = True,
    wcs_defects: list[str] | None = None,
) -> str | None:
    """Why the position cards' (ra, dec) disagree with the header's WCS centre, or None.

    Parameters
    ----------
    header
        The image HDU's header (astropy ``Header``, fitsio ``FITSHDR``, the fast reader's).
    coordinates
        The layout's position cards, in order (a ``CRVAL1``/``CRVAL2`` spec stands for the WCS).
    shape
        The image's (ny, nx).
    ra_deg, dec_deg
        The position the file gave (ICRS degrees, from its cards or its WCS).
    full_wcs
        False: compare only where the WCS's centre is its ``CRVAL`` (no astropy WCS built).
    wcs_defects
        What the position's reading found wrong with the WCS, if that was checked (else checked here):
        an unusable WCS is not compared (it is flagged BAD_WCS).

    Returns
    -------
    str or None
        The ingest reason, naming the cards, the separation and the tolerance; None where they agree
        or nothing is compared.

    Examples
    --------
    >>> cards = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"),)
    >>> header = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 51.0, "CRPIX2": 51.0,
    ...           "CDELT1": -1e-5, "CDELT2": 1e-5, "CRVAL1": 150.0, "CRVAL2": 2.0, "RA": 150.5, "DEC": 2.0}
    >>> print(card_wcs_disagreement(header, cards, (101, 101), 150.5, 2.0))
    position cards RA,DEC over 2 arcsec from the WCS's world position of the image centre (the cards ...
    >>> card_wcs_disagreement(header, cards, (101, 101), 150.0, 2.0 + 1 / 3600) is None
    True
    """
    specs = [spec for spec in coordinates if (spec.ra, spec.dec) != _WCS_KEYS]
    given = [spec for spec in specs if spec.ra in header and spec.dec in header]
    if not given or not math.isfinite(ra_deg) or "CTYPE1" not in header or "CTYPE2" not in header:
        return None  # no cards (the position is the WCS's), or no WCS
    if wcs_defects if wcs_defects is not None else wcs_defect(header):
        return None  # BAD_WCS says why
    far = _decided_on_plane(header, shape, ra_deg, dec_deg)
    if far is None:
        far = _decided_by_bounds(header, shape, ra_deg, dec_deg)
    if far is None:
        if not full_wcs:
            return None
        try:
            centre = wcs_centre(header, shape)
        except ValueError:
            return None  # not celestial, or astropy cannot evaluate it (BAD_WCS where it is a defect)
        far = separation_arcsec(ra_deg, dec_deg, centre[0], centre[1]) > CARD_WCS_TOLERANCE_ARCSEC
    if not far:
        return None
    names = "/".join(f"{spec.ra},{spec.dec}" for spec in given)
    return (
        f"position cards {names} over {CARD_WCS_TOLERANCE_ARCSEC:g} arcsec from the WCS's world position "
        "of the image centre (the cards or the WCS wrong; a layout whose files' WCS is a placeholder "
        "declares wcs_position: false)"
    )


_EXACT_ZENITHAL = frozenset({"TAN", "SIN", "ARC", "ZEA", "STG"})
"""Zenithal projections without PV parameters, whose reference point is the native pole: a point at
plane distance r (radians) from ``CRPIX`` lies within r (1 + r^2) of ``CRVAL`` on the sky."""


def _decided_by_bounds(header: Mapping, shape: tuple[int, int], ra: float, dec: float) -> bool | None:
    """Whether (ra, dec) is over the tolerance from the image centre, decided without an astropy WCS;
    None where it cannot be (another WCS, or cards within the centre's offset of the tolerance).

    >>> header = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 50.0, "CRPIX2": 50.0,
    ...           "CDELT1": -1e-4, "CDELT2": 1e-4, "CRVAL1": 150.0, "CRVAL2": 2.0}
    >>> [_decided_by_bounds(header, (100, 100), 150.0, d) for d in (2.0, 2.0 + 2 / 3600, 2.0 + 9 / 3600)]
    [False, None, True]
    """
    reference = icrs_crval(header, None)
    if reference is None:
        return None
    apart = separation_arcsec(ra, dec, reference[0], reference[1])
    try:
        pixels = math.hypot(
            (shape[1] + 1) / 2.0 - float(header["CRPIX1"]), (shape[0] + 1) / 2.0 - float(header["CRPIX2"])
        )
    except (KeyError, TypeError, ValueError):
        return None
    if pixels == 0.0:
        return apart > CARD_WCS_TOLERANCE_ARCSEC  # CRVAL is the centre: the reading's own shortcut
    if str(header["CTYPE1"]).strip()[5:] not in _EXACT_ZENITHAL:
        return None
    plane = math.radians(pixels * longest_pixel_side_deg(header))  # NaN: no pixel matrix, not decided
    reach = math.degrees(plane * (1.0 + plane * plane)) * 3600.0  # arcsec from CRVAL to the centre, at most
    if apart + reach <= CARD_WCS_TOLERANCE_ARCSEC:
        return False
    if apart - reach > CARD_WCS_TOLERANCE_ARCSEC:
        return True
    return None


def _decided_on_plane(header: Mapping, shape: tuple[int, int], ra: float, dec: float) -> bool | None:
    """Whether (ra, dec) is over the tolerance from the image centre, decided on the tangent plane at
    ``CRVAL`` without an astropy WCS, for an undistorted ICRS zenithal projection with the standard's
    ``LONPOLE`` (180 degrees) off the poles; None where it does not apply or cannot decide.

    The centre's intermediate world coordinates, the pixel matrix times its offset from ``CRPIX``, are
    its standard coordinates (xi, eta) to within rho^3 / 2 (rho its distance from ``CRVAL``: the
    zenithal projections' radial functions tan, sin, rho, 2 sin(rho/2), 2 tan(rho/2) agree to third
    order; FITS Paper II, section 5.1); the cards' are their gnomonic projection. Great circles
    project to straight lines and the gnomonic scale lies in [1, 1 + R^2] within radius R, so the
    sky separation lies in [(D - e) / (1 + R^2), D + e] for the plane distance D and error e. Trial:
    bands after the first (checked without a full WCS) were never compared where ``CRPIX`` was off
    the centre and the cards equal to ``CRVAL`` (a Y band's WCS 12" off, unflagged).

    >>> header = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 43.0, "CRPIX2": 33.5,
    ...           "CDELT1": -0.3 / 3600, "CDELT2": 0.3 / 3600, "CRVAL1": 150.0, "CRVAL2": 2.0}
    >>> _decided_on_plane(header, (66, 66), 150.0, 2.0)  # the centre 9.5 px = 2.85" from CRVAL
    True
    >>> _decided_on_plane(header, (66, 66), 150.0 + 2.85 / 3600 / math.cos(math.radians(2.0)), 2.0)
    False
    """
    reference = icrs_crval(header, None)
    projection = str(header.get("CTYPE1", "")).strip()[5:]
    if reference is None or projection not in _EXACT_ZENITHAL or abs(reference[1]) >= 89.999:
        return None
    try:
        if "LONPOLE" in header and float(header["LONPOLE"]) != 180.0:
            return None
        dx = (shape[1] + 1) / 2.0 - float(header["CRPIX1"])
        dy = (shape[0] + 1) / 2.0 - float(header["CRPIX2"])
    except (KeyError, TypeError, ValueError):
        return None
    matrix = pixel_matrix_deg(header)
    if matrix is None:
        return None
    (a, b), (c, d) = matrix
    x, y = math.radians(a * dx + b * dy), math.radians(c * dx + d * dy)
    ra0, dec0 = math.radians(reference[0]), math.radians(reference[1])
    lat, lon = math.radians(dec), math.radians(ra) - ra0
    cos_c = math.sin(dec0) * math.sin(lat) + math.cos(dec0) * math.cos(lat) * math.cos(lon)
    if cos_c < 0.5:  # over 60 degrees from CRVAL, where the centre is not
        return True if math.hypot(x, y) < 0.1 else None
    xi = math.cos(lat) * math.sin(lon) / cos_c
    eta = (math.cos(dec0) * math.sin(lat) - math.sin(dec0) * math.cos(lat) * math.cos(lon)) / cos_c
    rho = math.hypot(x, y)
    error = 0.5 * rho**3 + 1e-12
    plane = math.hypot(xi - x, eta - y)
    widest = max(math.hypot(xi, eta), rho + error)
    tolerance = math.radians(CARD_WCS_TOLERANCE_ARCSEC / 3600.0)
    if plane + error <= tolerance:
        return False
    if (plane - error) / (1.0 + widest**2) > tolerance:
        return True
    return None


def separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular separation (arcsec) of two positions in degrees (Vincenty's formula, plain floats: a
    few microseconds, where astropy's costs tens).

    >>> round(separation_arcsec(150.0, 2.0, 150.5, 2.0), 1), round(separation_arcsec(10, 89.9, 190, 89.9), 1)
    (1798.9, 720.0)
    """
    lon = math.radians(ra2 - ra1)
    lat1, lat2 = math.radians(dec1), math.radians(dec2)
    cos1, sin1, cos2, sin2 = math.cos(lat1), math.sin(lat1), math.cos(lat2), math.sin(lat2)
    across = math.hypot(cos2 * math.sin(lon), cos1 * sin2 - sin1 * cos2 * math.cos(lon))
    along = sin1 * sin2 + cos1 * cos2 * math.cos(lon)
    return math.degrees(math.atan2(across, along)) * 3600.0
