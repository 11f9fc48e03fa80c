"""Pixel scaling cards (``BSCALE``/``BZERO``) that leave an image no pixel values.

A FITS image's physical values are ``BZERO + BSCALE * stored``. With ``BSCALE = 0`` every physical
value is ``BZERO``, whatever the file stores: the standard gives the card no such value, and the
readers (astropy, cfitsio) apply it as written (user trial: an integer image with ``BSCALE = 0``
and varied stored values was called "every pixel 0: a blank image, no data"). Such a band is
UNREADABLE with a reason naming the card, not a blank image (CONSTANT_IMAGE).
"""

from __future__ import annotations

import math


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
