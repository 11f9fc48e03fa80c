"""Colour composites of one object's cutouts for visual inspection: arrays in, RGB uint8 out.

Each band is normalised on its own grid (sky median to 0, its 99.5th percentile to 1), bands of
coarser groups are resampled onto the finest grid (centres aligned, bilinear), and the bands are
mapped to colours by wavelength: red = reddest band, blue = bluest, green = mean of the bands
between (for ``euclid-sglc2``: R = H, G = (Y + J) / 2, B = VIS). One band gives grey. The
colours are stretched together with an asinh (Lupton et al. 2004) stretch that keeps hues.
Missing pixels (NaN) show as sky; a band without finite pixels contributes nothing.

Rows of the result run top to bottom as displayed, with FITS row 0 at the bottom, so cutouts
stored north-up display north-up.

Examples
--------
>>> from schemas.layout import load_layout
>>> layout = load_layout("sglc1-space")
>>> rgb = make_composite({"vis": np.ones((1, 101, 101), dtype=np.float32)}, layout)
>>> rgb.shape, rgb.dtype
((101, 101, 3), dtype('uint8'))
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

import numpy as np

from schemas.layout import Layout

DEFAULT_SOFTENING = 8.0
DEFAULT_PERCENTILE = 99.5


def normalise_band(image: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> np.ndarray:
    """Map an image's sky median to 0 and its ``percentile`` to 1; NaN becomes 0 (sky).

    An image without finite pixels gives zeros; a flat image gives zeros too.
    """
    image = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros(image.shape)
    values = image[finite]
    sky = float(np.median(values))
    scale = float(np.percentile(values, percentile)) - sky
    if not scale > 0:
        scale = float(values.max()) - sky
    if not scale > 0:
        return np.zeros(image.shape)
    return np.where(finite, (image - sky) / scale, 0.0)


def _axis_weights(n_in: int, n_out: int, ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    position = (np.arange(n_out) - (n_out - 1) / 2) * ratio + (n_in - 1) / 2
    position = np.clip(position, 0, n_in - 1)
    lower = np.minimum(np.floor(position).astype(np.int64), max(n_in - 2, 0))
    upper = np.minimum(lower + 1, n_in - 1)
    return lower, upper, position - lower


def resample(image: np.ndarray, scale_in: float, shape_out: tuple[int, int], scale_out: float) -> np.ndarray:
    """Bilinearly resample ``image`` (pixel scale ``scale_in``) onto a grid of ``shape_out`` pixels
    of ``scale_out``, both grids centred on the same sky position; edges are extended."""
    ratio = scale_out / scale_in
    y0, y1, wy = _axis_weights(image.shape[0], shape_out[0], ratio)
    x0, x1, wx = _axis_weights(image.shape[1], shape_out[1], ratio)
    wy, wx = wy[:, None], wx[None, :]
    top = image[np.ix_(y0, x0)] * (1 - wx) + image[np.ix_(y0, x1)] * wx
    bottom = image[np.ix_(y1, x0)] * (1 - wx) + image[np.ix_(y1, x1)] * wx
    return top * (1 - wy) + bottom * wy


def _finest_group(layout: Layout) -> str:
    return min(
        layout.groups,
        key=lambda group: (layout.group_pixel_scale(group), -math.prod(layout.group_shape(group))),
    )


def _band_planes(
    images: Mapping[str, np.ndarray], layout: Layout, percentile: float
) -> dict[str, np.ndarray]:
    """Normalised planes of every band on the finest group's grid, by band name."""
    unknown = [group for group in images if group not in layout.groups]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(layout.groups), n=1)
        raise ValueError(
            f"images has groups {unknown} that layout {layout.name!r} lacks (groups: {list(layout.groups)})"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    target = _finest_group(layout)
    shape_out, scale_out = layout.group_shape(target), layout.group_pixel_scale(target)
    planes = {}
    for group, bands in layout.groups.items():
        expected = (len(bands), *layout.group_shape(group))
        stack = images.get(group)
        if stack is None:
            stack = np.full(expected, np.nan)
        stack = np.asarray(stack)
        if stack.shape != expected:
            raise ValueError(
                f"group {group!r} images have shape {stack.shape}, layout {layout.name!r} says "
                f"{expected} (n_band, ny, nx)"
            )
        for band, image in zip(bands, stack):
            plane = normalise_band(image, percentile)
            if group != target:
                plane = resample(plane, layout.group_pixel_scale(group), shape_out, scale_out)
            planes[band] = plane
    return planes


def channel_bands(layout: Layout) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Band names averaged into red, green and blue: reddest, the ones between, bluest.

    Bands without a wavelength sort after those with one, in layout order.

    Examples
    --------
    >>> from schemas.layout import load_layout
    >>> channel_bands(load_layout("euclid-sglc2"))
    (('H',), ('Y', 'J'), ('VIS',))
    """
    ordered = sorted(layout.bands, key=lambda band: (band.wavelength_nm is None, band.wavelength_nm or 0.0))
    names = tuple(band.name for band in ordered)
    if len(names) == 1:
        return names, names, names
    if len(names) == 2:
        return names[1:], names, names[:1]
    return names[-1:], names[1:-1], names[:1]


def lupton_stretch(rgb: np.ndarray, softening: float = DEFAULT_SOFTENING) -> np.ndarray:
    """Asinh-stretch normalised (…, 3) colours together, keeping hue; returns uint8.

    Intensity ``I`` (the channel mean) maps to ``asinh(Q I) / asinh(Q)`` and every channel is
    scaled by the same factor; negative values become 0 and a pixel whose brightest channel
    would exceed 1 is scaled down as a whole (Lupton et al. 2004).
    """
    rgb = np.clip(np.nan_to_num(np.asarray(rgb, dtype=np.float64), nan=0.0), 0.0, None)
    intensity = rgb.mean(axis=-1, keepdims=True)
    safe = np.where(intensity > 0, intensity, 1.0)
    factor = np.where(intensity > 0, np.arcsinh(softening * safe) / (np.arcsinh(softening) * safe), 0.0)
    stretched = rgb * factor
    peak = stretched.max(axis=-1, keepdims=True)
    stretched = np.where(peak > 1, stretched / np.where(peak > 1, peak, 1.0), stretched)
    return np.round(stretched * 255).astype(np.uint8)


def make_composite(
    images: Mapping[str, np.ndarray],
    layout: Layout,
    *,
    softening: float = DEFAULT_SOFTENING,
    percentile: float = DEFAULT_PERCENTILE,
) -> np.ndarray:
    """RGB composite of one object (see module docstring for the recipe).

    Parameters
    ----------
    images : Mapping[str, numpy.ndarray]
        Store group name -> (n_band, ny, nx) float array in the layout's band order; NaN
        allowed; a missing group counts as all NaN.
    layout : Layout
        The store's layout (groups, shapes, pixel scales, wavelengths).
    softening : float
        Asinh softening ``Q``: larger shows fainter structure.
    percentile : float
        Per-band percentile that maps to 1 before the stretch.

    Returns
    -------
    numpy.ndarray
        uint8 array (ny, nx, 3) on the finest group's grid, top row first.
    """
    planes = _band_planes(images, layout, percentile)
    channels = [np.mean([planes[band] for band in bands], axis=0) for bands in channel_bands(layout)]
    return np.flipud(lupton_stretch(np.stack(channels, axis=-1), softening))
