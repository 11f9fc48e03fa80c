"""Recipe format versions: which version introduced which field, value and behaviour.

A recipe keeps its version: it behaves as that version did and is saved with that version's
fields only, so the release that wrote a bundle reads it again after fine-tuning. A new recipe gets
the oldest version its settings need (:func:`needs_distinct_asymmetry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECIPE_VERSION = 6
"""Latest recipe version (2 added ``robust_asinh``, 3 ``crop``, 4 ``asymmetry``, 5 one asymmetry
channel per distinct band of an expanded single-band group, 6 ``asymmetry_smoothing_px``). A new
recipe gets the oldest version its settings need (:func:`oldest_version`), so that earlier
releases read it where they can."""

BASE_VERSION = 4
"""The version a new recipe gets when none of its settings needs a later one."""

READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
"""Recipe versions this code reads: a recipe keeps its version, and behaves and is saved as it."""

FIELD_VERSIONS = {
    "clip_sigma": 2,
    "softening_sigma": 2,
    "crop": 3,
    "asymmetry": 4,
    "asymmetry_smoothing_px": 6,
}
"""Field -> the recipe version that introduced it. An older recipe has the field at its default:
its JSON omits it, and a value other than the default needs the field's version."""

VALUE_VERSIONS = {("scaling", "robust_asinh"): 2}
"""(field, value) -> the recipe version that introduced the value."""

DISTINCT_ASYMMETRY_VERSION = 5
"""From this version an expanded single-band group gets one asymmetry channel, not one per copy."""


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


def oldest_version(data: Mapping[str, Any]) -> int:
    """The oldest recipe version that gives recipe fields ``data`` their inputs: :data:`BASE_VERSION`,
    5 where :func:`needs_distinct_asymmetry`, 6 with a smoothed asymmetry (``asymmetry_smoothing_px``
    other than 0; a malformed value is left to the recipe's validation)."""
    version = DISTINCT_ASYMMETRY_VERSION if needs_distinct_asymmetry(data) else BASE_VERSION
    try:
        smoothed = float(data.get("asymmetry_smoothing_px") or 0.0) != 0.0
    except (TypeError, ValueError):
        smoothed = False
    return max(version, FIELD_VERSIONS["asymmetry_smoothing_px"]) if smoothed else version
