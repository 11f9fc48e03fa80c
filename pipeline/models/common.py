"""Pieces every architecture shares: Keras inputs from a recipe and the output heads.

A model has one head per declared output (:mod:`pipeline.models.outputs`) on the shared trunk:
the branch features are concatenated, go through one dropout layer, and each output gets its own
dense layer named after it (kept float32 under mixed precision):

=====================  =====================================================================
kind                   head
=====================  =====================================================================
probability            ``Dense(1, sigmoid)``
regression             ``Dense(1)``, in the declared unit
regression_gaussian    ``Dense(2)``: ``[mean, log_sigma]`` in the declared unit (the Gaussian
                       negative log-likelihood head, :mod:`pipeline.training.losses`)
classes                ``Dense(K, softmax)``
=====================  =====================================================================

A *detached* output's head reads the shared features through :class:`StopGradient`: its loss
trains the head only, never the trunk, so adding it cannot change what the trunk learns for the
other outputs (e.g. an Einstein-radius head that must not cost the lens score any AUROC).

A *separate* output has its own trunk (the architecture builds it, e.g. a second conv stack per
input in ``small_cnn``): its head reads only that trunk, and no other output's loss reaches it.

With the default outputs (one ``score`` probability) the model is exactly the one every
lenshunt model was before declared outputs existed: a single output tensor named ``score``, the
same layers in the same order, so the same seed gives the same weights. With any other
declaration the model's ``outputs`` is a dict keyed by output name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import keras

from pipeline.errors import BundleError
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec, check_outputs, output_width
from pipeline.preprocess.recipe import Recipe

SCORE_OUTPUT = "score"
"""Name of the default output layer: one sigmoid unit, the probability that the object is a lens."""


def recipe_inputs(recipe: Recipe) -> dict[str, keras.KerasTensor]:
    """One float32 ``keras.Input`` per recipe input, named and shaped as ``apply_recipe`` returns them."""
    return {
        name: keras.Input(shape=shape, name=name, dtype="float32")
        for name, shape in recipe.input_shapes().items()
    }


def main_input(recipe: Recipe) -> str:
    """The input with the most pixels (the finest grid); others are coarse branches."""
    shapes = recipe.input_shapes()
    return max(shapes, key=lambda name: shapes[name][0] * shapes[name][1])


def is_default_outputs(outputs: Sequence[OutputSpec] | None) -> bool:
    """True for None or the single default ``score`` probability (a single-tensor model)."""
    return outputs is None or tuple(outputs) == (DEFAULT_SCORE,)


@keras.saving.register_keras_serializable(package="lenshunt")
class StopGradient(keras.layers.Layer):
    """Identity in the forward pass; no gradient flows back through it (``keras.ops.stop_gradient``)."""

    def call(self, inputs):
        return keras.ops.stop_gradient(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def _shared_features(features: list[keras.KerasTensor], dropout: float) -> keras.KerasTensor:
    x = features[0] if len(features) == 1 else keras.layers.Concatenate(name="branch_features")(features)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return x


def output_head(x: keras.KerasTensor, spec: OutputSpec) -> keras.KerasTensor:
    """The dense head of one declared output on feature vector ``x`` (module docstring's table)."""
    activation = {"probability": "sigmoid", "classes": "softmax"}.get(spec.kind)
    return keras.layers.Dense(output_width(spec), activation=activation, dtype="float32", name=spec.name)(x)


def score_head(features: list[keras.KerasTensor], dropout: float) -> keras.KerasTensor:
    """Concatenate branch features, dropout, and one sigmoid unit named ``score`` (kept float32)."""
    return output_head(_shared_features(features, dropout), DEFAULT_SCORE)


def output_heads(
    features: list[keras.KerasTensor],
    dropout: float,
    outputs: Sequence[OutputSpec] | None = None,
    detached: Sequence[str] = (),
    separate: Mapping[str, Callable[[], list[keras.KerasTensor]]] | None = None,
) -> keras.KerasTensor | dict[str, keras.KerasTensor]:
    """The model's outputs: the ``score`` tensor for the default outputs, else name -> head tensor.

    Outputs named in ``detached`` read the features through :class:`StopGradient`; outputs in
    ``separate`` (name -> a function building their own trunk's branch features) read only
    those. Separate trunks are built after every other head, so the rest of the model gets the
    same initial weights as without them (same seed).

    Raises
    ------
    OutputDeclarationError
        If ``outputs`` is empty or its names clash (:func:`~pipeline.models.outputs.check_outputs`).
    BundleError
        If ``detached`` names an output that is not declared.
    """
    separate = dict(separate or {})
    if is_default_outputs(outputs) and not detached and not separate:
        return score_head(features, dropout)
    specs = check_outputs(outputs if outputs is not None else (DEFAULT_SCORE,))
    unknown = sorted((set(detached) | set(separate)) - {spec.name for spec in specs})
    if unknown:
        raise BundleError(
            f"detached or separate outputs {unknown} are not among the declared {[s.name for s in specs]}"
        )
    x = _shared_features(features, dropout)
    heads = {}
    for spec in specs:
        if spec.name not in separate:
            z = StopGradient(name=f"{spec.name}_detach")(x) if spec.name in detached else x
            heads[spec.name] = output_head(z, spec)
    for spec in specs:
        if spec.name in separate:
            own = separate[spec.name]()
            z = own[0] if len(own) == 1 else keras.layers.Concatenate(name=f"{spec.name}_features")(own)
            if dropout > 0:
                z = keras.layers.Dropout(dropout, name=f"{spec.name}_dropout")(z)
            heads[spec.name] = output_head(z, spec)
    return {spec.name: heads[spec.name] for spec in specs}


def assemble(
    inputs: dict[str, keras.KerasTensor],
    features: list[keras.KerasTensor],
    dropout: float,
    name: str,
    outputs: Sequence[OutputSpec] | None = None,
    detached: Sequence[str] = (),
    separate: Mapping[str, Callable[[], list[keras.KerasTensor]]] | None = None,
) -> keras.Model:
    """The functional model from named inputs (in recipe order), per-branch features and the outputs."""
    heads = output_heads(features, dropout, outputs, detached, separate)
    return keras.Model(inputs=inputs, outputs=heads, name=name)


def refuse_separate(separate: Sequence[str], architecture: str) -> None:
    """Raise :class:`BundleError`: ``architecture`` builds no separate trunks (only small_cnn does)."""
    if separate:
        raise BundleError(
            f"{architecture} cannot give outputs {list(separate)} their own trunk; use small_cnn, or "
            "--detach-outputs to keep them from training the shared trunk"
        )


def check_min_size(recipe: Recipe, min_size: int, architecture: str) -> None:
    """Raise :class:`BundleError` when an input is smaller than ``min_size`` pixels on a side."""
    for name, (n_y, n_x, _) in recipe.input_shapes().items():
        if min(n_y, n_x) < min_size:
            raise BundleError(
                f"{architecture} needs inputs of at least {min_size}x{min_size} pixels, but recipe input "
                f"{name!r} is {n_y}x{n_x} (downsample={recipe.downsample}): lower the recipe's downsample "
                "or choose small_cnn"
            )
