"""CMU DeepLens-style ResNet (Lanusse et al. 2018): pre-activated bottleneck residual units, ELU.

A 7x7 stem convolution, then stages of pre-activated bottleneck units (BN -> ELU -> 1x1 ->
BN -> ELU -> 3x3 -> BN -> ELU -> 1x1 with 4x expansion, He et al. 2016 "identity mappings"),
the first unit of every stage after the first downsampling by 2, then BN -> ELU -> global mean.
DeepLens used five stages of three units with bottleneck widths 16 to 256. Coarse branches (a
second, lower-resolution input) get a half-width network with fewer stages.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from pipeline.models.common import assemble, main_input, recipe_inputs, refuse_separate
from pipeline.models.outputs import OutputSpec
from pipeline.preprocess.recipe import Recipe

EXPANSION = 4
DEFAULT_WIDTHS = (16, 32, 64, 128, 256)


def preact_bottleneck(x: keras.KerasTensor, width: int, stride: int, name: str) -> keras.KerasTensor:
    """One pre-activated bottleneck unit with ``width`` bottleneck filters and ``4 * width`` outputs."""
    preact = keras.layers.BatchNormalization(name=f"{name}_preact_bn")(x)
    preact = keras.layers.Activation("elu", name=f"{name}_preact_elu")(preact)
    if stride != 1 or x.shape[-1] != EXPANSION * width:
        shortcut = keras.layers.Conv2D(EXPANSION * width, 1, strides=stride, name=f"{name}_shortcut")(preact)
    else:
        shortcut = x
    y = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{name}_conv1")(preact)
    y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.Activation("elu", name=f"{name}_elu1")(y)
    y = keras.layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = keras.layers.Activation("elu", name=f"{name}_elu2")(y)
    y = keras.layers.Conv2D(EXPANSION * width, 1, name=f"{name}_conv3")(y)
    return keras.layers.Add(name=f"{name}_add")([shortcut, y])


def preact_resnet(
    x: keras.KerasTensor, widths: tuple[int, ...], units_per_stage: int, stem_filters: int, prefix: str
) -> keras.KerasTensor:
    """The DeepLens backbone on one input, ending in a global-mean feature vector."""
    x = keras.layers.Conv2D(stem_filters, 7, padding="same", use_bias=False, name=f"{prefix}_stem_conv")(x)
    for stage, width in enumerate(widths):
        for unit in range(units_per_stage):
            stride = 2 if stage > 0 and unit == 0 else 1
            x = preact_bottleneck(x, width, stride, name=f"{prefix}_s{stage}u{unit}")
    x = keras.layers.BatchNormalization(name=f"{prefix}_post_bn")(x)
    x = keras.layers.Activation("elu", name=f"{prefix}_post_elu")(x)
    return keras.layers.GlobalAveragePooling2D(name=f"{prefix}_gap")(x)


def build_deeplens_resnet(
    recipe: Recipe,
    *,
    widths: tuple[int, ...] = DEFAULT_WIDTHS,
    units_per_stage: int = 3,
    stem_filters: int = 32,
    coarse_stages: int = 3,
    dropout: float = 0.0,
    outputs: Sequence[OutputSpec] | None = None,
    detached: Sequence[str] = (),
    separate: Sequence[str] = (),
) -> keras.Model:
    """DeepLens-style ResNet for ``recipe``'s inputs.

    Parameters
    ----------
    recipe
        Gives the input names and shapes.
    widths
        Bottleneck filters of each stage (outputs are 4x); one stage per entry.
    units_per_stage
        Residual units per stage.
    stem_filters
        Filters of the 7x7 stem convolution.
    coarse_stages
        Stages of the half-width backbone of coarse branches (inputs other than the finest).
    dropout
        Dropout rate before the output units.
    outputs
        Declared outputs, one head each (:mod:`pipeline.models.common`); None: the one ``score``.
    detached
        Outputs whose heads do not train the shared layers (:class:`~pipeline.models.common.StopGradient`).
    separate
        Not supported here (small_cnn only): a :class:`BundleError` when given.
    """
    refuse_separate(separate, "deeplens_resnet")
    inputs = recipe_inputs(recipe)
    main = main_input(recipe)
    features = []
    for name, x in inputs.items():
        if name == main:
            features.append(preact_resnet(x, tuple(widths), units_per_stage, stem_filters, prefix=name))
        else:
            coarse = tuple(max(width // 2, 4) for width in widths[:coarse_stages])
            features.append(preact_resnet(x, coarse, units_per_stage, max(stem_filters // 2, 4), prefix=name))
    return assemble(inputs, features, dropout, name="deeplens_resnet", outputs=outputs, detached=detached)
