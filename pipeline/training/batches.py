"""The training stream and the validation set of a split, reading a store through one block cache.

:func:`training_batches` turns a :class:`~pipeline.training.splits.Split` and a fitted recipe into
the balanced, augmented :class:`~pipeline.training.dataset.TrainingStream` and the
:class:`~pipeline.training.dataset.ValidationSet` that :func:`pipeline.training.loop.fit_model`
consumes, with per-output targets and sample weights for declared outputs
(:mod:`pipeline.training.targets`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.preprocess.recipe import Recipe
from pipeline.store.zarr_store import open_store
from pipeline.training.config import TrainConfig
from pipeline.training.dataset import BatchPlan, BlockReader, TrainingStream, ValidationSet
from pipeline.training.grades import training_labels
from pipeline.training.splits import Split
from pipeline.training.targets import Targets

__all__ = ["SCORE_OUTPUT", "training_batches"]

SCORE_OUTPUT = "score"


def training_batches(
    store: str | Path,
    split: Split,
    recipe: Recipe,
    config: TrainConfig,
    targets: Targets | None = None,
    trained: list[str] | None = None,
    untrained: list[str] | None = None,
) -> tuple[TrainingStream, ValidationSet]:
    """The training stream and the validation set of ``split``, reading ``store`` through one block cache.

    With declared outputs (``config.outputs`` other than the default, or ``trained``: the outputs
    a fine-tuned multi-output model trains) the stream yields per-output targets and sample
    weights: ``score`` from the labels, the others from ``targets``; ``untrained`` outputs (heads
    of a fine-tuned model that this run leaves alone) get zeros with weight 0 (Keras wants a
    target for every output; they have no loss).
    """
    dataset = open_store(store, chunks=None)
    labels = training_labels(dataset, config, store)
    reader = BlockReader(dataset, list(recipe.groups), cache_blocks=config.cache_blocks, bands=recipe.groups)
    train_labels = labels[split.train_rows]
    plan = BatchPlan(
        negatives=split.train_rows[train_labels == 0],
        positives=split.train_rows[train_labels == 1],
        batch_size=config.batch_size,
        block_rows=reader.block_rows,
        seed=config.seed,
    )
    stream_targets = None
    if not config.default_outputs or trained is not None:
        targets = targets or Targets()
        ones = np.ones(labels.shape, dtype=np.float32)
        stream_targets = {
            name: (labels.astype(np.float32), ones)
            if name == SCORE_OUTPUT
            else (targets.values[name], targets.weights[name])
            for name in (trained if trained is not None else config.outputs)
        }
        zeros = np.zeros(labels.shape, dtype=np.float32)
        stream_targets |= dict.fromkeys(untrained or (), (zeros, zeros))
    stream = TrainingStream(
        reader,
        plan,
        labels,
        recipe,
        augment=config.augment,
        seed=config.seed,
        observing=config.observing,
        targets=stream_targets,
    )
    validation = ValidationSet(reader, split.val_rows, labels, recipe, batch_size=max(config.batch_size, 64))
    return stream, validation
