"""Pixel scaling cards (``BSCALE``/``BZERO``) that leave an image no pixel values.

A FITS image's physical values are ``BZERO + BSCALE * stored``. With ``BSCALE = 0`` every physical
value is ``BZERO``, whatever the file stores: the standard gives the card no such value, and the
readers (astropy, cfitsio) apply it as written (user trial: an integer image with ``BSCALE = 0``
and varied stored values was called "every pixel 0: a blank image, no data"). Such a band is
UNREADABLE with a reason naming the card, not a blank image (CONSTANT_IMAGE).

:func:`physical_pixels` applies the cards (and ``BLANK``, null pixels as NaN) to the pixels as stored,
for the files astropy reads.
"""

from __future__ import annotations

import math

import numpy as np


def scaling_defect(header) -> str | None:
    """Why ``header``'s scaling leaves the image no pixel values, or None.

    ``header`` is any mapping with ``get`` (an astropy, fitsio or fast-reader header).

    >>> scaling_defect({"BSCALE": 0.0, "BZERO": 32768})
    'invalid card BSCALE = 0: it makes every physical pixel value BZERO (32768), whatever the file stores'
    >>> scaling_defect({"BSCALE": 0})[:50], scaling_defect({"BSCALE": 2.5}), scaling_defect({})
    ('invalid card BSCALE = 0: it makes every physical p', None, None)
    """
    scale = _number(header.get("BSCALE"))
    if scale is None or scale != 0:
        return None
    zero = _number(header.get("BZERO")) or 0.0
    return (
        f"invalid card BSCALE = 0: it makes every physical pixel value BZERO ({zero:g}), whatever the "
        "file stores"
    )


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None (absent, text, boolean)."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def physical_pixels(stored: np.ndarray, header) -> np.ndarray:
    """An image HDU's physical pixel values from its stored ones, null pixels NaN.

    As the FITS standard says (v4.0, 4.4.2.5 and 5.3): ``BLANK`` is the stored integer of null pixels,
    compared before scaling, and a physical value is ``BZERO + BSCALE * stored``; an unsigned image is
    stored signed, offset by ``BZERO`` (``2**(N-1)``; a signed 8-bit one by ``BZERO = -128``). The
    readers' own handling is not used: astropy (8.0) keeps an unsigned image's nulls as numbers
    (user trial: an int16 with ``BZERO = 32768`` and ``BLANK = 32767`` gave 65535, an int32 with
    ``BZERO = 2**31`` gave 0, a RICE ``.fits.fz`` with ``ZBLANK`` alike, all with no flag), ignores
    ``BLANK = 0``, and fails on a signed 8-bit image with ``BLANK``; cfitsio returns nulls as numbers.

    Parameters
    ----------
    stored
        The HDU's pixels as stored, any shape: integers (``BITPIX`` 8, 16, 32, 64: astropy's
        ``do_not_scale_image_data=True``; a tile-compressed image's ``ZBLANK``, card or column, already
        mapped to its header's ``BLANK`` by astropy) or floats.
    header
        The image header (astropy ``Header``, or any mapping with ``get``): ``BSCALE``, ``BZERO``,
        ``BLANK`` (a ``BLANK`` that is no integer, or of a float image, is ignored, as in astropy).

    Returns
    -------
    numpy.ndarray
        ``stored`` itself when there is nothing to apply; else float32 (8- and 16-bit integers, float32,
        and integers offset by a whole ``BZERO`` at ``BSCALE = 1``: exact to float32's rounding) or
        float64, with NaN at the null pixels; same shape.

    Raises
    ------
    ValueError
        If ``BSCALE`` or ``BZERO`` is there but no number.

    Examples
    --------
    >>> stored = np.array([32767, -32768, 0], ">i2")
    >>> physical_pixels(stored, {"BZERO": 32768, "BSCALE": 1, "BLANK": 32767})
    array([   nan,     0., 32768.], dtype=float32)
    >>> physical_pixels(np.array([0, 5], "u1"), {"BLANK": 0})
    array([nan,  5.], dtype=float32)
    """
    scale, zero = _card_number(header, "BSCALE", 1.0), _card_number(header, "BZERO", 0.0)
    blank = header.get("BLANK")
    integer = stored.dtype.kind in "iu"
    nulls = None
    if integer and isinstance(blank, int) and not isinstance(blank, bool):
        found = stored == blank  # the stored integer, before any scaling
        nulls = found if found.any() else None
    if scale == 1 and zero == 0 and nulls is None:
        return stored
    if integer and scale == 1 and zero == int(zero):
        data = _offset(stored, int(zero)).astype(np.float32)  # exact integers, rounded once
    else:
        wide = integer and stored.dtype.itemsize > 2
        data = stored.astype(np.float64 if wide or stored.dtype.itemsize > 4 else np.float32)
        if scale != 1:
            data *= scale
        if zero != 0:
            data += zero
    if nulls is not None:
        data[nulls] = np.nan
    return data


def _offset(stored: np.ndarray, zero: int) -> np.ndarray:
    """``stored + zero`` exactly, as int64 or (an unsigned 64-bit image) uint64."""
    if stored.dtype.itemsize == 8 and zero == 1 << 63:
        return stored.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    if -(1 << 62) <= zero < 1 << 62 and stored.dtype.itemsize < 8:
        return stored.astype(np.int64) + zero
    return stored.astype(np.float64) + zero  # beyond int64: rounded as astropy rounds it


def _card_number(header, keyword: str, default: float) -> float:
    """The numeric value of ``keyword``, ``default`` when absent; ValueError when no number."""
    value = header.get(keyword)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"card {keyword} = {value!r} is no number")
    return value
