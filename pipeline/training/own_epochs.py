"""Outputs with a trunk of their own keep the weights of their own best epoch.

The epoch that the monitor (the score's AUROC) chooses need not be the best for the other
outputs: the shipped model small-cnn-9 kept epoch 14 for its score, where its ``theta_e``
validation NLL was -0.17, against -0.24 at epoch 15 (its ``training/history.json``). An output
trained with its own trunk (``--separate-outputs``: small_cnn builds it a second conv stack) is
computed by layers that no other output uses, so the model at the monitor's best epoch with that
output's layers taken from its own best epoch is one consistent model, and each output is the
best its validation saw. :func:`own_trunk` finds such layers in the model itself: a fine-tuned
bundle's separate output keeps its own epoch too, and a head on a shared trunk (or detached on
shared features) never does.

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

__all__ = ["OwnBest", "leaf_layers", "own_trunk"]


def leaf_layers(model: Any) -> list[Any]:
    """Layers of ``model`` with nested models expanded (in order)."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found.extend(leaf_layers(layer))
        else:
            found.append(layer)
    return found


def _reached(model: keras.Model, names: Sequence[str]) -> set[int]:
    """Ids of the leaf layers the outputs ``names`` (output layer names) depend on."""
    if not names:
        return set()
    path = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    return {id(layer) for layer in leaf_layers(path)}


def own_trunk(model: keras.Model, name: str, others: Sequence[str]) -> list[Any] | None:
    """The weighted layers of output ``name``, if none of them is used by any output in ``others``.

    Parameters
    ----------
    model
        A dict-output model whose output layers are named by their outputs.
    name
        The output.
    others
        The model's outputs (``name`` among them is ignored).

    Returns
    -------
    list or None
        The layers ``name`` depends on that hold weights (BatchNormalization's moving statistics
        among them), in model order; None when another output uses one of them (a shared trunk, a
        head detached on shared features): then no epoch of its own can be kept.
    """
    mine = _reached(model, [name])
    shared = _reached(model, [other for other in others if other != name])
    weighted = [layer for layer in leaf_layers(model) if layer.weights and id(layer) in mine]
    return None if any(id(layer) in shared for layer in weighted) else weighted


class OwnBest:
    """The best epoch of one separate output: its value, its layers' weights and its predictions.

    Parameters
    ----------
    name
        The output.
    layers
        Its own layers (:func:`own_trunk`).
    """

    def __init__(self, name: str, layers: Sequence[Any]) -> None:
        self.name = name
        self.layers = list(layers)
        self.best_value = -math.inf
        self.best_trained = -math.inf
        """The best value of a trained epoch (epoch >= 0), the start's aside: what patience counts against."""
        self.best_epoch = -1
        self.predicted: np.ndarray | None = None
        self._weights: list[list[np.ndarray]] | None = None

    def update(self, epoch: int, value: float, predicted: np.ndarray) -> bool:
        """Keep the layers' weights when ``value`` (higher is better) beats the best; True if it did.

        ``epoch`` -1 is a fine-tune's starting weights.
        """
        if epoch >= 0 and not math.isnan(value):
            self.best_trained = max(self.best_trained, value)
        if math.isnan(value) or value <= self.best_value:
            return False
        self.best_value, self.best_epoch, self.predicted = value, epoch, predicted
        self._weights = [layer.get_weights() for layer in self.layers]
        return True

    @property
    def kept(self) -> bool:
        """Whether weights were kept (some validated value was not NaN)."""
        return self._weights is not None

    def restore(self) -> None:
        """Put the kept weights back into the layers (nothing when no epoch was kept)."""
        if self._weights is None:
            return
        for layer, weights in zip(self.layers, self._weights, strict=True):
            layer.set_weights(weights)
