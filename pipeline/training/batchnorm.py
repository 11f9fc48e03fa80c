"""BatchNorm recalibration ("precise BN"): moving statistics set to the mean over given batches.

:func:`recalibrate_batch_norm` runs before each validation of
:class:`~pipeline.training.validation.ValidationAUROC` when ``TrainConfig.bn_calibration_batches``
is positive; :func:`batch_norm_layers` finds the layers it recalibrates.

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np

__all__ = ["batch_norm_layers", "recalibrate_batch_norm"]


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every trainable ``BatchNormalization`` layer of ``model``, nested models included."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def recalibrate_batch_norm(model: keras.Model, batches: Iterable[dict[str, np.ndarray]]) -> int:
    """Set BatchNorm moving statistics to the average of their batch statistics over ``batches``.

    "Precise BN" (Wu & Johnson 2021): the moving averages Keras keeps (momentum 0.99) trail the
    weights by about a hundred steps, so early in a short training run a model scores very
    differently in inference mode than in training mode. Forward passes in training mode with
    momentum ``(k - 1) / k`` for the ``k``-th batch make every moving statistic the plain mean
    over the given batches, for the current weights. Weights are not changed. Returns the number
    of batches used.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    n_batches = 0
    try:
        for inputs in batches:
            n_batches += 1
            for layer in layers:
                layer.momentum = (n_batches - 1) / n_batches
            model(inputs, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return n_batches
