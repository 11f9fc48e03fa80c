"""Colour composites and per-band panels of one object's cutouts: arrays in, RGB/grey uint8 out.

Each band is normalised on its own grid (sky median to 0). Bands finer than the coarsest group
are smoothed towards its resolution (a Gaussian of sigma = :data:`MATCH_SIGMA` times the
pixel-size ratio, in fine pixels; tuned on Euclid-like PSFs, VIS 0.17" and NISP 0.5" FWHM, where
a grey scene stays grey within about 20 %). All bands are resampled onto the finest grid
(centres aligned, bilinear) and scaled so that their 99.5th percentiles match there. Without that
matching, a sharp VIS core over blurred NIR bands shows as a blue dot in every galaxy core and
compact sources get coloured rims. Bands map to colours by wavelength: red = reddest band, blue =
bluest, green = mean of the bands between (for ``euclid-sglc2``: R = H, G = (Y + J) / 2,
B = VIS), among the object's bands with pixels; one band gives grey. The colours are stretched
together by astropy's
:func:`~astropy.visualization.make_lupton_rgb` (Lupton et al. 2004: asinh of the common
intensity, hues kept, saturated pixels scaled as a whole).

Invalid pixels (NaN in the store: non-finite, FITS ``BLANK`` nulls of integer images, the layout's
masked value) never set a limit of the stretch (sky median, percentiles) and are drawn in
:data:`INVALID_RGB`, magenta, in the composite and in every band panel (trial: drawn black, a 30x30
NaN corner looked like dark sky).

:func:`band_panel` gives one band at its own resolution, asinh-stretched on its own
(:class:`astropy.visualization.AsinhStretch`, the same curve as the composite's), for the per-band
panels beside the composite; it is grey, so any colour stands out there.

Rows of the results run top to bottom as displayed, with FITS row 0 at the bottom, so cutouts
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
from collections.abc import Collection, Mapping

import numpy as np

from schemas.layout import Layout

DEFAULT_SOFTENING = 8.0
DEFAULT_PERCENTILE = 99.5
MATCH_SIGMA = 0.8
"""Gaussian sigma, in pixels of the coarsest group, that brings finer bands near its resolution
(1.0 over-smooths a Euclid VIS point source, 0.7 under-smooths it; see the module docstring)."""
MIN_WHITE_SIGMA = 20.0
"""The white point lies at least this many noise sigmas (astropy's ``mad_std`` of the finite pixels)
above the sky, or at the brightest pixel where that is lower: in a noise-dominated cutout (a real
challenge VIS or KiDS-like R cutout: its 99.5th percentile 4 sigma above sky) the percentile alone
made 1-sigma noise 60 % grey, salt and pepper over a faint source (trial). At 20 sigma (softening
8), 1-sigma noise is 14 % grey, a 3-sigma arc pixel 37 % and a 19-sigma core near white; a
source-dominated cutout, whose percentile lies higher, is unchanged."""
MIN_FINITE_FRACTION = 0.5
"""A band colours the composite only when at least this fraction of its pixels is finite: a band
mostly NaN (a cut-off or masked file) would leave its channel nearly black (trial)."""
INVALID_RGB = (255, 0, 255)
"""Colour of invalid pixels in every picture: full magenta. Sky is black and sources grey to white in
a band panel, so no valid pixel there has a hue; in a composite a pixel is full magenta only where
the reddest and bluest bands are saturated and the bands between are at sky level, which no source
is. A mid-grey would read as faint emission; black as sky. Magenta is also not the grading page's
orange outline of a flagged band."""


def normalise_band(image: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> np.ndarray:
    """Map an image's sky median to 0 and its :func:`white_level` (the ``percentile``, at least
    :data:`MIN_WHITE_SIGMA` noise sigmas) to 1, both of its finite pixels only; NaN becomes 0 (sky),
    for the smoothing and resampling (pictures paint them over afterwards).

    An image without finite pixels gives zeros; a flat image gives zeros too.
    """
    image = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros(image.shape)
    values = image[finite]
    sky = float(np.median(values))
    scale = white_level(values - sky, percentile)
    if not scale > 0:
        return np.zeros(image.shape)
    return np.where(finite, (image - sky) / scale, 0.0)


def white_level(values: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> float:
    """The value drawn white of sky-subtracted ``values`` (finite, 1-d): their ``percentile``, raised
    to :data:`MIN_WHITE_SIGMA` noise sigmas but not past their largest value; the largest value where
    the percentile is not above 0; 0 where no value is.

    >>> noise = np.random.default_rng(1).normal(0.0, 1.0, 10_000)
    >>> round(float(np.percentile(noise, 99.5)), 1), round(white_level(np.append(noise, 100.0)), 1)
    (2.6, 20.1)
    """
    from astropy.stats import mad_std

    if not values.size:
        return 0.0
    largest = float(values.max())
    level = float(np.percentile(values, percentile))
    if not level > 0:
        return largest
    return max(level, min(MIN_WHITE_SIGMA * float(mad_std(values)), largest))


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
    """Resolution-matched planes of every band on the finest group's grid, by band name.

    Each plane's ``percentile`` is 1 (on the common grid, after the matching).
    """
    from scipy.ndimage import gaussian_filter

    unknown = [group for group in images if group not in layout.groups]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(layout.groups), n=1)
        raise ValueError(
            f"images has groups {unknown} that layout {layout.name!r} lacks (groups: {list(layout.groups)})"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    target = _finest_group(layout)
    shape_out, scale_out = layout.group_shape(target), layout.group_pixel_scale(target)
    coarsest = max(layout.group_pixel_scale(group) for group in layout.groups)
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
        ratio = coarsest / layout.group_pixel_scale(group)
        for band, image in zip(bands, stack):
            plane = normalise_band(image, percentile)
            if ratio > 1:
                plane = gaussian_filter(plane, sigma=MATCH_SIGMA * ratio, mode="nearest")
            if group != target:
                plane = resample(plane, layout.group_pixel_scale(group), shape_out, scale_out)
            # invalid pixels (0 here) must not lower the level: a band 40 % NaN came out brighter
            valid = ~_missing_on_grid(image, layout, group)
            planes[band] = _unit_percentile(plane, percentile, valid)
    return planes


def _holes(images: Mapping[str, np.ndarray], layout: Layout, bands: Collection[str]) -> np.ndarray:
    """Where any of ``bands`` has no finite pixel, on the finest group's grid (bool, ny x nx).

    A coarser band's pixel covers the finer pixels whose resampled NaN weight is over a half.
    """
    holes = np.zeros(layout.group_shape(_finest_group(layout)), dtype=bool)
    for group, names in layout.groups.items():
        stack = images.get(group)
        for index, band in enumerate(names):
            if band in bands and stack is not None:
                holes |= _missing_on_grid(stack[index], layout, group)
    return holes


def _missing_on_grid(image: np.ndarray, layout: Layout, group: str) -> np.ndarray:
    """Where one band of ``group`` has no finite pixel, on the finest group's grid (bool, ny x nx)."""
    target = _finest_group(layout)
    missing = (~np.isfinite(np.asarray(image))).astype(np.float64)
    if group != target:
        shape_out, scale_out = layout.group_shape(target), layout.group_pixel_scale(target)
        missing = resample(missing, layout.group_pixel_scale(group), shape_out, scale_out)
    return missing > 0.5


