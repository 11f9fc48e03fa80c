"""Probabilities past float32's resolution: a sigmoid head applied in float64 to its features.

A ``Dense(1, sigmoid)`` head computed in float32 (:func:`pipeline.models.common.output_head`)
gives probabilities near 1 in steps of 2**-24 (about 6e-8): the best candidates of a large set
tie, every logit above about 17.3 gives exactly 1.0, and their order is lost (the rank then falls
back to the object id; measured on the demo set of 300 objects with the shipped model: 2 objects
at exactly 1.0, and 125 above 0.99 held 114 distinct values). Scoring therefore runs the
model up to each such head's input, its feature vector (the same forward pass: the head is one
matrix product), and applies the head in float64: ``logit = features @ kernel + bias``,
``p = expit(logit)`` (:func:`scipy.special.expit`), which tells probabilities apart up to
1 - 1e-16 (logits up to about 37). Heads of other kinds, or models whose probability output is not
a plain ``Dense`` with a sigmoid (a custom layer), are run as they are and keep float32's
resolution.

Examples
--------
>>> import numpy as np
>>> features = np.array([[18.0], [20.0]], dtype=np.float32)  # logits 18 and 20
>>> p = head_probability(features, np.ones((1, 1)), np.zeros(1))
>>> bool(np.float32(p[0, 0]) == np.float32(p[1, 0]) == 1.0), bool(p[0, 0] < p[1, 0] < 1.0)
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.models.outputs import OutputSpec

if TYPE_CHECKING:
    import keras

__all__ = ["Heads", "head_probability", "sigmoid_heads", "until_heads"]


Heads = dict[str, tuple[np.ndarray, np.ndarray]]
"""Output name -> (kernel ``(D, 1)``, bias ``(1,)``) of a sigmoid head, float64."""


def sigmoid_heads(model: keras.Model, specs: Sequence[OutputSpec]) -> Heads:
    """Name -> (kernel ``(D, 1)``, bias ``(1,)``), float64, of each probability output of ``model``
    that is a ``Dense`` layer with a sigmoid activation, named as the output.

    Parameters
    ----------
    model
        A functional Keras model (as :func:`pipeline.models.common.assemble` builds).
    specs
        Its declared outputs; only those of kind ``probability`` are looked at.

    Returns
    -------
    dict
        Empty when no probability output is such a layer.
    """
    import keras

    heads = {}
    for spec in specs:
        if spec.kind != "probability":
            continue
        try:
            layer = model.get_layer(spec.name)
        except ValueError:
            continue
        if type(layer) is not keras.layers.Dense or layer.activation is not keras.activations.sigmoid:
            continue
        if not layer.use_bias or len(layer.get_weights()) != 2:
            continue
        kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
        heads[spec.name] = (kernel, bias)
    return heads


def until_heads(model: keras.Model, specs: Sequence[OutputSpec], heads: Sequence[str]) -> keras.Model:
    """A model on ``model``'s inputs and weights giving, per declared output, the output itself or,
    for the outputs in ``heads``, its layer's input (the feature vector, ``(n, D)``).

    Returns
    -------
    keras.Model
        Outputs as a dict keyed by output name; ``model`` itself is unchanged.
    """
    import keras

    layers = {spec.name: model.get_layer(spec.name) for spec in specs}
    outputs = {name: layer.input if name in heads else layer.output for name, layer in layers.items()}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_until_heads")


def head_probability(features: Any, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``expit(features @ kernel + bias)`` in float64: a sigmoid head's probabilities, ``(n, 1)``.

    Parameters
    ----------
    features
        The head's input, shape ``(n, D)`` (any float dtype).
    kernel, bias
        The head's weights, shapes ``(D, 1)`` and ``(1,)``.
    """
    from scipy.special import expit

    logit = np.asarray(features, dtype=np.float64) @ kernel + bias
    return expit(logit)
