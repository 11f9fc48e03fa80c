"""One resolution group of a recipe's inputs: its bands picked, scaled and filled (``(n, band, y, x)``).

:func:`scale_group` is the per-group half of :func:`pipeline.preprocess.recipe.apply_recipe`:
invalid pixels (non-finite, or the layout's masked value) are found once on the raw values, filled
from their neighbours where the recipe inpaints (:mod:`pipeline.preprocess.inpaint`, version 9),
scaled like any pixel, and the ones left get the recipe's fill value; objects whose flags intersect
:data:`~pipeline.flags.UNUSABLE` are filled entirely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import BundleError
from pipeline.preprocess import arrays as pp
from pipeline.preprocess.inpaint import inpaint_invalid
from pipeline.preprocess.robust import scale_robust_asinh

if TYPE_CHECKING:
    from pipeline.preprocess.recipe import Recipe

__all__ = ["check_group", "scale_group"]


def check_group(group: str, images: pp.Array, store_bands: Sequence[str], shape: tuple[int, int]) -> pp.Array:
    """``images`` if it is ``(n, len(store_bands), *shape)``; else a :class:`BundleError` says why not."""
    expected = (len(store_bands), *shape)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise BundleError(
            f"group {group!r} has shape {tuple(images.shape)}, the recipe expects (n, {expected[0]}, "
            f"{expected[1]}, {expected[2]}) with bands {list(store_bands)}: the data is not from the "
            "layout the recipe was fitted on"
        )
    return images


def scale_group(
    recipe: Recipe, group: str, groups: Mapping[str, pp.Array], flags: pp.Array | np.ndarray | None
) -> pp.Array:
    """One group's used bands, masked, scaled to [0, 1] and filled, still ``(n, band, y, x)``.

    Raises
    ------
    BundleError
        If ``groups`` lacks the group, or its array is not of the recipe's layout.
    """
    if group not in groups:
        raise BundleError(
            f"the recipe needs group {group!r} but the data has {sorted(groups)}: "
            f"pass the store variables {sorted(recipe.groups)}"
        )
    store_bands = recipe.store_groups[group]
    images = check_group(group, groups[group], store_bands, recipe.group_shapes[group])
    members = recipe.groups[group]
    xp = pp.array_namespace(images)
    if tuple(members) != tuple(store_bands):
        images = xp.take(images, xp.asarray([store_bands.index(band) for band in members]), axis=1)
    images = xp.asarray(images, dtype=xp.float32)
    # Masked and non-finite pixels found once on the raw values, scaled like any pixel and then
    # overwritten with the fill value: as masking to NaN first, with three fewer passes.
    invalid = pp.invalid_pixels(images, recipe.masked_value)
    unfilled = invalid
    if recipe.inpaint_px:
        images, unfilled = inpaint_invalid(images, invalid, recipe.inpaint_px)
    stats = [recipe.statistics[band] for band in members]
    low, high = [s.low for s in stats], [s.high for s in stats]
    if recipe.scaling == "robust_asinh":  # its statistics leave out every invalid pixel, filled or not
        images = scale_robust_asinh(
            images, invalid, clip_sigma=recipe.clip_sigma, softening_sigma=recipe.softening_sigma
        )
    elif recipe.scaling == "clip_minmax":
        images = pp.scale_clip_minmax(images, low, high)
    else:
        images = pp.scale_log(images, low, high, [s.softening for s in stats])
    xp.copyto(images, xp.asarray(recipe.fill_value, dtype=images.dtype), where=unfilled)
    if flags is not None:
        images = pp.fill_unusable(images, flags, recipe.fill_value)
    return images
