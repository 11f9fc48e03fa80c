"""Pure array functions that turn store images into model inputs, on NumPy or CuPy alike.

Every function takes its array namespace from its input (:func:`array_namespace`), so the same
code runs on the CPU with NumPy and on the GPU with CuPy, without copies between the two. Images
are ``(n, band, y, x)`` (the store's layout, "NCHW") until :func:`to_nhwc` turns them into the
channels-last batches Keras wants.

The order the recipe (:mod:`pipeline.preprocess.recipe`) applies them in is: :func:`mask_invalid` (masked and
non-finite pixels -> NaN), a per-band scaling to [0, 1] (:func:`scale_clip_minmax` or
:func:`scale_log`; NaN stays NaN), :func:`fill_nan` (NaN -> the fill value), then resampling
(:func:`resample`: bilinear upsampling to the finest grid and :func:`average_pool`, fused into two
matrix products), channel expansion (:func:`expand_channels`) and :func:`to_nhwc`. The recipe
finds invalid pixels once with :func:`invalid_pixels` and fills them after scaling, which gives
the same values as masking first.

Examples
--------
>>> import numpy as np
>>> x = np.array([[[[0.0, 1.0]]]], dtype=np.float32)
>>> resize_bilinear(x, (1, 4))[0, 0, 0].tolist()
[0.0, 0.25, 0.75, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Literal

import numpy as np

from pipeline.flags import UNUSABLE

Array = Any
"""A NumPy or CuPy array (CuPy is never imported unless a CuPy array is passed)."""

ROBUST_SIGMA_PER_MAD = 1.4826
"""Ratio of a Gaussian's standard deviation to its median absolute deviation."""


