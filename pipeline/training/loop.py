"""The Keras training loop: ``model.fit`` on a :class:`StreamBatches` dataset, with validation AUROC.

At the end of every epoch :class:`ValidationAUROC` scores the validation set, computes its AUROC
with :mod:`pipeline.evaluation.metrics`, saves the model when the AUROC improved (the *best* checkpoint)
and stops training after ``patience`` epochs without improvement; at the end the best weights
are restored. :class:`EpochProgress` logs one line per epoch (loss, validation loss and AUROC,
training images/s).

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.evaluation.metrics import auroc
from pipeline.models.common import SCORE_OUTPUT
from pipeline.models.outputs import OutputSpec
from pipeline.training.config import TrainConfig
from pipeline.training.dataset import TrainingStream, ValidationSet
from pipeline.training.declared import regression_logs
from pipeline.training.losses import loss_for

Log = Callable[[str], None]


class StreamBatches(keras.utils.PyDataset):
    """A :class:`~pipeline.training.dataset.TrainingStream` as a Keras ``PyDataset`` of fixed length.

    Batch ``i`` of epoch ``e`` is global batch ``e * steps_per_epoch + i`` of the stream, so
    successive epochs walk on through the passes of the training set. The epoch is set by
    :class:`FollowEpochs` from the trainer's own epoch number (Keras also calls the dataset's
    ``on_epoch_end`` once before training starts, so counting those calls would be off by one).
    Pass ``shuffle=False`` to ``fit``: the stream is already shuffled, in an order that keeps
    reads local.
    """

    def __init__(self, stream: TrainingStream, steps_per_epoch: int, *, workers: int = 1) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.stream = stream
        self.steps_per_epoch = steps_per_epoch
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch {index} out of range 0..{self.steps_per_epoch - 1}")
        return self.stream.batch(self.global_index(index))

    def global_index(self, index: int) -> int:
        """Stream index of batch ``index`` of the current epoch."""
        return self.epoch * self.steps_per_epoch + index


class FollowEpochs(keras.callbacks.Callback):
    """Tells a :class:`StreamBatches` which epoch starts, before any of its batches is asked for."""

    def __init__(self, batches: StreamBatches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.epoch = epoch


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
        Where the best model is saved (a ``.keras`` path) each time the AUROC improves; None: memory only.
    patience
        Epochs without an improvement of more than ``min_delta`` before training stops.
    calibration
        Training batches of an epoch (given its number) to recalibrate BatchNorm statistics with
        before validating (:func:`recalibrate_batch_norm`); None: keep Keras' moving averages.
    outputs
        Declared outputs (None: the one ``score``). Regression outputs are measured on the
        validation rows whose target weight is positive (:func:`regression_logs`).
    monitor
        The output that chooses the best epoch and stops training: ``score`` by its AUROC, a
        regression output by minus its validation loss (MSE, or the Gaussian NLL), logged as
        ``val_monitor`` (``best_auroc`` then holds it). None: ``score`` when declared, else the
        first regression output.
    targets
        Output name -> ``(values, weights)`` in store row order, for the regression outputs.
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
        self.calibration = calibration
        self.checkpoint = checkpoint
        self.patience = patience
        self.min_delta = min_delta
        self.best_auroc = -math.inf
        self.best_epoch = -1
        self.best_scores: np.ndarray | None = None
        self.stopped_early = False
        self._best_weights: list[np.ndarray] | None = None
        self._wait = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        started = time.perf_counter()
        if self.calibration is not None:
            recalibrate_batch_norm(self.model, self.calibration(epoch))
        if self.outputs is None:
            scores = predict_validation(self.model, self.validation)
            predicted = {SCORE_OUTPUT: scores}
        else:
            predicted = predict_validation_outputs(self.model, self.validation)
            scores = predicted[SCORE_OUTPUT][:, 0] if SCORE_OUTPUT in predicted else None
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
            spec = next(spec for spec in self.outputs if spec.name == self.monitor)
            loss_key = "nll" if spec.kind == "regression_gaussian" else "mse"
            value = -logs.get(f"val_{spec.name}_{loss_key}", math.nan)
            logs["val_monitor"] = value
        logs["val_seconds"] = time.perf_counter() - started
        if not math.isnan(value) and value > self.best_auroc + self.min_delta:
            self.best_auroc, self.best_epoch, self.best_scores = value, epoch, scores
            self.best_outputs = predicted
            self._best_weights = self.model.get_weights()
            self._wait = 0
            logs["val_auroc_improved"] = 1.0
            if self.checkpoint is not None:
                self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(self.checkpoint)
        else:
            self._wait += 1
            logs["val_auroc_improved"] = 0.0
            if self._wait >= self.patience:
                self.stopped_early = True
                self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


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

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        train_seconds = max(self._last_batch_end - self._epoch_start, 1e-9)
        logs["train_seconds"] = train_seconds
        logs["images_per_s"] = self._steps * self.images_per_step / train_seconds
        best = "*" if logs.get("val_auroc_improved") else " "
        outputs = "".join(
            f"  {key[4:]} {value:.4f}"
            for key, value in logs.items()
            if key.startswith("val_") and key.rsplit("_", 1)[-1] in ("mse", "within1", "within2")
        )
        if "val_auroc" in logs:
            score = (
                f"acc {logs.get('acc', logs.get('score_acc', math.nan)):.3f}  "
                f"val_loss {logs.get('val_loss', math.nan):.4f}  val_auroc {logs['val_auroc']:.4f}{best}"
            )
        else:
            score = f"val_monitor {logs.get('val_monitor', math.nan):.4f}{best}"
        self.log(
            f"epoch {epoch + 1:3d}/{self.n_epochs}  loss {logs.get('loss', math.nan):.4f}  {score}{outputs}  "
            f"{logs['images_per_s']:6.0f} img/s  train {train_seconds:.1f} s  "
            f"val {logs.get('val_seconds', 0.0):.1f} s"
        )


@dataclass
class FitResult:
    """What :func:`fit_model` did: per-epoch logs, the best epoch and its validation scores, speed."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_auroc: float = math.nan
    best_val_scores: np.ndarray | None = None
    best_val_outputs: dict[str, np.ndarray] | None = None
    """Every output of the validation rows at the best epoch: name -> ``(n, width)``."""
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    images_per_s: float = math.nan
    """Median over epochs of training images per second (validation time excluded)."""


