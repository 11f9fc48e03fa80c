"""Recipe format versions: which version introduced which field, value and behaviour.

A recipe keeps its version: it behaves as that version did and is saved with that version's
fields only, so the release that wrote a bundle reads it again after fine-tuning. A new recipe gets
the oldest version its settings need (:func:`needs_distinct_asymmetry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECIPE_VERSION = 5
"""Latest recipe version (2 added ``robust_asinh``, 3 ``crop``, 4 ``asymmetry``, 5 one asymmetry
channel per distinct band of an expanded single-band group). A new recipe gets 5 only where that
changes its inputs, else 4, so that the previous release reads it."""

READABLE_VERSIONS = (1, 2, 3, 4, 5)
"""Recipe versions this code reads: a recipe keeps its version, and behaves and is saved as it."""

FIELD_VERSIONS = {"clip_sigma": 2, "softening_sigma": 2, "crop": 3, "asymmetry": 4}
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
