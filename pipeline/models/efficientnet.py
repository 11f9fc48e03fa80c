"""EfficientNet B0-B2 (``keras.applications``, random initial weights) adapted to a recipe's inputs.

The backbone is built for the recipe's input shape and channel count (any number of bands);
``weights=None`` always, as ImageNet weights expect 3-channel photographs. The application's
built-in preprocessing divides by 255 and then normalises with an identity (un-adapted)
``Normalization``; recipe inputs are already scaled to [0, 1], so a ``Rescaling(255)`` in front
cancels that division.

In the two-branch form the finest input gets the chosen EfficientNet and every coarse input
(e.g. NIR at 66x66) its own EfficientNetB0, the smallest variant, which on a grid a ninth the
size also costs about a ninth of the compute. Branch features (global means) are concatenated.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import keras

from pipeline.models.common import assemble, check_min_size, main_input, recipe_inputs, refuse_separate
from pipeline.models.limits import EFFICIENTNET_MIN_SIZE
from pipeline.models.outputs import OutputSpec
from pipeline.preprocess.recipe import Recipe

MIN_SIZE = EFFICIENTNET_MIN_SIZE
"""Smallest input side keras.applications' EfficientNet accepts (:mod:`pipeline.models.limits`)."""

VARIANTS: dict[str, Callable[..., keras.Model]] = {
    "b0": keras.applications.EfficientNetB0,
    "b1": keras.applications.EfficientNetB1,
    "b2": keras.applications.EfficientNetB2,
}
COARSE_VARIANT = "b0"


def efficientnet_backbone(x: keras.KerasTensor, variant: str, prefix: str) -> keras.KerasTensor:
    """An EfficientNet ``variant`` without its top, applied to ``x``; returns the pooled features."""
    shape = tuple(x.shape[1:])
    with warnings.catch_warnings():
        # keras.applications warns for inputs that are not 1 or 3 channels; ours have any number
        warnings.filterwarnings("ignore", message="This model usually expects", category=UserWarning)
        backbone = VARIANTS[variant](
            include_top=False,
            weights=None,
            input_shape=shape,
            pooling="avg",
            name=f"{prefix}_efficientnet{variant}",
        )
    x = keras.layers.Rescaling(255.0, name=f"{prefix}_to_255")(x)
    return backbone(x)


def build_efficientnet(
    recipe: Recipe,
    variant: str = "b0",
    *,
    dropout: float = 0.2,
    outputs: Sequence[OutputSpec] | None = None,
    detached: Sequence[str] = (),
    separate: Sequence[str] = (),
) -> keras.Model:
    """EfficientNet-``variant`` (``"b0"``, ``"b1"`` or ``"b2"``) for ``recipe``'s inputs.

    Parameters
    ----------
    recipe
        Gives the input names and shapes; every input must be at least 32x32.
    variant
        EfficientNet variant of the finest input's backbone.
    dropout
        Dropout rate before the output units.
    outputs
        Declared outputs, one head each (:mod:`pipeline.models.common`); None: the one ``score``.
    detached
        Outputs whose heads do not train the shared layers (:class:`~pipeline.models.common.StopGradient`).
    separate
        Not supported here (small_cnn only): a :class:`BundleError` when given.
    """
    if variant not in VARIANTS:
        raise ValueError(f"EfficientNet variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    check_min_size(recipe, MIN_SIZE, f"efficientnet_{variant}")
    refuse_separate(separate, f"efficientnet_{variant}")
    inputs = recipe_inputs(recipe)
    main = main_input(recipe)
    features = [
        efficientnet_backbone(x, variant if name == main else COARSE_VARIANT, prefix=name)
        for name, x in inputs.items()
    ]
    return assemble(
        inputs, features, dropout, name=f"efficientnet_{variant}", outputs=outputs, detached=detached
    )