def compile_model(
    model: keras.Model,
    learning_rate: float,
    decay_steps: int | None = None,
    outputs: Sequence[OutputSpec] | None = None,
    loss_weights: Mapping[str, float] | None = None,
    trained: Collection[str] | None = None,
) -> None:
    """Compile with Adam: binary cross-entropy and accuracy as ``acc`` for the one ``score`` output.

    With ``decay_steps`` the learning rate follows a cosine from ``learning_rate`` down to 5% of
    it over that many steps (then stays there). With declared ``outputs`` (a dict-output model)
    each output gets the loss of its kind (:func:`pipeline.training.losses.loss_for`) weighted by
    ``loss_weights`` (default 1), and the ``score`` output its accuracy. With ``trained`` only
    those outputs have a loss (fine-tuning some heads of a model); the others are not trained.
    """
    rate: float | keras.optimizers.schedules.LearningRateSchedule = learning_rate
    if decay_steps:
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=decay_steps, alpha=0.05)
    if outputs is None:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=rate),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[keras.metrics.BinaryAccuracy(name="acc")],
        )
        return
    weights = dict(loss_weights or {})
    names = [spec.name for spec in outputs] if trained is None else list(trained)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=rate),
        loss={spec.name: loss_for(spec.kind) if spec.name in names else None for spec in outputs},
        loss_weights={
            spec.name: float(weights.get(spec.name, 1.0)) if spec.name in names else 0.0 for spec in outputs
        },
        metrics={
            spec.name: [keras.metrics.BinaryAccuracy(name="acc")] if spec.name == SCORE_OUTPUT else []
            for spec in outputs
            if spec.name in names
        },
    )


def fit_model(
    model: keras.Model,
    stream: TrainingStream,
    validation: ValidationSet,
    config: TrainConfig,
    *,
    checkpoint: Path | None = None,
    log: Log = print,
    blas_threads: int | None = 1,
    outputs: Sequence[OutputSpec] | None = None,
) -> FitResult:
    """Train a compiled ``model`` on ``stream``, validating on ``validation`` each epoch.

    Parameters
    ----------
    model
        Compiled (:func:`compile_model`).
    stream
        Training batches; an epoch has ``config.steps_per_epoch`` batches, by default one pass.
    validation
        Validation batches; must hold both classes (AUROC is undefined otherwise).
    config
        ``epochs``, ``steps_per_epoch``, ``patience``, ``min_delta``, ``read_workers`` and
        ``bn_calibration_batches`` are used.
    checkpoint
        Path of the best-model ``.keras`` checkpoint.
    log
        Receives the epoch lines.
    outputs
        Declared outputs of a dict-output model (None: the one ``score``); the regression
        outputs are validated against ``stream.targets``.
    blas_threads
        Threads NumPy's and SciPy's BLAS may use while training (None: their default, one per
        core). Batch preparation calls BLAS (the resampling products); with one BLAS thread per
        core, idle BLAS threads spin-wait on the cores TensorFlow's own pool needs, and training
        ran 2 to 4 times slower than with 1 (measured: bench/RESULTS.md, Training).

    Returns
    -------
    FitResult
        The model itself ends with the weights of its best epoch.
    """
    steps = config.steps_per_epoch or stream.plan.batches_per_pass
    batches = StreamBatches(stream, steps, workers=config.read_workers)
    n_calibration = min(config.bn_calibration_batches, steps)

    def calibration(epoch: int) -> Iterator[dict[str, np.ndarray]]:
        """The first training batches of ``epoch`` (the same every run)."""
        return (stream.batch(epoch * steps + index)[0] for index in range(n_calibration))

    validator = ValidationAUROC(
        validation,
        checkpoint,
        patience=config.patience,
        min_delta=config.min_delta,
        calibration=calibration if n_calibration else None,
        outputs=outputs,
        targets=stream.targets,
        monitor=config.monitor,
    )
    progress = EpochProgress(log, config.epochs, stream.plan.batch_size)
    started = time.perf_counter()
    with threadpool_limits(limits=blas_threads, user_api="blas"), warnings.catch_warnings():
        # heads of a fine-tuned model that this run leaves alone have no loss, hence no gradients
        warnings.filterwarnings(
            "ignore", message="Gradients do not exist for variables", category=UserWarning
        )
        history = model.fit(
            batches,
            epochs=config.epochs,
            shuffle=False,
            verbose=0,
            callbacks=[FollowEpochs(batches), validator, progress],
        )
    epochs = [
        {key: float(values[i]) for key, values in history.history.items()} for i in range(len(history.epoch))
    ]
    speeds = [epoch["images_per_s"] for epoch in epochs if "images_per_s" in epoch]
    return FitResult(
        history=epochs,
        best_epoch=validator.best_epoch,
        best_val_auroc=validator.best_auroc if validator.best_epoch >= 0 else math.nan,
        best_val_scores=validator.best_scores,
        best_val_outputs=validator.best_outputs,
        epochs_run=len(epochs),
        stopped_early=validator.stopped_early,
        seconds=time.perf_counter() - started,
        images_per_s=float(np.median(speeds)) if speeds else math.nan,
    )
