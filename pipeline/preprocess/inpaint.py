"""Invalid pixels (NaN, masked, BLANK) filled from their neighbours before scaling.

A recipe with ``inpaint_px`` > 0 (version 9, the default of new models) replaces each invalid
pixel by the Gaussian-weighted mean of the valid pixels around it (astropy's
:func:`~astropy.convolution.interpolate_replace_nans`, a normalised convolution with a
:class:`~astropy.convolution.Gaussian2DKernel` of sigma ``inpaint_px`` native pixels, its default
size ``8 sigma + 1``), one pass: pixels with no valid pixel within ``4 sigma`` (the kernel's
half-width) stay invalid, and the recipe gives them its fill value as before. The scaling's
statistics still leave every invalid pixel out.

Why: a fill value of 0 is the sky, so a masked or saturated galaxy core became a dark hole ringed
by the galaxy's light, a ring to a lens finder. Trial (2026-12-05): one NaN pixel at the centre of
the VIS cutout lifted non-lenses by 0.07 on average, 9 of 234 past 0.5 (a 3x3 hole: 27; 5x5: 61);
filled from their neighbours, 0.003 and 1 (3x3: 3; 5x5: 26); the shipped model on 400 simulated
objects (bench/RESULTS.md, "Invalid pixels at the centre").

The work is per affected image and only on the bounding box of its invalid pixels (plus the
kernel's half-width), on the host: astropy works on NumPy arrays, and images with invalid pixels
are few; a CuPy array's affected images are copied to the host and back.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.convolution import Gaussian2DKernel, interpolate_replace_nans
from astropy.utils.exceptions import AstropyUserWarning

from pipeline.preprocess import arrays as pp

__all__ = ["DEFAULT_INPAINT_PX", "MAX_INPAINT_PX", "inpaint_invalid", "inpaint_px_problem"]

DEFAULT_INPAINT_PX = 1.0
"""``lenshunt train``'s default sigma, in native pixels: a hole up to 9 px across is filled."""
MIN_INPAINT_PX = 0.5
"""Below it the kernel is one pixel wide and fills nothing (review trial: 1e-9 was recorded as
inpainting, a version-9 recipe that did what version 8 does)."""
MAX_INPAINT_PX = 3.0
"""Above it the fill costs seconds an object on heavily masked data (review trial: 4 bands of
200 x 200, 30% of pixels invalid: 93 ms an object at 1, 560 ms at 3, 2.2 s at 10)."""


def inpaint_px_problem(sigma_px: float) -> str | None:
    """Why ``sigma_px`` is no ``inpaint_px``, or None: 0 (none) or :data:`MIN_INPAINT_PX` to
    :data:`MAX_INPAINT_PX`.

    >>> inpaint_px_problem(1.0) is None, inpaint_px_problem(0.0) is None, inpaint_px_problem(0.1)
    (True, True, 'inpaint_px 0.1 fills nothing (its kernel is one pixel wide): give 0 (none) or 0.5-3 px')
    """
    if sigma_px == 0 or MIN_INPAINT_PX <= sigma_px <= MAX_INPAINT_PX:
        return None
    if 0 < sigma_px < MIN_INPAINT_PX:
        return (
            f"inpaint_px {sigma_px:g} fills nothing (its kernel is one pixel wide): give 0 (none) or 0.5-3 px"
        )
    return (
        f"inpaint_px {sigma_px:g} is outside 0 (none) or 0.5-3 px (above 3 it costs seconds an object "
        "on heavily masked data)"
    )


def inpaint_invalid(images: pp.Array, invalid: pp.Array, sigma_px: float) -> tuple[pp.Array, pp.Array]:
    """Invalid pixels replaced by the Gaussian-weighted mean of their valid neighbours.

    Parameters
    ----------
    images
        ``(n, band, y, x)`` raw pixel values (NumPy or CuPy); not modified.
    invalid
        Boolean mask of the same shape (:func:`pipeline.preprocess.arrays.invalid_pixels`).
    sigma_px
        Gaussian sigma of the weights, in pixels of ``images`` (> 0).

    Returns
    -------
    images, remaining
        A copy with the reachable invalid pixels filled (``images`` itself where none is invalid),
        and the mask of the invalid pixels left (no valid pixel within ``4 sigma_px``).

    Examples
    --------
    >>> x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    >>> x[0, 0, 2, 2] = np.nan
    >>> filled, left = inpaint_invalid(x, np.isnan(x), 1.0)
    >>> float(filled[0, 0, 2, 2]), bool(left.any())
    (12.0, False)
    """
    if sigma_px <= 0:
        raise ValueError(f"sigma_px must be > 0, not {sigma_px}")
    xp = pp.array_namespace(images)
    affected = np.argwhere(_to_host(xp.any(invalid, axis=(2, 3))))
    if affected.size == 0:
        return images, invalid
    kernel = Gaussian2DKernel(sigma_px)
    reach = kernel.shape[0] // 2
    out, remaining = images.copy(), invalid.copy()
    for row, band in affected:
        mask = _to_host(invalid[row, band])
        if mask.all():
            continue
        ys, xs = np.nonzero(mask)
        y0, y1 = max(ys.min() - reach, 0), ys.max() + reach + 1
        x0, x1 = max(xs.min() - reach, 0), xs.max() + reach + 1
        box = _to_host(images[row, band, y0:y1, x0:x1]).astype(np.float64)
        box[mask[y0:y1, x0:x1]] = np.nan
        with warnings.catch_warnings():  # "NaN values detected post convolution": pixels out of reach
            warnings.simplefilter("ignore", AstropyUserWarning)
            filled = interpolate_replace_nans(box, kernel, boundary="extend")
        left = ~np.isfinite(filled)
        filled[left] = 0.0  # given the recipe's fill value after scaling
        out[row, band, y0:y1, x0:x1] = xp.asarray(filled, dtype=images.dtype)
        remaining[row, band, y0:y1, x0:x1] = xp.asarray(left)
    return out, remaining


def _to_host(x: pp.Array) -> np.ndarray:
    """A NumPy array of ``x`` (CuPy's ``.get()``; NumPy as is)."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)
