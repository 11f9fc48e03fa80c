"""Pieces every architecture shares: Keras inputs from a recipe and the one-unit score head."""

from __future__ import annotations

import keras

from pipeline.errors import BundleError
from pipeline.preprocess.recipe import Recipe

SCORE_OUTPUT = "score"
"""Name of the output layer: one sigmoid unit, the probability that the object is a lens."""


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


def score_head(features: list[keras.KerasTensor], dropout: float) -> keras.KerasTensor:
    """Concatenate branch features, dropout, and one sigmoid unit named ``score`` (kept float32)."""
    x = features[0] if len(features) == 1 else keras.layers.Concatenate(name="branch_features")(features)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=SCORE_OUTPUT)(x)


def assemble(
    inputs: dict[str, keras.KerasTensor], features: list[keras.KerasTensor], dropout: float, name: str
) -> keras.Model:
    """The functional model from named inputs (in recipe order) and per-branch feature vectors."""
    return keras.Model(inputs=inputs, outputs=score_head(features, dropout), name=name)


def check_min_size(recipe: Recipe, min_size: int, architecture: str) -> None:
    """Raise :class:`BundleError` when an input is smaller than ``min_size`` pixels on a side."""
    for name, (n_y, n_x, _) in recipe.input_shapes().items():
        if min(n_y, n_x) < min_size:
            raise BundleError(
                f"{architecture} needs inputs of at least {min_size}x{min_size} pixels, but recipe input "
                f"{name!r} is {n_y}x{n_x} (downsample={recipe.downsample}): lower the recipe's downsample "
                "or choose small_cnn"
            )
