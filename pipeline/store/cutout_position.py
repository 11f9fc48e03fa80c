"""Whether a cutout's WCS puts the catalog position at the cutout's centre (``lenshunt cutout``).

The catalog's ``ra``/``dec`` come from a band's position cards where the layout names some (e.g. the
first challenge's ``RA``/``DEC`` in radians), else from the centre of its WCS
(:mod:`pipeline.sources.positions`), and are the position most of the object's bands agree on
(POSITION_MISMATCH flags the others). A cutout file carries the input's WCS unchanged, so where the
cards and the WCS disagree, DS9 or Aladin would place the object elsewhere than the catalog does
(trial: the first challenge's files carry a placeholder WCS, ``CRVAL1 = CRVAL2 = 0`` at the centre,
278" from the catalog position of object 100002, and the cutout said nothing).
:func:`position_check` measures it with astropy (the WCS's world position of the image centre, its
separation from the catalog position, and the pixel where the WCS puts that position); where the
separation exceeds :data:`TOLERANCE_PIXELS` pixels of the band's WCS, the cutout gets ``LHPOSOFF``,
``LHCATX``/``LHCATY`` and COMMENT cards saying which position the catalog used and why. A layout
that declares its files' WCS a placeholder (``wcs_position: false``, as the first challenge's layouts
do) has the COMMENT say so: the WCS does not locate the object.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from schemas.layout import CoordinateSpec

TOLERANCE_PIXELS = 1.0
"""Largest separation, in pixels of the band's WCS (its mean pixel side), between the catalog position
and the world position of the cutout's centre pixel before the cutout says they disagree (0.1" for a
Euclid VIS band, 0.3" for NISP)."""

_WCS_KEYS = ("CRVAL1", "CRVAL2")

PLACEHOLDER_MIN_ARCSEC = 60.0
"""Least offset at which a WCS with ``CRVAL1 = CRVAL2 = 0`` is called the first challenge's placeholder
(278" for its object 100002); nearer, it may be a real field at (0, 0) a few pixels off (trial)."""

DECLARED_PLACEHOLDER = (
    "The layout declares its files' WCS a placeholder (wcs_position: false): it does not locate the "
    "object; use the catalog position."
)
"""What a cutout's COMMENT says of the WCS of a layout that declares it a placeholder."""


@dataclass(frozen=True)
class PositionCheck:
    """How far a cutout's WCS puts its centre from the catalog position.

    ``offset_arcsec`` is the separation of the WCS's world position of the centre pixel from the
    catalog's (ra, dec); ``pixel`` the FITS (1-based) pixel where the WCS puts the catalog position
    (NaN where it cannot); ``tolerance_arcsec`` one pixel of the WCS; ``comment`` says, when the
    offset exceeds it, that they disagree, which position the catalog used and why (else "").
    """

    offset_arcsec: float
    pixel: tuple[float, float]
    tolerance_arcsec: float
    comment: str = ""

    @property
    def disagrees(self) -> bool:
        """Whether the offset is over the tolerance."""
        return bool(self.comment)


def position_check(
    header,  # type: ignore[no-untyped-def]
    ra_deg: float,
    dec_deg: float,
    shape: tuple[int, int],
    coordinates: tuple[CoordinateSpec, ...] = (),
    wcs_position: bool = True,
) -> PositionCheck | None:
    """Compare the celestial WCS of ``header`` with the catalog position of its object.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The cutout's header (a usable celestial WCS, or none).
    ra_deg, dec_deg
        The catalog (store) position of the object, ICRS degrees.
    shape
        The image's (ny, nx); its centre is pixel ((nx + 1) / 2, (ny + 1) / 2) in FITS convention.
    coordinates
        The layout's position cards, to say whether the catalog position is this file's cards'.
    wcs_position
        The layout's ``wcs_position``: False where it declares its files' WCS a placeholder, which
        the comment then says (else a WCS at ``CRVAL1 = CRVAL2 = 0`` far off is called one).

    Returns
    -------
    PositionCheck or None
        None where there is nothing to compare: no catalog position, no celestial WCS, or one
        astropy cannot evaluate at the centre.

    Examples
    --------
    >>> from astropy.io import fits
    >>> cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 51.0, "CRPIX2": 51.0,
    ...          "CDELT1": -0.1 / 3600, "CDELT2": 0.1 / 3600, "CRVAL1": 10.0, "CRVAL2": 0.0}
    >>> check = position_check(fits.Header(cards), 10.0, 10 / 3600, (101, 101))
    >>> round(check.offset_arcsec, 3), [round(p, 3) for p in check.pixel], check.disagrees
    (10.0, [51.0, 151.0], True)
    >>> position_check(fits.Header(cards), 10.0, 0.05 / 3600, (101, 101)).disagrees
    False
    """
    from astropy import units
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header, relax=True, fix=True).celestial
            if not wcs.has_celestial or wcs.naxis != 2:
                return None
            ny, nx = shape
            centre = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
            catalog = SkyCoord(ra_deg * units.deg, dec_deg * units.deg, frame="icrs")
            offset = float(centre.separation(catalog).to_value(units.arcsec))
            scale = float(math.sqrt(abs(float(proj_plane_pixel_scales(wcs).prod())))) * 3600.0
        except Exception:  # wcslib and astropy raise many types on a WCS they cannot evaluate
            return None
        try:
            x, y = (float(value) + 1.0 for value in wcs.world_to_pixel(catalog))
        except Exception:  # a position the projection cannot reach (e.g. behind a TAN plane)
            x = y = math.nan
    if not (math.isfinite(offset) and math.isfinite(scale) and scale > 0):
        return None
    tolerance = TOLERANCE_PIXELS * scale
    check = PositionCheck(offset, (x, y), tolerance)
    if offset <= tolerance:
        return check
    comment = _comment(header, check, ra_deg, dec_deg, shape, coordinates, wcs_position)
    return PositionCheck(offset, (x, y), tolerance, comment)