def array_namespace(*arrays: object) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) of the given arrays.

    CuPy wins if any argument is a CuPy array; everything else (NumPy arrays, Python scalars,
    lists) maps to NumPy. CuPy is imported only when a CuPy array is seen.

    Examples
    --------
    >>> array_namespace(np.zeros(3)).__name__
    'numpy'
    """
    for array in arrays:
        if type(array).__module__.split(".")[0] == "cupy":
            import cupy

            return cupy
    return np


def per_band(values: Array | np.ndarray, xp: ModuleType, ndim: int = 4) -> Array:
    """Per-band values of shape ``(band,)`` as float32, shaped to broadcast over ``(n, band, y, x)``."""
    column = xp.asarray(values, dtype=xp.float32).reshape(-1)
    return column.reshape((1, -1) + (1,) * (ndim - 2))


def invalid_pixels(x: Array, masked_value: float | None = None) -> Array:
    """Boolean array, True at non-finite pixels of ``x`` and at pixels equal to ``masked_value``."""
    xp = array_namespace(x)
    invalid = xp.isfinite(x)
    xp.logical_not(invalid, out=invalid)
    if masked_value is not None:
        invalid |= x == xp.asarray(masked_value, dtype=x.dtype)
    return invalid


def mask_invalid(x: Array, masked_value: float | None = None) -> Array:
    """Float32 copy of ``x`` with non-finite pixels, and pixels equal to ``masked_value``, set to NaN."""
    xp = array_namespace(x)
    x = xp.asarray(x, dtype=xp.float32)
    return xp.where(invalid_pixels(x, masked_value), xp.float32(xp.nan), x)


def scale_clip_minmax(x: Array, low: Array | np.ndarray, high: Array | np.ndarray) -> Array:
    """Clip each band to ``[low, high]`` and map that range linearly onto ``[0, 1]``.

    ``low`` and ``high`` hold one value per band (axis 1 of ``x``). NaN pixels stay NaN. A band
    whose ``high`` is not above its ``low`` (a constant training band) maps to 0.
    """
    xp = array_namespace(x)
    low_b, high_b = per_band(low, xp, x.ndim), per_band(high, xp, x.ndim)
    span = high_b - low_b
    safe_span = xp.where(span > 0, span, xp.float32(1.0))
    out = xp.clip(x, low_b, high_b)  # a new array: the rest works in place on it
    out -= low_b
    out /= safe_span
    return out


def scale_log(
    x: Array, low: Array | np.ndarray, high: Array | np.ndarray, softening: Array | np.ndarray
) -> Array:
    """Clip each band to ``[low, high]``, then a logarithmic stretch onto ``[0, 1]``.

    ``y = log1p((clip(x) - low) / s) / log1p((high - low) / s)`` with ``s`` the band's
    ``softening`` (the recipe uses the band's robust noise sigma): faint pixels near the
    background are stretched, bright cores compressed. NaN pixels stay NaN.
    """
    xp = array_namespace(x)
    low_b, high_b = per_band(low, xp, x.ndim), per_band(high, xp, x.ndim)
    soft_b = per_band(softening, xp, x.ndim)
    norm = xp.log1p((high_b - low_b) / soft_b)
    safe_norm = xp.where(norm > 0, norm, xp.float32(1.0))
    out = xp.clip(x, low_b, high_b)  # a new array: the rest works in place on it
    out -= low_b
    out /= soft_b
    xp.log1p(out, out=out)
    out /= safe_norm
    return out


def fill_nan(x: Array, value: float) -> Array:
    """``x`` with NaN (and any other non-finite) pixels replaced by ``value``."""
    xp = array_namespace(x)
    return xp.where(xp.isfinite(x), x, xp.asarray(value, dtype=x.dtype))


def fill_unusable(x: Array, flags: Array | np.ndarray, value: float) -> Array:
    """``x`` with every pixel of the objects whose ``flags`` intersect ``UNUSABLE`` set to ``value``."""
    xp = array_namespace(x)
    unusable = ~usable_objects(xp.asarray(flags))
    return xp.where(unusable.reshape((-1,) + (1,) * (x.ndim - 1)), xp.asarray(value, dtype=x.dtype), x)


def usable_objects(flags: Array | np.ndarray) -> Array:
    """Boolean array, True where an object's ``flags`` do not intersect ``UNUSABLE``."""
    xp = array_namespace(flags)
    return (xp.asarray(flags).astype(xp.int64) & int(UNUSABLE)) == 0


def blank_band_rows(
    groups: Mapping[str, np.ndarray], used: Mapping[str, Sequence[int]] | None = None
) -> np.ndarray:
    """Rows with a band that has no finite pixel, in any group: bool, shape (n,).

    Ingest flags every such band (MISSING_FILE, ALL_NONFINITE, ...) and so makes its object
    unusable; a usable object with one read from a store has lost pixels there (a chunk file of the
    store is missing: Zarr reads it as the fill value, NaN).

    Parameters
    ----------
    groups : mapping of str to ndarray, each shape (n, band, y, x)
    used : mapping of str to sequence of int, optional
        Group -> the indices (along ``band``) of the bands a model reads
        (:func:`used_band_indices`); only those are looked at, and groups not in it are not.
        Default: every band of every group.

    >>> vis = np.stack([np.ones((1, 2, 2)), np.full((1, 2, 2), np.nan)], axis=1)  # 1 object, 2 bands
    >>> blank_band_rows({"vis": vis}).tolist(), blank_band_rows({"vis": vis}, {"vis": [0]}).tolist()
    ([True], [False])
    """
    blank = None
    for group, images in groups.items():
        if used is not None and group not in used:
            continue
        images = np.asarray(images)
        if used is not None:
            images = images[:, list(used[group])]
        rows = np.isfinite(images).reshape(*images.shape[:2], -1).any(axis=2)
        rows = ~rows.all(axis=1)
        blank = rows if blank is None else blank | rows
    return np.zeros(0, dtype=bool) if blank is None else blank


def _linear_taps(n_in: int, n_out: int, xp: ModuleType) -> tuple[Array, Array, Array]:
    """Source indices and weights of 1-D linear interpolation, half-pixel convention."""
    position = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    position = np.clip(position, 0.0, n_in - 1)
    lower = np.minimum(np.floor(position).astype(np.int64), max(n_in - 2, 0))
    upper = np.minimum(lower + 1, n_in - 1)
    weight = (position - lower).astype(np.float32)
    return xp.asarray(lower), xp.asarray(upper), xp.asarray(weight)


def resize_bilinear(x: Array, shape: tuple[int, int]) -> Array:
    """Bilinear resampling of the last two axes of ``x`` to ``shape`` (ny, nx).

    Half-pixel centres (``align_corners=False``, as ``jax.image.resize``, TensorFlow 2 and
    PyTorch's default): output pixel ``i`` samples input coordinate ``(i + 0.5) * n_in / n_out - 0.5``,
    clamped to the edge pixels. Meant for upsampling; downsampling with it aliases (no antialias).
    Uses only ``take`` and arithmetic, so it runs on NumPy and CuPy.
    """
    xp = array_namespace(x)
    n_y, n_x = x.shape[-2:]
    out_y, out_x = shape
    if min(out_y, out_x) <= 0:
        raise ValueError(f"resize_bilinear needs a positive output shape, got {shape}")
    out = x
    if (out_y, out_x) == (n_y, n_x):
        return out
    if out_y != n_y:
        lower, upper, weight = _linear_taps(n_y, out_y, xp)
        weight = weight.reshape(-1, 1)
        out = xp.take(out, lower, axis=-2) * (1 - weight) + xp.take(out, upper, axis=-2) * weight
    if out_x != n_x:
        lower, upper, weight = _linear_taps(n_x, out_x, xp)
        out = xp.take(out, lower, axis=-1) * (1 - weight) + xp.take(out, upper, axis=-1) * weight
    return out.astype(x.dtype, copy=False)


def average_pool(x: Array, factor: int, centred: bool = False) -> Array:
    """Mean over non-overlapping ``factor x factor`` blocks of the last two axes.

    Rows and columns that do not fill a whole block are dropped: the trailing ones (101 -> 50 for
    ``factor=2``), or with ``centred`` as many from each side as the centred whole blocks leave
    (:func:`pooling_window`: 200 by 3 keeps rows 1-198, so the centre stays put; an odd number
    left over drops its odd one at the end). ``factor=1`` returns ``x`` unchanged.

    >>> average_pool(np.arange(5.0)[None, :] * np.ones((3, 1)), 3, centred=True).tolist()
    [[2.0]]
    """
    if factor < 1:
        raise ValueError(f"average_pool factor must be a positive integer, got {factor}")
    if factor == 1:
        return x
    n_y, n_x = (size // factor for size in x.shape[-2:])
    if min(n_y, n_x) == 0:
        raise ValueError(f"average_pool factor {factor} is larger than the image {x.shape[-2:]}")
    if centred:
        (y0, y1), (x0, x1) = (pooling_window(size, factor) for size in x.shape[-2:])
        x = x[..., y0:y1, x0:x1]
    # Summing the factor**2 strided sub-grids is several times faster than a mean over small
    # reshaped block axes (NumPy reduces a size-2 innermost axis slowly); same values.
    height, width = n_y * factor, n_x * factor
    total = None
    for dy in range(factor):
        for dx in range(factor):
            part = x[..., dy:height:factor, dx:width:factor]
            total = part.copy() if total is None else total + part
    return total * x.dtype.type(1.0 / (factor * factor))


@functools.lru_cache(maxsize=64)
def resampling_matrix(
    n_in: int, n_out: int, factor: int = 1, window: tuple[int, int] | None = None
) -> np.ndarray:
    """The 1-D linear map of :func:`resize_bilinear` to ``n_out``, then :func:`average_pool` by ``factor``.

    Both steps are linear and act on each axis separately, so their composition is one
    ``(n_out // factor, n_in)`` matrix: row ``i`` holds the weights of input pixels in output pixel
    ``i``. Built in float64 from the same float32 tap weights :func:`resize_bilinear` uses, and
    returned as a read-only float32 array (cached: recipes ask for the same few shapes).
    ``window=(start, stop)`` keeps only output pixels ``start:stop`` of the resized axis before the
    pooling (a crop on the output grid: ``(stop - start) // factor`` rows).

    Examples
    --------
    >>> resampling_matrix(2, 4).tolist()
    [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    >>> resampling_matrix(2, 4, factor=2).tolist()
    [[0.875, 0.125], [0.125, 0.875]]
    >>> resampling_matrix(2, 4, window=(1, 3)).tolist()
    [[0.75, 0.25], [0.25, 0.75]]
    """
    start, stop = (0, n_out) if window is None else window
    if min(n_in, n_out) <= 0 or factor < 1 or not 0 <= start < stop <= n_out or (stop - start) // factor == 0:
        raise ValueError(
            "resampling_matrix needs n_in, n_out >= 1, 0 <= start < stop <= n_out and "
            f"1 <= factor <= stop - start, got {(n_in, n_out, factor, window)}"
        )
    if n_out == n_in:
        resize = np.eye(n_in)
    else:
        lower, upper, weight = _linear_taps(n_in, n_out, np)
        resize = np.zeros((n_out, n_in))
        rows = np.arange(n_out)
        np.add.at(resize, (rows, lower), 1.0 - weight.astype(np.float64))
        np.add.at(resize, (rows, upper), weight.astype(np.float64))
    resize = resize[start:stop]
    n_blocks = (stop - start) // factor
    pool = np.zeros((n_blocks, stop - start))
    for offset in range(factor):
        pool[np.arange(n_blocks), np.arange(n_blocks) * factor + offset] = 1.0 / factor
    matrix = (pool @ resize).astype(np.float32)
    matrix.flags.writeable = False
    return matrix


def resample(
    x: Array, shape: tuple[int, int], factor: int = 1, crop: int | None = None, centred: bool = False
) -> Array:
    """``average_pool(resize_bilinear(x, shape), factor)`` as two matrix products, on NumPy or CuPy.

    Equal to the two-step form up to float32 rounding (a few 1e-7 on [0, 1] data) and several
    times faster: with ``M_y`` and ``M_x`` from :func:`resampling_matrix`, each image becomes
    ``M_y @ image @ M_x.T``, and the first product runs as one large GEMM over the whole batch.
    An image already on ``shape`` is only pooled (:func:`average_pool`, no rounding change).
    ``crop`` keeps the centred ``crop x crop`` pixels of the ``shape`` grid (rows and columns
    ``(n - crop) // 2`` onwards) before the pooling, without resampling the rest; with no crop,
    ``centred`` pools the centred whole blocks of ``shape`` (:func:`pooling_window`), not the first.
    """
    n_y, n_x = x.shape[-2:]
    if crop is not None:
        windows = [centred_window(n, crop) for n in shape]
    else:
        windows = [pooling_window(n, factor) if centred else None for n in shape]
    if (n_y, n_x) == tuple(shape):
        if any(window is not None for window in windows):
            (y0, y1), (x0, x1) = (window or (0, n) for window, n in zip(windows, shape, strict=True))
            x = x[..., y0:y1, x0:x1]
        return average_pool(x, factor)
    xp = array_namespace(x)
    matrix_y = xp.asarray(resampling_matrix(n_y, shape[0], factor, windows[0]))
    matrix_x = xp.asarray(resampling_matrix(n_x, shape[1], factor, windows[1]))
    lead = x.shape[:-2]
    flat = xp.ascontiguousarray(x, dtype=xp.float32).reshape(-1, n_x)
    along_x = (flat @ matrix_x.T).reshape(-1, n_y, matrix_x.shape[0])
    out = xp.matmul(matrix_y, along_x)
    return out.reshape(*lead, matrix_y.shape[0], matrix_x.shape[0])


def centred_window(n: int, size: int) -> tuple[int, int]:
    """``(start, stop)`` of the centred ``size`` pixels of an axis of ``n`` (start ``(n - size) // 2``).

    >>> centred_window(200, 100)
    (50, 150)
    """
    if not 1 <= size <= n:
        raise ValueError(f"a centred crop needs 1 <= size <= {n}, got {size}")
    start = (n - size) // 2
    return start, start + size


def pooling_window(n: int, factor: int) -> tuple[int, int]:
    """``(start, stop)`` of the centred whole ``factor``-pixel blocks of an axis of ``n`` pixels.

    >>> pooling_window(200, 3), pooling_window(101, 2), pooling_window(66, 4)
    ((1, 199), (0, 100), (1, 65))
    """
    if not 1 <= factor <= n:
        raise ValueError(f"pooling needs 1 <= factor <= {n}, got {factor}")
    return centred_window(n, n // factor * factor)


def expand_channels(x: Array, n_channels: int, mode: Literal["repeat", "zeros"]) -> Array:
    """A single-band ``(n, 1, y, x)`` batch made ``n_channels`` deep.

    ``"repeat"`` copies the band into every channel; ``"zeros"`` keeps it as channel 0 and adds
    zero channels.
    """
    xp = array_namespace(x)
    if x.shape[1] != 1:
        raise ValueError(f"expand_channels takes single-band batches, got {x.shape[1]} bands")
    if mode == "repeat":
        return xp.repeat(x, n_channels, axis=1)
    if mode == "zeros":
        zeros = xp.zeros((x.shape[0], n_channels - 1, *x.shape[2:]), dtype=x.dtype)
        return xp.concatenate([x, zeros], axis=1)
    raise ValueError(f"expand_channels mode must be 'repeat' or 'zeros', got {mode!r}")


def to_nhwc(x: Array) -> Array:
    """A contiguous channels-last ``(n, y, x, band)`` copy of an ``(n, band, y, x)`` batch."""
    xp = array_namespace(x)
    return xp.ascontiguousarray(xp.transpose(x, (0, 2, 3, 1)))


def finite_band_values(x: Array, band: int) -> np.ndarray:
    """The finite pixel values of band ``band`` of an ``(n, band, y, x)`` batch, flattened, on the host."""
    values = x[:, band].reshape(-1)
    xp = array_namespace(values)
    values = values[xp.isfinite(values)]
    return values.get() if xp is not np else np.asarray(values)


def band_statistics(values: np.ndarray, percentiles: tuple[float, float]) -> dict[str, float]:
    """Clip range and robust location/scale of one band's pixel sample.

    Returns ``low`` and ``high`` (the two percentiles), ``median`` and ``sigma`` (1.4826 x the
    median absolute deviation, a noise estimate robust to sources). ``values`` must be finite
    and non-empty.

    Examples
    --------
    >>> stats = band_statistics(np.arange(101.0), (1.0, 99.0))
    >>> stats["low"], stats["high"], stats["median"]
    (1.0, 99.0, 50.0)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("band_statistics needs at least one finite value")
    low, median, high = np.percentile(values, [percentiles[0], 50.0, percentiles[1]])
    sigma = ROBUST_SIGMA_PER_MAD * float(np.median(np.abs(values - median)))
    return {"low": float(low), "high": float(high), "median": float(median), "sigma": sigma}


def used_band_indices(
    store_groups: Mapping[str, Sequence[str]], bands: Mapping[str, Sequence[str]]
) -> dict[str, list[int]]:
    """Group -> the indices in the store's group of the bands a model reads (for :func:`blank_band_rows`).

    Parameters
    ----------
    store_groups : the store's group -> its bands, in order
    bands : the model's group -> the bands it reads (a bundle's ``groups``)

    >>> used_band_indices({"nir": ["Y", "J", "H"]}, {"nir": ("H", "Y")})
    {'nir': [2, 0]}
    """
    return {
        group: [list(store_groups[group]).index(band) for band in names] for group, names in bands.items()
    }
