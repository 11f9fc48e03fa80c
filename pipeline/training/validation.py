"""Validation during training: the validation set's scores and outputs, and the epoch-end callback.

At the end of every epoch :class:`ValidationAUROC` scores the validation set
(:func:`predict_validation`, :func:`predict_validation_outputs`), computes its AUROC with
:mod:`pipeline.evaluation.metrics` and its loss (:func:`binary_cross_entropy`), measures the
regression outputs (:func:`~pipeline.training.declared.regression_logs`), saves the model when the
monitored value improved (the *best* checkpoint) and stops training after ``patience`` epochs
in which neither it nor any separate output's own loss improved; at the end the best weights are
restored, and each separate output's own layers take the weights of its own best epoch
(:mod:`pipeline.training.own_epochs`). A fine-tune validates its starting weights first, and keeps
them when no trained epoch beats them.

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from pipeline.evaluation.metrics import auroc
from pipeline.models.common import SCORE_OUTPUT
from pipeline.models.outputs import OutputSpec
from pipeline.training.batchnorm import recalibrate_batch_norm
from pipeline.training.dataset import ValidationSet
from pipeline.training.declared import regression_logs
from pipeline.training.divergence import check_finite_outputs
from pipeline.training.own_epochs import OwnBest, own_trunk

__all__ = [
    "ValidationAUROC",
    "binary_cross_entropy",
    "predict_validation",
    "predict_validation_outputs",
    "progressed",
]


def progressed(monitor_improved: bool, own: Iterable[tuple[float, float]], min_delta: float) -> bool:
    """Whether an epoch counts as progress for early stopping (patience starts again).

    Parameters
    ----------
    monitor_improved
        The monitor beat its best by more than ``min_delta`` this epoch.
    own
        ``(best before this epoch, this epoch)`` of each output that keeps its own epoch, higher is
        better (an AUROC, or minus a validation loss); NaN: not measured.
    min_delta
        The gain that counts, for the monitor and each of those outputs alike (``--min-delta``).

    Returns
    -------
    bool
        True when the monitor improved or some output gained more than ``min_delta``: an output
        still learning on a trunk of its own holds training on, as the monitor would, and one that
        creeps by less than ``min_delta`` does not.
    """
    return monitor_improved or any(
        not math.isnan(value) and value > before + min_delta for before, value in own
    )


def predict_validation(model: keras.Model, validation: ValidationSet) -> np.ndarray:
    """Scores of the validation rows (store order), batch by batch with a fixed batch shape."""
    parts = []
    for inputs, n_real in validation.batches():
        scores = np.asarray(model.predict_on_batch(inputs)).reshape(-1)
        parts.append(scores[:n_real])
    return np.concatenate(parts).astype(np.float64) if parts else np.empty(0)


def predict_validation_outputs(model: keras.Model, validation: ValidationSet) -> dict[str, np.ndarray]:
    """Every output of the validation rows (store order): name -> ``(n, width)`` float64.

    A single-tensor model's output is named ``score``.
    """
    parts: dict[str, list[np.ndarray]] = {}
    for inputs, n_real in validation.batches():
        predicted = model.predict_on_batch(inputs)
        if not isinstance(predicted, dict):
            predicted = {SCORE_OUTPUT: predicted}
        for name, values in predicted.items():
            values = np.asarray(values)
            parts.setdefault(name, []).append(values.reshape(values.shape[0], -1)[:n_real])
    return {name: np.concatenate(values).astype(np.float64) for name, values in parts.items()}


def binary_cross_entropy(labels: np.ndarray, scores: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of scores in [0, 1] (clipped to ``[eps, 1 - eps]``)."""
    p = np.clip(scores, eps, 1 - eps)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


