"""The Keras training loop: ``model.fit`` on a :class:`StreamBatches` dataset, with validation AUROC.

:func:`compile_model` compiles a model with the losses of its declared outputs; :func:`fit_model`
trains it on a :class:`StreamBatches` view of the training stream. At the end of every epoch
:class:`~pipeline.training.validation.ValidationAUROC` scores the validation set, keeps the best
checkpoint and stops early (BatchNorm statistics recalibrated first,
:mod:`pipeline.training.batchnorm`); :class:`~pipeline.training.progress.EpochProgress` logs one
line per epoch (loss, validation loss and AUROC, training images/s). The names of those modules
are importable from here as before.

This module imports Keras: only training code imports it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.models.common import SCORE_OUTPUT
from pipeline.models.outputs import OutputSpec
from pipeline.training.batchnorm import batch_norm_layers, recalibrate_batch_norm
from pipeline.training.config import TrainConfig
from pipeline.training.dataset import TrainingStream, ValidationSet
from pipeline.training.divergence import StopOnNonFinite, TrainingDivergedError
from pipeline.training.losses import loss_for
from pipeline.training.progress import EpochProgress, Log
from pipeline.training.validation import (
    ValidationAUROC,
    binary_cross_entropy,
    predict_validation,
    predict_validation_outputs,
)

__all__ = [
    "EpochProgress",
    "FitResult",
    "FollowEpochs",
    "Log",
    "StreamBatches",
    "ValidationAUROC",
    "batch_norm_layers",
    "binary_cross_entropy",
    "compile_model",
    "fit_model",
    "predict_validation",
    "predict_validation_outputs",
    "recalibrate_batch_norm",
]


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


@dataclass
class FitResult:
    """What :func:`fit_model` did: per-epoch logs, the best epoch and its validation scores, speed."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_auroc: float = math.nan
    best_val_scores: np.ndarray | None = None
    best_val_outputs: dict[str, np.ndarray] | None = None
    """Every output of the validation rows at the best epoch: name -> ``(n, width)``."""
    own_epochs: dict[str, int] = field(default_factory=dict)
    """Output with its own trunk -> the epoch its layers were kept from (``pipeline.training.own_epochs``;
    -1: the starting weights of a fine-tune)."""
    kept_start: bool = False
    """A fine-tune kept its starting weights: no trained epoch beat them on the monitor (an output with
    a trunk of its own may still take its layers from a trained epoch: :attr:`own_epochs`)."""
    start: dict[str, float] | None = None
    """A fine-tune's validation of its starting weights (epoch 0) as epoch logs; None: not validated."""
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
        The model itself ends with the weights of its best epoch, except the layers of each output
        with a trunk of its own (``--separate-outputs``), which end with those of that output's
        best epoch (:mod:`pipeline.training.own_epochs`). A fine-tune (``config.init``) validates its
        starting weights first, as epoch -1, and ends with them when no trained epoch beats them.
    Raises
    ------
    TrainingDivergedError
        A training batch's loss, or a validation output, became NaN or infinite
        (:mod:`pipeline.training.divergence`).
    """
    steps = config.steps_per_epoch or stream.plan.batches_per_pass
    batches = StreamBatches(stream, steps, workers=config.read_workers)
    n_calibration = min(config.bn_calibration_batches, steps)

    def calibration(epoch: int) -> Iterator[dict[str, np.ndarray]]:
        """The first training batches of ``epoch`` (the same every run)."""
        return (stream.batch(epoch * steps + index)[0] for index in range(n_calibration))

    monitor = config.monitor
    if monitor is None and config.init is not None and SCORE_OUTPUT not in config.outputs:
        # a fine-tune's carried outputs do not change: the default monitor is one it trains (review:
        # the constant AUROC of a carried score stopped a theta_e fine-tune after patience epochs)
        monitor = next((name for name in config.outputs if name in stream.targets), None)
    progress = EpochProgress(log, config.epochs, stream.plan.batch_size)
    validator = ValidationAUROC(
        validation,
        checkpoint,
        patience=config.patience,
        min_delta=config.min_delta,
        calibration=calibration if n_calibration else None,
        outputs=outputs,
        targets=stream.targets,
        monitor=monitor,
        trained=config.outputs,
        validate_start=config.init is not None and config.keep_start,
        on_start=progress.log_start,
    )
    started = time.perf_counter()
    with threadpool_limits(limits=blas_threads, user_api="blas"), warnings.catch_warnings():
        # heads of a fine-tuned model that this run leaves alone have no loss, hence no gradients
        warnings.filterwarnings(
            "ignore", message="Gradients do not exist for variables", category=UserWarning
        )
        try:
            history = model.fit(
                batches,
                epochs=config.epochs,
                shuffle=False,
                verbose=0,
                callbacks=[FollowEpochs(batches), StopOnNonFinite(), validator, progress],
            )
        except TrainingDivergedError as exc:  # its advice names this run's learning rate
            raise exc.with_learning_rate(config.learning_rate) from None
    epochs = [
        {key: float(values[i]) for key, values in history.history.items()} for i in range(len(history.epoch))
    ]
    speeds = [epoch["images_per_s"] for epoch in epochs if "images_per_s" in epoch]
    return FitResult(
        history=epochs,
        best_epoch=validator.best_epoch,
        best_val_auroc=validator.best_auroc
        if validator.best_epoch >= 0 or validator.kept_start
        else math.nan,
        best_val_scores=validator.best_scores,
        best_val_outputs=validator.best_outputs,
        own_epochs=validator.own_epochs,
        kept_start=validator.kept_start,
        start=None
        if validator.start_logs is None
        else {k: float(v) for k, v in validator.start_logs.items()},
        epochs_run=len(epochs),
        stopped_early=validator.stopped_early,
        seconds=time.perf_counter() - started,
        images_per_s=float(np.median(speeds)) if speeds else math.nan,
    )
