"""Architecture names -> builders: ``build_model("small_cnn", recipe)``.

Every builder takes the recipe (input names and shapes) and keyword options, and returns an
uncompiled ``keras.Model`` with one input per recipe input and one sigmoid output ``score``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial
from typing import Any

import keras

from pipeline.errors import BundleError
from pipeline.models.efficientnet import build_efficientnet
from pipeline.models.resnet import build_deeplens_resnet
from pipeline.models.small_cnn import build_small_cnn
from pipeline.preprocess.recipe import Recipe

ModelBuilder = Callable[..., keras.Model]

BUILDERS: dict[str, ModelBuilder] = {
    "small_cnn": build_small_cnn,
    "efficientnet_b0": partial(build_efficientnet, variant="b0"),
    "efficientnet_b1": partial(build_efficientnet, variant="b1"),
    "efficientnet_b2": partial(build_efficientnet, variant="b2"),
    "deeplens_resnet": build_deeplens_resnet,
}
MODEL_NAMES: tuple[str, ...] = tuple(BUILDERS)


def build_model(name: str, recipe: Recipe, **kwargs: Any) -> keras.Model:
    """Build the architecture ``name`` for ``recipe``'s inputs (uncompiled, random weights).

    Parameters
    ----------
    name
        One of :data:`MODEL_NAMES`.
    recipe
        The preprocessing recipe whose inputs the model takes.
    **kwargs
        Options of the architecture's builder (e.g. ``base_filters`` for ``small_cnn``).
    """
    check_architecture(name)
    return BUILDERS[name](recipe, **kwargs)


def check_architecture(name: str) -> None:
    """Raise :class:`~pipeline.errors.BundleError` unless ``name`` is one of :data:`MODEL_NAMES`,
    naming them and the closest (``lenshunt train`` checks it before Prefect starts; trial: after,
    with three Prefect error lines and a half-written output folder)."""
    if name not in BUILDERS:
        hint = difflib.get_close_matches(name, MODEL_NAMES, n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        raise BundleError(f"no model architecture named {name!r}; known: {list(MODEL_NAMES)}.{suggestion}")
