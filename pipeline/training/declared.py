"""Training declared outputs: targets of a store, regression heads' start, their metrics and card note.

The pieces :mod:`pipeline.training.run`, :mod:`~pipeline.training.loop` and
:mod:`~pipeline.training.domains` share for outputs other than the lens probability (see
:mod:`pipeline.training.targets` for the targets themselves). NumPy only; no Keras import.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.evaluation.regression import RegressionMetrics, regression_metrics
from pipeline.models.outputs import OutputSpec
from pipeline.store.zarr_store import open_store, read_attributes, store_layout
from pipeline.training.targets import PRESETS, Targets, load_targets

LOG_SIGMA_MIN = -7.0
"""Smallest log(sigma) a Gaussian head may predict (sigma about 1e-3 of the unit)."""
LOG_SIGMA_MAX = 7.0
"""Largest log(sigma) (sigma about 1e3 of the unit)."""


def store_targets(store: str | Path, output_targets, catalog: str | None = None) -> Targets:
    """Targets of the catalog-trained ``output_targets`` for every row of ``store`` (:func:`load_targets`).

    The truth catalog is ``catalog`` or the one of the set the store was ingested from.
    """
    if all(target.from_label for target in output_targets):
        return Targets()
    attributes = read_attributes(store)
    dataset = open_store(store, chunks=None)
    return load_targets(
        output_targets,
        dataset["object_id"].values,
        dataset["label"].values,
        store_layout(attributes),
        attributes.source,
        catalog,
    )


def start_regression_heads(model, specs, targets: Targets, train_rows: np.ndarray) -> None:
    """Start each regression head's bias at its training targets' median (and log spread for sigma).

    Targets in physical units (magnitudes near 20) are otherwise far from a zero-initialised
    output, and Adam would spend hundreds of steps only moving the bias.
    """
    for spec in specs:
        if spec.name not in targets.values or spec.kind not in ("regression", "regression_gaussian"):
            continue
        keep = train_rows[targets.weights[spec.name][train_rows] > 0]
        if not keep.size:
            continue
        values = targets.values[spec.name][keep].astype(np.float64)
        layer = model.get_layer(spec.name)
        kernel, bias = layer.get_weights()
        bias[0] = np.median(values)
        if spec.kind == "regression_gaussian":
            bias[1] = math.log(max(float(np.std(values)), 1e-3))
        layer.set_weights([kernel, bias])


def output_metrics(
    spec, predicted: np.ndarray, values: np.ndarray, weights: np.ndarray, prefix: str
) -> dict[str, float]:
    """Card entries ``<prefix>_<name>_<metric>`` of one regression output on the rows with a target.

    :func:`~pipeline.evaluation.regression.regression_metrics` (MSE, bias, scatter = standard
    deviation, NMAD, MSE of predicting the mean, and for a Gaussian head the fractions within 1
    and 2 sigma); nothing for other kinds.
    """
    if spec.kind not in ("regression", "regression_gaussian"):
        return {}
    keep = np.asarray(weights) > 0
    predicted = np.asarray(predicted, dtype=np.float64)
    if spec.kind == "regression_gaussian":
        mean, sigma = gaussian_mean_sigma(predicted)
        result = regression_metrics(mean[keep], values[keep], sigma[keep])
    else:
        result = regression_metrics(predicted[:, 0][keep], values[keep])
    return result.as_dict(f"{prefix}_{spec.name}_")


def outputs_note(
    specs,
    targets: Targets,
    detached: tuple[str, ...] = (),
    separate: tuple[str, ...] = (),
    trained: list[str] | None = None,
) -> str:
    """A sentence for the card on the declared outputs and their targets ('' for the default).

    ``trained`` names the outputs a fine-tuning run trained (None: every declared output); the
    others were carried from the init bundle and are said to be.
    """
    if specs is None:
        return ""
    heads = ", ".join(f"{spec.name} ({spec.kind}{', ' + spec.unit if spec.unit else ''})" for spec in specs)
    note = f" Outputs: {heads}."
    if trained is not None:
        note += f" Trained by this run: {', '.join(trained)}."
        specs = [spec for spec in specs if spec.name in trained]
    if detached:
        note += f" Detached heads (trained on frozen shared features): {', '.join(detached)}."
    if separate:
        note += f" Outputs with their own trunk: {', '.join(separate)}."
    if targets.notes:
        note += f" Targets from {targets.catalog.name}: " + "; ".join(targets.notes) + "."
    if any(spec.kind == "regression_gaussian" for spec in specs):
        note += (
            " Gaussian heads predict [mean, log sigma] trained on the Gaussian negative log-likelihood "
            "(aleatoric uncertainty); the val_<name>_within1/_within2 metrics are the fractions of "
            "validation objects within 1 and 2 predicted sigma (0.683 and 0.954 when calibrated); "
            "scatter is the standard deviation of pred - true, nmad its robust counterpart."
        )
    return note


def gaussian_mean_sigma(predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sigma ``(n,)`` of a Gaussian head's ``(n, 2)`` ``[mean, log_sigma]`` (clipped)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    return predicted[:, 0], np.exp(np.clip(predicted[:, 1], LOG_SIGMA_MIN, LOG_SIGMA_MAX))


def regression_logs(
    spec: OutputSpec, predicted: np.ndarray, values: np.ndarray, weights: np.ndarray
) -> dict[str, float]:
    """Validation numbers of one regression output on the rows with positive weight.

    ``val_<name>_mse`` always; for a Gaussian head also ``_nll`` (mean negative log-likelihood)
    and ``_within1`` / ``_within2`` (fractions within 1 and 2 predicted sigma). Empty for other kinds.
    """
    if spec.kind not in ("regression", "regression_gaussian"):
        return {}
    keep = np.asarray(weights) > 0
    if spec.kind == "regression_gaussian":
        mean, sigma = gaussian_mean_sigma(predicted)
    else:
        mean, sigma = np.asarray(predicted, dtype=np.float64)[:, 0], None
    metrics = regression_metrics(mean[keep], values[keep], None if sigma is None else sigma[keep])
    logs = {f"val_{spec.name}_mse": metrics.mse}
    if sigma is not None:
        z = (values[keep] - mean[keep]) / sigma[keep]
        nll = 0.5 * z**2 + np.log(sigma[keep]) + 0.5 * math.log(2 * math.pi)
        logs |= {
            f"val_{spec.name}_nll": float(np.mean(nll)) if nll.size else math.nan,
            f"val_{spec.name}_within1": metrics.within1,
            f"val_{spec.name}_within2": metrics.within2,
        }
    return logs


def regression_on_store(bundle: Any, store: str | Path, scored: Any) -> dict[str, RegressionMetrics]:
    """Metrics of each regression output of ``bundle`` against ``store``'s truth (objects with a target).

    ``scored`` is the bundle's :class:`~pipeline.training.heldout.StoreScores` on ``store`` (its
    ``outputs`` columns: ``(n,)`` values and, for Gaussian heads, ``<name>_err``).

    Raises
    ------
    TargetError
        If the store's truth catalog is missing or lacks an output's column.
    """
    specs = [spec for spec in bundle.outputs if spec.kind in ("regression", "regression_gaussian")]
    presets = [PRESETS[spec.name] for spec in specs if spec.name in PRESETS]
    if not presets:
        return {}
    targets = store_targets(store, presets)
    results = {}
    for target in presets:
        name = target.spec.name
        keep = targets.weights[name] > 0
        sigma = scored.outputs.get(f"{name}_err")
        results[name] = regression_metrics(
            scored.outputs[name][keep], targets.values[name][keep], None if sigma is None else sigma[keep]
        )
    return results


def measure_carried(
    store: str | Path, target_catalog: str | None, spec: OutputSpec, predicted: np.ndarray, rows: np.ndarray
) -> tuple[dict[str, float], str]:
    """Validation metrics of a carried output against the truth catalog, or ``({}, why not)``."""
    from pipeline.errors import LenshuntError

    preset = PRESETS.get(spec.name)
    if preset is None or preset.from_label:
        return {}, f"{spec.name} has no catalog target to measure it against"
    try:
        carried = store_targets(store, [preset], target_catalog)
    except LenshuntError as exc:
        return {}, f"its truth catalog could not be read: {exc}"
    if spec.name not in carried.values:
        return {}, f"the truth catalog has no {spec.name} targets"
    values, weights = carried.values[spec.name], carried.weights[spec.name]
    return output_metrics(spec, predicted, values[rows], weights[rows], "val"), ""
