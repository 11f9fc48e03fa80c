"""Training that diverges (a NaN or infinite loss or validation output) ends in one TrainingError."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline.errors import LenshuntError
from pipeline.training import TrainConfig, TrainingError
from pipeline.training.divergence import StopOnNonFinite, TrainingDivergedError
from pipeline.training.validation import ValidationAUROC


@pytest.mark.parametrize(
    "options",
    [
        {"learning_rate": math.inf},
        {"val_fraction": math.inf},
        {"softening_sigma": math.inf},
        {"output_weights": {"score": math.inf}},
        {"clip_sigma": (1.0, math.inf)},
    ],
)
def test_infinite_float_options_are_refused_like_nan(options):
    """Trial: ``--learning-rate inf`` passed the check of > 0 and ended in a traceback."""
    with pytest.raises(TrainingError, match="finite number"):
        TrainConfig.from_options(**options)


def _model() -> keras.Model:
    inputs = keras.Input((4,), name="image")
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(inputs)
    return keras.Model(inputs, outputs)


def test_a_nan_loss_stops_training_with_the_epoch_and_step():
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    x = np.ones((8, 4), np.float32)
    x[5] = np.nan  # the third batch of two holds a NaN
    y = np.array([0, 1] * 4, np.float32)
    with pytest.raises(TrainingDivergedError) as caught:
        model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, callbacks=[StopOnNonFinite()])
    error = caught.value
    assert isinstance(error, LenshuntError)
    assert (error.epoch, error.step) == (0, 2)
    message = str(error.with_learning_rate(0.5))
    assert message.startswith("training diverged: the loss became NaN at epoch 1 (step 3)")
    assert "--learning-rate (this run: 0.5)" in message


class _Validation:
    """What ValidationAUROC reads of a ValidationSet: its batches, labels and rows."""

    def __init__(self, n: int) -> None:
        self.labels = np.array([0, 1] * (n // 2), np.float64)
        self.rows = np.arange(n)
        self.x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)

    def batches(self):
        yield self.x, len(self.x)


def test_nan_validation_scores_end_training_as_divergence_not_a_bug():
    """Trial: NaN scores reached the AUROC, whose ValueError the CLI labelled a bug."""
    model = _model()
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    validator = ValidationAUROC(_Validation(12), None, patience=2)
    validator.set_model(model)
    validator.on_train_begin()
    with pytest.raises(TrainingDivergedError, match="the validation scores became NaN at epoch 4;"):
        validator.on_epoch_end(3, {})


OPTIONS = ["--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "8", "--downsample", "2"]
OPTIONS += ["--learning-rate", "1e38"]


def test_a_diverging_run_ends_in_one_line_and_leaves_no_bundle(tmp_path, dask_client):
    """Trial: ``lenshunt train ... --learning-rate 1e38`` ended in a traceback labelled a bug."""
    from test_training import ring_store

    store = ring_store(tmp_path / "set", dask_client)
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "train", str(store), str(tmp_path / "model"), *OPTIONS],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(
        r"lenshunt train: error: training diverged: the loss became (NaN|infinite) at epoch 1 ", last
    )
    assert "lower --learning-rate (this run: 1e+38)" in last
    assert "any option that scales the inputs or targets (--softening-sigma" in last  # trial: lr alone
    assert not (tmp_path / "model").exists()  # nothing half-written