class ValidationAUROC(keras.callbacks.Callback):
    """Validation AUROC each epoch, best-model checkpoint, early stopping and best-weight restore.

    Adds ``val_auroc`` and ``val_loss`` to the epoch logs (callbacks after this one see them).

    Parameters
    ----------
    validation
        The validation batches and labels.
    checkpoint
        Where the best model is saved (a ``.keras`` path) each time the monitored value improves, and
        again at the end when an output kept its own epoch (below); None: memory only.
    patience
        Epochs without progress (:func:`progressed`: neither the monitor nor an output keeping its
        own epoch, below, gained more than ``min_delta``) before training stops.
    calibration
        Training batches of an epoch (given its number) to recalibrate BatchNorm statistics with
        before validating (:func:`recalibrate_batch_norm`); None: keep Keras' moving averages.
    outputs
        Declared outputs (None: the one ``score``). Regression outputs are measured on the
        validation rows whose target weight is positive (:func:`regression_logs`).
    monitor
        The output that chooses the best epoch (its progress holds training on): ``score`` by its
        AUROC, a regression output by minus its validation loss (MSE, or the Gaussian NLL), logged as
        ``val_monitor`` (``best_auroc`` then holds it). None: ``score`` when declared, else the
        first regression output.
    targets
        Output name -> ``(values, weights)`` in store row order, for the regression outputs.
    trained
        The outputs this run trains (None: all); a fine-tune's carried outputs never keep an
        epoch of their own, and their unchanging values never hold training on.
    validate_start
        Validate the starting weights before the first epoch, as epoch -1 (shown as epoch 0): a
        trained epoch is then kept for the monitor only if it beats them by more than ``min_delta``,
        and when none does the model ends with its starting weights (:attr:`kept_start`), but for
        the layers of outputs with a trunk of their own, which keep their own best epoch (the start
        among them; as for every epoch, any gain counts there, ``min_delta`` only for patience).
        Patience counts against the trained epochs alone, so the start changes which weights are
        kept, never how long training runs. For fine-tunes whose validation objects the starting
        model did not train on (:func:`~pipeline.training.finetune.fair_start`).
    on_start
        Called with the starting weights' validation logs (``validate_start``), to log them.

    Every output other than the monitor that this run trains, whose weighted layers no other output
    uses (its own trunk: ``--separate-outputs`` when the model was built, :func:`own_trunk`) and
    that is validated (the score by its AUROC, a regression output with targets by its validation
    loss), keeps the weights of those layers from its own best epoch (:attr:`own_epochs`). Each epoch's
    logs say for each of those outputs, and for the monitor, whether its kept epoch is this one
    (``val_<name>_improved``; ``val_auroc_improved`` too, for the monitor).
    """

    def __init__(
        self,
        validation: ValidationSet,
        checkpoint: Path | None,
        *,
        patience: int,
        min_delta: float = 0.0,
        calibration: Callable[[int], Iterable[dict[str, np.ndarray]]] | None = None,
        outputs: Sequence[OutputSpec] | None = None,
        targets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        monitor: str | None = None,
        trained: Collection[str] | None = None,
        validate_start: bool = False,
        on_start: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__()
        self.validation = validation
        self.outputs = tuple(outputs) if outputs is not None else None
        self.targets = targets or {}
        self.best_outputs: dict[str, np.ndarray] | None = None
        names = [spec.name for spec in self.outputs] if self.outputs is not None else [SCORE_OUTPUT]
        if monitor is None:
            regression = [spec.name for spec in self.outputs or () if spec.name in self.targets]
            monitor = SCORE_OUTPUT if SCORE_OUTPUT in names else (regression or names)[0]
        if monitor not in names or (monitor != SCORE_OUTPUT and monitor not in self.targets):
            raise ValueError(f"monitor {monitor!r} must be score or a regression output among {names}")
        self.monitor = monitor
        self.trained = None if trained is None else frozenset(trained)
        self.own: dict[str, OwnBest] = {}
        self.calibration = calibration
        self.checkpoint = checkpoint
        self.patience = patience
        self.min_delta = min_delta
        self.best_auroc = -math.inf
        self.best_epoch = -1
        self.best_scores: np.ndarray | None = None
        self.stopped_early = False
        self.validate_start = validate_start
        self.on_start = on_start
        self.kept_start = False
        self.start_logs: dict[str, Any] | None = None
        self._best_weights: list[np.ndarray] | None = None
        self._best_trained = -math.inf  # the monitor's best over trained epochs (patience), start aside
        self._wait = 0

    @property
    def own_epochs(self) -> dict[str, int]:
        """Output with its own trunk -> the epoch (0-based; -1: the starting weights) its own layers
        were kept from; outputs with none kept are left out."""
        return {name: own.best_epoch for name, own in self.own.items() if own.kept}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        names = [spec.name for spec in self.outputs or ()]
        validated = [
            name
            for name in names
            if (name == SCORE_OUTPUT or (name in self.targets and self.targets[name][1].any()))
            and (self.trained is None or name in self.trained)
        ]
        self.own = {}
        for name in validated:
            layers = own_trunk(self.model, name, names) if name != self.monitor else None
            if layers:
                self.own[name] = OwnBest(name, layers)
        if self.validate_start:
            self._keep_start()

    def _keep_start(self) -> None:
        """Validate the starting weights as epoch -1, so that a trained epoch is kept only if it beats them.

        A fine-tune (``--init``) starts from a trained model; when no epoch of training improves on
        it on the new domain's validation set, the bundle keeps the starting weights (review: the
        kept epoch was always a trained one, even when every one of them was worse). BatchNorm is
        not recalibrated: a fine-tune's BatchNorm layers are frozen, and the start is the model as it was.
        """
        logs: dict[str, Any] = {}
        started = time.perf_counter()
        value, scores, predicted = self._measure(logs, -1)
        logs["val_seconds"] = time.perf_counter() - started
        for name, own in self.own.items():
            own.update(-1, self._value(name, logs), predicted[name])
        if not math.isnan(value):
            self.best_auroc, self.best_epoch, self.best_scores = value, -1, scores
            self.best_outputs = predicted
            self._best_weights = self.model.get_weights()
            self.kept_start = True
            if self.checkpoint is not None:
                self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(self.checkpoint)
        self.start_logs = logs
        if self.on_start is not None:
            self.on_start(logs)

    def _value(self, name: str, logs: dict[str, Any]) -> float:
        """The score's AUROC, or minus the validation loss of a regression output (NaN: not measured)."""
        if name == SCORE_OUTPUT:
            return logs.get("val_auroc", math.nan)
        spec = next(spec for spec in self.outputs if spec.name == name)
        loss_key = "nll" if spec.kind == "regression_gaussian" else "mse"
        return -logs.get(f"val_{spec.name}_{loss_key}", math.nan)

    def _measure(
        self, logs: dict[str, Any], epoch: int
    ) -> tuple[float, np.ndarray | None, dict[str, np.ndarray]]:
        """Validate the model as it is: the monitored value, the scores and every output; fills ``logs``.

        Raises :class:`~pipeline.training.divergence.TrainingDivergedError` when an output of ``epoch`` is
        not finite (the AUROC of NaN scores is undefined).
        """
        value = math.nan
        if self.outputs is None:
            scores = predict_validation(self.model, self.validation)
            predicted = {SCORE_OUTPUT: scores}
        else:
            predicted = predict_validation_outputs(self.model, self.validation)
            scores = predicted[SCORE_OUTPUT][:, 0] if SCORE_OUTPUT in predicted else None
        check_finite_outputs(predicted, epoch)
        if scores is not None:
            value = auroc(self.validation.labels, scores)
            logs["val_auroc"] = value
            logs["val_loss"] = binary_cross_entropy(self.validation.labels, scores)
        for spec in self.outputs or ():
            if spec.name in self.targets and self.targets[spec.name][1].any():
                values, weights = self.targets[spec.name]
                rows = self.validation.rows
                logs.update(regression_logs(spec, predicted[spec.name], values[rows], weights[rows]))
        if self.monitor != SCORE_OUTPUT:
            value = self._value(self.monitor, logs)
            logs["val_monitor"] = value
        return value, scores, predicted

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        started = time.perf_counter()
        if self.calibration is not None:
            recalibrate_batch_norm(self.model, self.calibration(epoch))
        value, scores, predicted = self._measure(logs, epoch)
        # patience counts against the best trained epochs alone: validating the start changes which
        # weights are kept, never how long training runs (an early epoch below the start stopped it)
        own_values = {name: (own.best_trained, self._value(name, logs)) for name, own in self.own.items()}
        own_improved = {
            name: own.update(epoch, own_values[name][1], predicted[name]) for name, own in self.own.items()
        }
        logs["val_seconds"] = time.perf_counter() - started
        improved = not math.isnan(value) and value > self.best_auroc + self.min_delta
        trained_improved = not math.isnan(value) and value > self._best_trained + self.min_delta
        if trained_improved:
            self._best_trained = value
        for name in predicted:  # the outputs whose kept epoch this one may be: their own, or the monitor
            if name in own_improved or name == self.monitor:
                logs[f"val_{name}_improved"] = float(own_improved.get(name, improved))
        self._wait = (
            0 if progressed(trained_improved, own_values.values(), self.min_delta) else self._wait + 1
        )
        if improved:
            self.best_auroc, self.best_epoch, self.best_scores = value, epoch, scores
            self.best_outputs = predicted
            self._best_weights = self.model.get_weights()
            self.kept_start = False
            logs["val_auroc_improved"] = 1.0
            if self.checkpoint is not None:
                self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(self.checkpoint)
        else:
            logs["val_auroc_improved"] = 0.0
        # after the checkpoint: an epoch that beats the start but not the trained best by min_delta is
        # kept and still counts towards patience (review: it ran on, so the start changed the length)
        if self._wait >= self.patience and epoch + 1 < (self.params or {}).get("epochs", math.inf):
            self.stopped_early = True  # not when the last epoch was to end training anyway
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._best_weights is None:  # the monitor never improved: nothing was kept, nothing is merged
            return
        self.model.set_weights(self._best_weights)
        moved = False
        for name, own in self.own.items():
            if not own.kept or own.best_epoch == self.best_epoch:
                continue
            own.restore()
            self.best_outputs = {**(self.best_outputs or {}), name: own.predicted}
            if name == SCORE_OUTPUT:
                self.best_scores = own.predicted[:, 0]
            moved = True
        if moved and self.checkpoint is not None:
            self.model.save(self.checkpoint)
