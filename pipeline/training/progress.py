"""Training progress: :class:`EpochProgress` logs one line per epoch.

The line holds the loss, accuracy, validation loss and AUROC (or the monitored value), the
regression outputs' validation measures, training images/s and the training and validation times.

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras

__all__ = ["EpochProgress", "Log"]

Log = Callable[[str], None]


class EpochProgress(keras.callbacks.Callback):
    """One log line per epoch: loss, accuracy, validation loss and AUROC, training images/s, times.

    Place it after :class:`ValidationAUROC` so the validation values are in the logs. Adds
    ``images_per_s`` and ``train_seconds`` to the logs.
    """

    def __init__(self, log: Log, n_epochs: int, images_per_step: int) -> None:
        super().__init__()
        self.log = log
        self.n_epochs = n_epochs
        self.images_per_step = images_per_step
        self._epoch_start = 0.0
        self._last_batch_end = 0.0
        self._steps = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = self._last_batch_end = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._last_batch_end = time.perf_counter()
        self._steps += 1

    def log_start(self, logs: dict[str, Any]) -> None:
        """Log the starting weights' validation (a fine-tune's epoch 0, before any training)."""
        self.log(
            f"epoch {0:3d}/{self.n_epochs}  starting weights  {_validation(logs)}  "
            f"val {logs.get('val_seconds', 0.0):.1f} s"
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        train_seconds = max(self._last_batch_end - self._epoch_start, 1e-9)
        logs["train_seconds"] = train_seconds
        logs["images_per_s"] = self._steps * self.images_per_step / train_seconds
        self.log(
            f"epoch {epoch + 1:3d}/{self.n_epochs}  loss {logs.get('loss', math.nan):.4f}  "
            f"{_validation(logs)}  "
            f"{logs['images_per_s']:6.0f} img/s  train {train_seconds:.1f} s  "
            f"val {logs.get('val_seconds', 0.0):.1f} s"
        )


def _validation(logs: dict[str, Any]) -> str:
    """The validation part of an epoch's line; the training accuracy only where the score was trained
    (review: a theta_e-only fine-tune logged ``acc nan`` for the score it carries)."""
    best = "*" if logs.get("val_score_improved") else " "
    outputs = "".join(
        f"  {key[4:]} {value:.4f}" + ("*" if _kept(logs, key) else "")
        for key, value in logs.items()
        if key.startswith("val_") and key.rsplit("_", 1)[-1] in ("mse", "nll", "within1", "within2")
    )
    accuracy = logs.get("acc", logs.get("score_acc"))
    score = "" if accuracy is None else f"acc {accuracy:.3f}  "
    if "val_auroc" in logs:
        score += f"val_loss {logs.get('val_loss', math.nan):.4f}  val_auroc {logs['val_auroc']:.4f}{best}"
    else:
        kept = "*" if logs.get("val_auroc_improved") else " "
        score += f"val_monitor {logs.get('val_monitor', math.nan):.4f}{kept}"
    return score + outputs


def _kept(logs: dict[str, Any], key: str) -> bool:
    """Whether ``key`` is the validation loss that chose its output's kept epoch and it is this epoch's.

    The loss is a Gaussian head's NLL (``val_<name>_nll``), else the MSE; ``val_<name>_improved``
    (:class:`~pipeline.training.validation.ValidationAUROC`) says whether the output's kept epoch
    is this one.
    """
    name, kind = key[4:].rsplit("_", 1)
    loss = "nll" if f"val_{name}_nll" in logs else "mse"
    return kind == loss and bool(logs.get(f"val_{name}_improved"))
