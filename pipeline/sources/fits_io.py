"""Read one cutout band from a FITS file into a native-endian float32 image and its flags.

Per-object problems never raise from :func:`read_band`: they come back as :mod:`pipeline.flags`
bits with a reason, so a bad file costs one flagged object, never a run. Supported variants:
plain float images, big-endian data (FITS is always big-endian; we return native order),
scaled integers (BSCALE/BZERO), tile-compressed images (the first 2-D image HDU is used), and
the real challenge files (HIERARCH cards, RA/DEC in radians).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from pipeline.flags import Flag
from pipeline.sources.headers import HeaderSummary, summarise_header
from schemas.layout import CoordinateSpec

_BYTES_PER_PIXEL = {8: 1, 16: 2, 32: 4, 64: 8, -32: 4, -64: 8}


@dataclass(frozen=True)
class BandRead:
    """What reading one band of one object gave.

    ``image`` is None when the band has no usable pixels (see ``flags``); otherwise it is a
    float32 array of the layout's shape with NaN for masked or non-finite pixels.
    """

    image: np.ndarray | None
    flags: int
    reason: str | None = None
    ra_deg: float = math.nan
    dec_deg: float = math.nan
    extra_reasons: tuple[str, ...] = field(default=())
    header: HeaderSummary | None = None
    """The kept WCS, unit and calibration cards (:mod:`pipeline.sources.headers`) when ``image`` is."""


def read_band(
    path: str | os.PathLike[str] | None,
    expected_shape: tuple[int, int],
    *,
    masked_value: float | None = None,
    coordinates: tuple[CoordinateSpec, ...] = (),
) -> BandRead:
    """Read one band's cutout, returning the image or the flag that says why there is none.

    Parameters
    ----------
    path
        The file, or None when discovery found no file for this band.
    expected_shape
        The layout's (ny, nx) for the band; another shape is flagged WRONG_SHAPE.
    masked_value
        Pixel value that marks masked pixels (they become NaN and set MASKED_PIXELS).
    coordinates
        Header keywords to try, in order, for the sky position.
    """
    if path is None:
        return BandRead(None, Flag.MISSING_FILE, "missing file")
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        return BandRead(None, Flag.MISSING_FILE, "missing file")
    if size == 0:
        return BandRead(None, Flag.UNREADABLE, "empty file")

    import fitsio

    try:
        fits = fitsio.FITS(path)
    except OSError:
        return BandRead(None, Flag.UNREADABLE, "not a FITS file")
    with fits:
        hdu_index = _first_image_hdu(fits)
        if hdu_index is None:
            return BandRead(None, Flag.UNREADABLE, "no 2-D image HDU")
        hdu = fits[hdu_index]
        try:
            header = hdu.read_header()
        except OSError:
            return BandRead(None, Flag.UNREADABLE, "unreadable header")
        ra_deg, dec_deg = sky_position(header, coordinates)
        shape = tuple(int(n) for n in hdu.get_dims())
        if shape != tuple(expected_shape):
            return BandRead(
                None, Flag.WRONG_SHAPE, f"shape {shape} != {tuple(expected_shape)}", ra_deg, dec_deg
            )
        try:
            data = hdu.read()
        except OSError:
            if size < _declared_end(header):
                return BandRead(None, Flag.TRUNCATED, "truncated file", ra_deg, dec_deg)
            return BandRead(None, Flag.UNREADABLE, "unreadable data", ra_deg, dec_deg)
    image, flags, reasons = clean_pixels(data, masked_value)
    if math.isnan(ra_deg):
        flags |= Flag.NO_COORDINATES
    if flags & Flag.ALL_NONFINITE:
        return BandRead(None, flags, reasons[0], ra_deg, dec_deg)
    return BandRead(image, flags, None, ra_deg, dec_deg, tuple(reasons), summarise_header(header))


def clean_pixels(data: np.ndarray, masked_value: float | None) -> tuple[np.ndarray, int, list[str]]:
    """Native-endian float32 copy of ``data`` with masked and non-finite pixels set to NaN.

    Returns the image, the flags it earned and the reasons, most severe first.
    """
    image = np.asarray(data, dtype=np.float32)  # converts byte order and scaled integers
    flags = 0
    reasons: list[str] = []
    if masked_value is not None:
        masked = image == np.float32(masked_value)
        if masked.any():
            image = np.where(masked, np.float32(np.nan), image)
            flags |= Flag.MASKED_PIXELS
            reasons.append("masked pixels")
    finite = np.isfinite(image)
    if not finite.all():
        if not finite.any():
            flags |= Flag.ALL_NONFINITE
            reasons.insert(0, "all pixels NaN or masked")
        else:
            flags |= Flag.SOME_NONFINITE
            reasons.append("some pixels NaN")
            image = np.where(finite, image, np.float32(np.nan))
    return np.ascontiguousarray(image), flags, reasons


def sky_position(header, coordinates: tuple[CoordinateSpec, ...]) -> tuple[float, float]:
    """(ra, dec) in degrees from the first spec whose keywords the header has; NaN otherwise.

    RA is wrapped into [0, 360).
    """
    for spec in coordinates:
        if spec.ra in header and spec.dec in header:
            try:
                ra, dec = float(header[spec.ra]), float(header[spec.dec])
            except (TypeError, ValueError):
                continue
            if spec.unit == "rad":
                ra, dec = math.degrees(ra), math.degrees(dec)
            if math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0:
                return ra % 360.0, dec
    return math.nan, math.nan


def _first_image_hdu(fits) -> int | None:
    for index, hdu in enumerate(fits):
        if hdu.get_exttype() == "IMAGE_HDU" and len(hdu.get_dims()) == 2:
            return index
    return None


def _declared_end(header) -> int:
    """Bytes a primary image with this header needs: header blocks plus data."""
    try:
        n_pixels = int(header["NAXIS1"]) * int(header["NAXIS2"])
        data_bytes = n_pixels * _BYTES_PER_PIXEL[int(header["BITPIX"])]
    except (KeyError, ValueError):
        return 0
    header_bytes = 2880 * math.ceil((len(header.records()) + 1) * 80 / 2880)
    return header_bytes + data_bytes