def _finite_fractions(images: Mapping[str, np.ndarray], layout: Layout) -> dict[str, float]:
    """The fraction of each band's pixels that are finite, by band name (0 for a missing group)."""
    fractions = {}
    for group, bands in layout.groups.items():
        stack = images.get(group)
        for index, band in enumerate(bands):
            fractions[band] = (
                float(np.isfinite(np.asarray(stack[index])).mean()) if stack is not None else 0.0
            )
    return fractions


def _unit_percentile(plane: np.ndarray, percentile: float, valid: np.ndarray) -> np.ndarray:
    """``plane`` scaled so that the :func:`white_level` of its ``valid`` pixels is 1."""
    level = white_level(plane[valid], percentile)
    return plane / level if level > 0 else plane


def channel_bands(
    layout: Layout, present: Collection[str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Band names averaged into red, green and blue: reddest, the ones between, bluest.

    Bands without a wavelength sort after those with one, in layout order. With ``present``, only
    those bands are used (an object's bands with pixels), unless none of the layout's is present.

    Examples
    --------
    >>> from schemas.layout import load_layout
    >>> channel_bands(load_layout("euclid-sglc2"))
    (('H',), ('Y', 'J'), ('VIS',))
    >>> channel_bands(load_layout("euclid-sglc2"), present={"VIS", "Y", "J"})  # no H file
    (('J',), ('Y',), ('VIS',))
    """
    bands = [band for band in layout.bands if present is None or band.name in present] or layout.bands
    ordered = sorted(bands, key=lambda band: (band.wavelength_nm is None, band.wavelength_nm or 0.0))
    names = tuple(band.name for band in ordered)
    if len(names) == 1:
        return names, names, names
    if len(names) == 2:
        return names[1:], names, names[:1]
    return names[-1:], names[1:-1], names[:1]


def band_panel(
    image: np.ndarray, *, softening: float = DEFAULT_SOFTENING, percentile: float = DEFAULT_PERCENTILE
) -> np.ndarray:
    """One band at its own resolution as a uint8 RGB image (ny, nx, 3), grey, top row first.

    Sky (median) is black, the ``percentile`` is white, through astropy's
    :class:`~astropy.visualization.AsinhStretch` ``asinh(Q x) / asinh(Q)`` with ``Q = softening``
    (the composite's curve). Invalid (non-finite) pixels are :data:`INVALID_RGB`.
    """
    from astropy.visualization import AsinhStretch

    plane = np.clip(normalise_band(image, percentile), 0.0, None)
    grey = np.round(AsinhStretch(a=1.0 / softening)(plane, clip=True) * 255).astype(np.uint8)
    rgb = np.where(~np.isfinite(np.asarray(image))[..., None], np.uint8(INVALID_RGB), grey[..., None])
    return np.flipud(rgb.astype(np.uint8))


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
        Asinh softening ``Q`` of :func:`astropy.visualization.make_lupton_rgb`: larger shows
        fainter structure.
    percentile : float
        Per-band percentile that maps to 1 before the stretch.

    Returns
    -------
    numpy.ndarray
        uint8 array (ny, nx, 3) on the finest group's grid, top row first; the invalid pixels of
        the bands shown are :data:`INVALID_RGB`.
    """
    from astropy.visualization import make_lupton_rgb

    planes = _band_planes(images, layout, percentile)
    # a band without pixels (a missing file, a band of the layout no model reads) or with only a few
    # gives no colour: the others are spread over the channels instead (trial: a black red channel)
    finite = _finite_fractions(images, layout)
    present = {band for band, plane in planes.items() if plane.any() and finite[band] >= MIN_FINITE_FRACTION}
    channels = channel_bands(layout, present)
    red, green, blue = (np.mean([planes[band] for band in bands], axis=0) for bands in channels)
    q, stretch = lupton_parameters(softening)
    with np.errstate(invalid="ignore", divide="ignore"):  # intensity 0 (sky) divides 0 by 0
        rgb = make_lupton_rgb(red, green, blue, minimum=0.0, stretch=stretch, Q=q)
    # a hole in one band (a masked core) is INVALID_RGB, as in its panel, not the others' colour
    # (trial: a yellow disc where VIS was NaN), nor black (trial: read as dark sky)
    holes = _holes(images, layout, {band for bands in channels for band in bands})
    rgb = np.where(holes[..., None], np.uint8(INVALID_RGB), np.asarray(rgb, dtype=np.uint8))
    return np.flipud(rgb.astype(np.uint8))


def lupton_parameters(softening: float) -> tuple[float, float]:
    """``(Q, stretch)`` of astropy's Lupton stretch that maps intensity ``I`` to
    ``asinh(softening * I) / asinh(softening)``, so that intensity 1 (every band's 99.5th
    percentile) is full scale.

    astropy's stretch is ``asinh(Q I / stretch) * 0.1 / asinh(0.1 Q)``.

    >>> q, stretch = lupton_parameters(8.0)
    >>> round(q, 3), round(q / stretch, 3)
    (2.812, 8.0)
    """
    q = 10.0 * math.sinh(0.1 * math.asinh(softening))
    return q, q / softening
