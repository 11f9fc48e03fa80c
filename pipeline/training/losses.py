"""Loss functions of declared outputs, per kind (imports Keras: training code only).

``regression_gaussian`` heads predict ``[mean, log_sigma]`` and train on the Gaussian negative
log-likelihood (Nix & Weigend 1994; Kendall & Gal 2017, "aleatoric" uncertainty):

    NLL = 0.5 * ((y - mean) / sigma)**2 + log(sigma) + 0.5 * log(2 pi)

in the output's declared unit, with ``log_sigma`` clipped to
``[LOG_SIGMA_MIN, LOG_SIGMA_MAX]`` so that a head cannot drive sigma to 0 (an infinite loss
on one outlier) or to infinity; the same clip applies when predictions are turned into sigmas.
Masked objects have sample weight 0 and a finite placeholder target, so they add exactly 0.

=====================  ==========================================
kind                   loss
=====================  ==========================================
probability            binary cross-entropy
regression             mean squared error
regression_gaussian    :func:`gaussian_nll`
classes                sparse categorical cross-entropy
=====================  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import ops

from pipeline.training.declared import LOG_SIGMA_MAX, LOG_SIGMA_MIN

__all__ = ["LOG_SIGMA_MAX", "LOG_SIGMA_MIN", "gaussian_nll", "loss_for"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@keras.saving.register_keras_serializable(package="lenshunt")
def gaussian_nll(y_true, y_pred):
    """Gaussian NLL per object: ``y_true`` ``(n, 1)``, ``y_pred`` ``(n, 2)`` -> ``(n,)``."""
    y_true = ops.cast(ops.reshape(y_true, (-1,)), "float32")
    y_pred = ops.cast(y_pred, "float32")
    mean = y_pred[:, 0]
    log_sigma = ops.clip(y_pred[:, 1], LOG_SIGMA_MIN, LOG_SIGMA_MAX)
    z = (y_true - mean) * ops.exp(-log_sigma)
    return 0.5 * z * z + log_sigma + _HALF_LOG_2PI


def loss_for(kind: str) -> keras.losses.Loss | Callable:
    """The Keras loss of an output of ``kind`` (module docstring's table)."""
    if kind == "probability":
        return keras.losses.BinaryCrossentropy()
    if kind == "regression":
        return keras.losses.MeanSquaredError()
    if kind == "regression_gaussian":
        return gaussian_nll
    if kind == "classes":
        return keras.losses.SparseCategoricalCrossentropy()
    raise ValueError(f"no loss for output kind {kind!r}")
