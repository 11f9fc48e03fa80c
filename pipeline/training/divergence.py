"""Training that diverged: a loss or validation output that is no longer a finite number.

Once a loss becomes NaN or infinite (a learning rate far too high, an input or target that is not
finite), every later weight is NaN: the run can only produce a useless model, and the validation
AUROC of NaN scores is undefined. :class:`StopOnNonFinite` (Keras' ``TerminateOnNaN``, but raising)
checks the loss after every training batch, and the validation callback checks its outputs with
:func:`check_finite_outputs`; either raises :class:`TrainingDivergedError`, a :class:`TrainingError`, so the
command ends in one line and the run's clean-up leaves nothing half-written (trial: ``--learning-rate
1e38`` ended in a traceback from the AUROC, labelled a bug).

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from pipeline.training.config import TrainingError

__all__ = ["StopOnNonFinite", "TrainingDivergedError", "check_finite_outputs"]


class TrainingDivergedError(TrainingError):
    """The loss or the validation outputs of a training run became NaN or infinite.

    Parameters
    ----------
    what
        What became non-finite, e.g. ``"the loss"`` or ``"the validation scores"``.
    epoch
        The epoch (0-based; -1: the starting weights of a fine-tune), shown 1-based.
    step
        The training batch of that epoch (0-based, shown 1-based); None: at validation.
    learning_rate
        The run's learning rate, named in the advice; None: not known where raised.
    value
        The non-finite value seen (NaN or an infinity).
    """

    def __init__(
        self,
        what: str,
        epoch: int,
        step: int | None = None,
        learning_rate: float | None = None,
        value: float = math.nan,
    ) -> None:
        self.what, self.epoch, self.step = what, epoch, step
        self.learning_rate, self.value = learning_rate, value
        where = f"epoch {epoch + 1}" + (f" (step {step + 1})" if step is not None else "")
        rate = "" if learning_rate is None else f" (this run: {learning_rate:g})"
        super().__init__(
            f"training diverged: {what} became {_name(value)} at {where}; lower --learning-rate{rate}, or "
            "bring back to its default any option that scales the inputs or targets (--softening-sigma, "
            "--clip-sigma, --percentiles, --output-weight), and check that the store's pixels and the "
            "targets are finite; no model was saved"  # trial: a --softening-sigma of 1e308 blamed the rate
        )

    def with_learning_rate(self, learning_rate: float) -> TrainingDivergedError:
        """The same error, its advice naming ``learning_rate``."""
        return TrainingDivergedError(self.what, self.epoch, self.step, learning_rate, self.value)


def _name(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


def check_finite_outputs(predicted: Mapping[str, np.ndarray], epoch: int) -> None:
    """Raise :class:`TrainingDivergedError` when any validation output holds a NaN or an infinity.

    Parameters
    ----------
    predicted
        Output name -> its values on the validation rows.
    epoch
        The epoch validated (0-based; -1: a fine-tune's starting weights).
    """
    for name, values in predicted.items():
        values = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            what = "the validation scores" if name == "score" else f"the validation {name} outputs"
            raise TrainingDivergedError(what, epoch, value=float(values[bad].flat[0]))


class StopOnNonFinite(keras.callbacks.Callback):
    """Raise :class:`TrainingDivergedError` as soon as a training batch's loss is NaN or infinite."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(np.asarray(loss))
        if not math.isfinite(value):
            self.model.stop_training = True
            raise TrainingDivergedError("the loss", self.epoch, batch, value=value)
