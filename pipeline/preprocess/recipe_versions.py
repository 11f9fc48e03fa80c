"""Recipe format versions: which version introduced which field, value and behaviour.

A recipe keeps its version: it behaves as that version did and is saved with that version's
fields only, so the release that wrote a bundle reads it again after fine-tuning. A new recipe gets
the oldest version its settings need (:func:`needs_distinct_asymmetry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECIPE_VERSION = 9
"""Latest recipe version (2 added ``robust_asinh``, 3 ``crop``, 4 ``asymmetry``, 5 one asymmetry
channel per distinct band of an expanded single-band group, 6 ``asymmetry_smoothing_px``, 7 a
``downsample`` that does not divide the grid pools its centred pixels, 8 ``pixel_scales``: each
band's training pixel scale, which scoring checks; inputs as in 7; 9 ``inpaint_px``: invalid pixels
filled from their neighbours). A new recipe gets the oldest
version its settings need (:func:`oldest_version`), so that earlier releases read it where they can;
one fitted on a layout records its pixel scales, so it is version 8 (an earlier release says to
upgrade, rather than failing on an unknown field)."""

BASE_VERSION = 4
"""The version a new recipe gets when none of its settings needs a later one."""

READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
"""Recipe versions this code reads: a recipe keeps its version, and behaves and is saved as it."""

FIELD_VERSIONS = {
    "clip_sigma": 2,
    "softening_sigma": 2,
    "crop": 3,
    "asymmetry": 4,
    "asymmetry_smoothing_px": 6,
    "pixel_scales": 8,
    "inpaint_px": 9,
}
"""Field -> the recipe version that introduced it. An older recipe has the field at its default:
its JSON omits it, and a value other than the default needs the field's version."""

VALUE_VERSIONS = {("scaling", "robust_asinh"): 2}
"""(field, value) -> the recipe version that introduced the value."""

DISTINCT_ASYMMETRY_VERSION = 5
"""From this version an expanded single-band group gets one asymmetry channel, not one per copy."""

CENTRED_POOLING_VERSION = 7
"""From this version a ``downsample`` that does not divide a grid pools its centred whole blocks
(200 pixels by 3: pixels 1-198); before, the first ones (0-197), which moved the centre."""


def needs_distinct_asymmetry(data: Mapping[str, Any]) -> bool:
    """Whether recipe fields ``data`` give other inputs from version 5 on.

    True for asymmetry on a ``"branches"`` recipe with a single-band group that is expanded (one
    asymmetry channel from version 5, one per expanded copy before).
    """
    groups = data.get("groups")
    if not isinstance(groups, Mapping):  # malformed: the recipe's validation says what is wrong
        return False
    expanded = data.get("expand_single_band", "repeat") != "none" and data.get("combine") == "branches"
    asymmetry = data.get("asymmetry") in (True, 1, "true", "True", "1")  # as pydantic reads it
    single = any(isinstance(bands, list | tuple) and len(bands) == 1 for bands in groups.values())
    return asymmetry and expanded and single


def pooled_grids(data: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The ``(ny, nx)`` grids recipe fields ``data`` average-pool: the finest group's (``"upsample"``,
    no crop; a crop is a multiple of the factor) or every group's (``"branches"``); [] if malformed."""
    shapes = data.get("group_shapes")
    if not isinstance(shapes, Mapping) or not shapes:
        return []
    try:
        grids = [(int(shape[0]), int(shape[1])) for shape in shapes.values()]
    except (TypeError, ValueError, IndexError, KeyError):
        return []
    if data.get("combine", "upsample") == "branches":
        return grids
    return [] if data.get("crop") is not None else [max(grids, key=lambda grid: grid[0] * grid[1])]


def needs_centred_pooling(data: Mapping[str, Any]) -> bool:
    """Whether recipe fields ``data`` give other inputs from version 7 on: a ``downsample`` that
    leaves at least two pixels of some pooled axis over (:func:`pooled_grids`; one left over is the
    last pixel in both versions)."""
    try:
        factor = int(data.get("downsample", 1))
    except (TypeError, ValueError):
        return False
    if factor <= 1:
        return False
    return any((n % factor) // 2 > 0 for grid in pooled_grids(data) for n in grid)


def oldest_version(data: Mapping[str, Any]) -> int:
    """The oldest recipe version that gives recipe fields ``data`` their inputs: :data:`BASE_VERSION`,
    5 where :func:`needs_distinct_asymmetry`, 6 with a smoothed asymmetry (``asymmetry_smoothing_px``
    other than 0; a malformed value is left to the recipe's validation), 7 where
    :func:`needs_centred_pooling`, 8 with recorded ``pixel_scales``, 9 with ``inpaint_px`` other than 0."""
    try:
        inpainted = float(data.get("inpaint_px") or 0.0) != 0.0
    except (TypeError, ValueError):  # malformed: the recipe's validation says what is wrong
        inpainted = False
    if inpainted:
        return FIELD_VERSIONS["inpaint_px"]
    if data.get("pixel_scales") is not None:
        return FIELD_VERSIONS["pixel_scales"]
    version = DISTINCT_ASYMMETRY_VERSION if needs_distinct_asymmetry(data) else BASE_VERSION
    try:
        smoothed = float(data.get("asymmetry_smoothing_px") or 0.0) != 0.0
    except (TypeError, ValueError):
        smoothed = False
    if smoothed:
        version = max(version, FIELD_VERSIONS["asymmetry_smoothing_px"])
    return max(version, CENTRED_POOLING_VERSION) if needs_centred_pooling(data) else version


def newer_values(recipe: Any) -> list[tuple[str, Any, int]]:
    """``(field, value, version)`` of each value of ``recipe`` that needs a later version than its own
    (a field of :data:`FIELD_VERSIONS` not at its default, a value of :data:`VALUE_VERSIONS`)."""
    newer = [
        (field, getattr(recipe, field), since)
        for field, since in FIELD_VERSIONS.items()
        if since > recipe.version and getattr(recipe, field) != type(recipe).model_fields[field].default
    ]
    newer += [
        (field, value, since)
        for (field, value), since in VALUE_VERSIONS.items()
        if since > recipe.version and getattr(recipe, field) == value
    ]
    return newer