def _comment(header, check: PositionCheck, ra_deg, dec_deg, shape, coordinates, wcs_position=True) -> str:  # type: ignore[no-untyped-def]
    """Why the cutout's WCS and the catalog position disagree, for a COMMENT card and a warning."""
    from pipeline.sources.positions import sky_position

    ny, nx = shape
    where = (
        f"at pixel ({check.pixel[0]:.1f}, {check.pixel[1]:.1f})"
        if all(math.isfinite(p) for p in check.pixel)
        else "outside its projection"
    )
    said = (
        f"This file's WCS puts the catalog position (ra, dec) = ({ra_deg:.6f}, {dec_deg:.6f}) deg "
        f"{where}, {check.offset_arcsec:.3f} arcsec from the image centre ({(nx + 1) / 2:g}, "
        f"{(ny + 1) / 2:g}): more than one pixel ({check.tolerance_arcsec:.3f} arcsec)."
    )
    specs = tuple(spec for spec in coordinates if (spec.ra, spec.dec) != _WCS_KEYS)
    card_ra, card_dec, _ = sky_position(header, specs, None)
    names = "/".join(_read_as(header, spec) for spec in specs)
    own = math.isfinite(card_ra) and (
        _separation_arcsec(card_ra, card_dec, ra_deg, dec_deg) <= check.tolerance_arcsec
    )
    if own:
        source = (
            f" The catalog position comes from this file's position cards {names}, which ingest reads before "
            "the WCS (the layout's coordinates)."
        )
    else:
        source = (
            " The catalog position is the one most of the object's bands agree on, from another "
            "band (this file's position cards do not give it)."
        )
    if not wcs_position:
        source += " " + DECLARED_PLACEHOLDER
    elif _placeholder(header) and check.offset_arcsec > PLACEHOLDER_MIN_ARCSEC:
        source += (
            " This WCS is a placeholder (CRVAL1 = CRVAL2 = 0, as in every file of the first lens "
            "finding challenge): it does not locate the object; use the catalog position."
        )
    return said + source


def _read_as(header, spec: CoordinateSpec) -> str:  # type: ignore[no-untyped-def]
    """``RA,DEC (unit)``: the cards and the unit their values are read in (trial: a sexagesimal
    ``RA = '10:01:08.62'``, read as hours, was said to be in the layout's unit, "(rad)")."""
    from pipeline.sources.positions import card_unit

    ra_unit = card_unit(header.get(spec.ra), spec.unit, hours=True)
    dec_unit = card_unit(header.get(spec.dec), spec.unit, hours=False)
    if ra_unit == dec_unit:
        return f"{spec.ra},{spec.dec} ({ra_unit})"
    return f"{spec.ra} ({ra_unit}), {spec.dec} ({dec_unit})"


def _placeholder(header) -> bool:  # type: ignore[no-untyped-def]
    """Whether the WCS's reference value is the (0, 0) placeholder of the first challenge's files."""
    try:
        return float(header.get("CRVAL1", math.nan)) == 0.0 and float(header.get("CRVAL2", math.nan)) == 0.0
    except (TypeError, ValueError):
        return False


def _separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    from astropy import units
    from astropy.coordinates import SkyCoord

    first = SkyCoord(ra1 * units.deg, dec1 * units.deg, frame="icrs")
    return float(first.separation(SkyCoord(ra2 * units.deg, dec2 * units.deg, frame="icrs")).arcsec)
