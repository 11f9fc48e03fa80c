"""A small CNN for CPU demos and tests: a few conv-BN-ReLU blocks per input, ~60 thousand weights.

With the defaults and a 4 x 100 x 100 input it has about 61 thousand parameters and a saved
``.keras`` file of about 0.3 MB. Each block halves the image, by max pooling after a stride-1
convolution (``downsampling="maxpool"``, the default) or by a stride-2 convolution
(``"stride"``). Strided convolutions train an epoch about 3x faster on a 2-core CPU but see every
other pixel of their input, so arcs one or two pixels wide alias away; on the plain-CNN baseline
comparison (bench/RESULTS.md, Science) the pooled form learned what the strided one did not. The
first shipped model used ``"stride"``; bundles keep the form they were saved with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import keras

from pipeline.models.common import assemble, recipe_inputs
from pipeline.models.outputs import OutputSpec
from pipeline.models.polar import PolarView
from pipeline.preprocess.recipe import Recipe

MIN_FINAL_SIZE = 2


def conv_stack(
    x: keras.KerasTensor, base_filters: int, n_blocks: int, prefix: str, downsampling: str = "maxpool"
) -> keras.KerasTensor:
    """``n_blocks`` of 3x3 conv -> BN -> ReLU, each halving the image, then global mean.

    Filters double per block up to 4x ``base_filters``; ``downsampling`` is ``"maxpool"`` (stride-1
    conv, then 2x2 max pooling) or ``"stride"`` (stride-2 conv). Fewer blocks are used when the
    image would shrink below 2x2 pixels.
    """
    if downsampling not in ("maxpool", "stride"):
        raise ValueError(f"downsampling must be 'maxpool' or 'stride', got {downsampling!r}")
    strides = 2 if downsampling == "stride" else 1
    max_blocks = max(1, int(math.log2(min(x.shape[1], x.shape[2]) / MIN_FINAL_SIZE)))
    for i in range(min(n_blocks, max_blocks)):
        filters = base_filters * min(2**i, 4)
        x = keras.layers.Conv2D(
            filters, 3, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv{i}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"{prefix}_relu{i}")(x)
        if strides == 1:
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool{i}")(x)
    return keras.layers.GlobalAveragePooling2D(name=f"{prefix}_gap")(x)


def build_small_cnn(
    recipe: Recipe,
    *,
    base_filters: int = 16,
    n_blocks: int = 4,
    dropout: float = 0.2,
    downsampling: str = "maxpool",
    outputs: Sequence[OutputSpec] | None = None,
    detached: Sequence[str] = (),
    separate: Sequence[str] = (),
    polar: bool = False,
) -> keras.Model:
    """Small CNN for ``recipe``'s inputs; each input (branch) has its own conv stack.

    Parameters
    ----------
    recipe
        Gives the input names and shapes.
    base_filters
        Filters of the first block; later blocks use 2x and 4x.
    n_blocks
        Conv blocks per branch (at most; small inputs get fewer).
    dropout
        Dropout rate before the score unit.
    downsampling
        ``"maxpool"`` or ``"stride"`` (module docstring).
    outputs
        Declared outputs, one head each (:mod:`pipeline.models.common`); None: the one ``score``.
    detached
        Outputs whose heads do not train the shared layers (:class:`~pipeline.models.common.StopGradient`).
    separate
        Outputs with their own conv stacks (built after the shared ones, layer names prefixed by
        the output name), so they and the other outputs cannot cost each other anything.
    polar
        Resample each input in polar coordinates about its centre first
        (:class:`~pipeline.models.polar.PolarView`): the convolutions run along radius and position
        angle, close to invariant to every rotation.
    """
    inputs = recipe_inputs(recipe)
    views = {name: PolarView(name=f"{name}_polar")(x) if polar else x for name, x in inputs.items()}
    features = [conv_stack(x, base_filters, n_blocks, name, downsampling) for name, x in views.items()]

    def own_trunk(output: str) -> list[keras.KerasTensor]:
        return [
            conv_stack(x, base_filters, n_blocks, f"{output}_{name}", downsampling)
            for name, x in views.items()
        ]

    own = {output: partial(own_trunk, output) for output in separate}
    return assemble(
        inputs, features, dropout, name="small_cnn", outputs=outputs, detached=detached, separate=own
    )
