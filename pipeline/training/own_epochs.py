"""Separate outputs keep the weights of their own best epoch.

An output trained with its own trunk (``--separate-outputs``: small_cnn builds it a second conv
stack) is computed by layers that no other output uses. The epoch that the monitor (the score's
AUROC) chooses need not be the best for it: the shipped model small-cnn-9 kept epoch 14 for its
score, where its ``theta_e`` validation NLL was -0.17, against -0.24 at epoch 15
(``training/history.json``; docs/model-card.md). Since the layers are disjoint, the model at the
monitor's best epoch with each separate output's own layers taken from that output's best epoch
is one consistent model, and every output is the best its validation saw.

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

__all__ = ["OwnBest", "leaf_layers", "own_layers"]


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


def own_layers(model: keras.Model, name: str, others: Sequence[str]) -> list[Any]:
    """Weighted layers that output ``name`` depends on and none of the outputs ``others`` does.

    Parameters
    ----------
    model
        A dict-output model whose output layers are named by their outputs.
    name
        The output.
    others
        The model's other outputs.

    Returns
    -------
    list
        The layers (with BatchNormalization, whose moving statistics are weights too), in model
        order; empty when every layer of ``name`` is shared.
    """
    mine = _reached(model, [name])
    shared = _reached(model, [other for other in others if other != name])
    return [layer for layer in leaf_layers(model) if layer.weights and id(layer) in mine - shared]


class OwnBest:
    """The best epoch of one separate output: its value, its layers' weights and its predictions.

    Parameters
    ----------
    name
        The output.
    layers
        Its own layers (:func:`own_layers`).
    """

    def __init__(self, name: str, layers: Sequence[Any]) -> None:
        self.name = name
        self.layers = list(layers)
        self.best_value = -math.inf
        self.best_epoch = -1
        self.predicted: np.ndarray | None = None
        self._weights: list[list[np.ndarray]] | None = None

    def update(self, epoch: int, value: float, predicted: np.ndarray) -> bool:
        """Keep the layers' weights when ``value`` (higher is better) beats the best; True if it did."""
        if math.isnan(value) or value <= self.best_value:
            return False
        self.best_value, self.best_epoch, self.predicted = value, epoch, predicted
        self._weights = [layer.get_weights() for layer in self.layers]
        return True

    def restore(self) -> None:
        """Put the kept weights back into the layers (nothing when no epoch was kept)."""
        if self._weights is None:
            return
        for layer, weights in zip(self.layers, self._weights, strict=True):
            layer.set_weights(weights)
