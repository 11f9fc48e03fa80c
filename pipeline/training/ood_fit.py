"""The ``ood_score`` statistics a training run leaves in its bundle (:mod:`pipeline.models.features`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import LenshuntError
from pipeline.training.splits import Split


def fit_bundle_feature_stats(
    out: Path,
    store: str | Path,
    split: Split,
    seed: int,
    log: Callable[[str], None],
    start: str | None = None,
) -> None:
    """Fit and save the bundle's feature statistics on up to 3000 training-split objects; the
    ``ood_score`` threshold is set on the validation split (objects the network did not train on).

    A fine-tune that kept its ``start`` bundle's weights keeps its statistics too (new-user trial:
    refitted on the 240/60 objects of a small store, they changed which objects were flagged
    UNLIKE_TRAINING by the very same network).
    """
    from pipeline.models.bundle import load_bundle
    from pipeline.models.features import (
        FEW_CALIBRATION_OBJECTS,
        feature_layer,
        fit_feature_stats,
        has_feature_stats,
        load_feature_stats,
        model_text,
        save_feature_stats,
    )

    tic = time.perf_counter()
    if start is not None and has_feature_stats(load_bundle(start)) and _same_weights(start, out):
        stats = load_feature_stats(start)
        feature_layer(load_bundle(out).model, stats.layer)  # the same network: its layer is there
        save_feature_stats(out, stats)
        fitted_on = stats.store if Path(stats.store).exists() else "its training store"  # (trial: a dev path)
        log(
            f"feature statistics (ood_score) kept from {start}, whose weights this bundle kept "
            f"({stats.n_fit} objects of {fitted_on})"
        )
        return
    try:
        stats = fit_feature_stats(
            load_bundle(out), store, seed=seed, rows=split.train_rows, calibration_rows=split.val_rows
        )
    except LenshuntError as exc:  # a bundle without statistics still scores, without ood_score
        log(f"no feature statistics (ood_score) for this bundle: {exc}")
        return
    save_feature_stats(out, stats)
    log(
        f"feature statistics ({stats.layer}, {stats.mean.size} features, {model_text(stats.card_entry(''))}) "
        f"fitted on {stats.n_fit} "
        f"training objects, threshold on {stats.n_calibration} validation objects, "
        f"in {time.perf_counter() - tic:.1f} s"
    )
    if stats.n_calibration < FEW_CALIBRATION_OBJECTS:
        log(
            f"WARNING: the ood_score threshold (the {stats.quantile:g} quantile) was set on only "
            f"{stats.n_calibration} validation objects: which objects are flagged UNLIKE_TRAINING is "
            f"uncertain; a store of a few thousand objects sets it well"
        )


def _same_weights(start: str | Path, out: Path) -> bool:
    """Whether the bundles at ``start`` and ``out`` hold the very same weights (review: a fine-tune that
    kept its start may still keep a separate output's trunk from a trained epoch)."""
    import numpy as np

    from pipeline.models.bundle import load_bundle

    before, after = load_bundle(start).model.get_weights(), load_bundle(out).model.get_weights()
    return len(before) == len(after) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )
