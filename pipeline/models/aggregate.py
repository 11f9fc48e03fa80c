"""Combine a model's predictions over ensemble members and test-time augmentations, per declared output.

Every output is predicted ``P`` times per object (one model: 1, or 8 with TTA; an ensemble of
K members: K or 8 K). The predictions of one output arrive as an array of shape
``(P, n, width)`` (:func:`~pipeline.models.outputs.output_width`) and become catalog columns:

=====================  ==========================================================================
kind                   columns, each float32 ``(n,)`` but a probability's mean (float64)
=====================  ==========================================================================
probability            ``<name>`` = mean (float64: :mod:`pipeline.models.logits`),
                       ``<name>_std`` = standard deviation over the P values
regression             the same, in the declared unit
regression_gaussian    ``<name>`` = mean of the P means mu_i, ``<name>_std`` = their standard
                       deviation, ``<name>_err`` = 1-sigma of the equal-weight mixture of the P
                       Gaussians N(mu_i, sigma_i^2), sigma_i = exp(log_sigma_i):
                       sqrt(mean(sigma_i^2 + mu_i^2) - mu^2) = sqrt(mean(sigma_i^2) + std(mu_i)^2)
                       (Lakshminarayanan et al. 2017, arXiv:1612.01474, eq. in section 2.4)
classes                ``<name>_<class>`` = mean probability of each class; the string column
                       ``<name>`` (most probable class) is added by the catalog
                       (:func:`most_probable_class`)
=====================  ==========================================================================

Examples
--------
>>> from pipeline.models.outputs import OutputSpec
>>> spec = OutputSpec("theta_e", "regression_gaussian", unit="arcsec")
>>> mu_logsigma = np.array([[[1.0, np.log(0.1)]], [[1.2, np.log(0.1)]]])  # P=2 predictions, n=1
>>> columns = aggregate_output(spec, mu_logsigma)
>>> [round(float(columns[name][0]), 4) for name in ("theta_e", "theta_e_std", "theta_e_err")]
[1.1, 0.1, 0.1414]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from pipeline.errors import BundleError
from pipeline.models.outputs import OutputSpec, output_width

__all__ = ["aggregate_output", "aggregate_outputs", "column_dtype", "most_probable_class", "numeric_columns"]


def numeric_columns(spec: OutputSpec) -> tuple[str, ...]:
    """The numeric columns :func:`aggregate_output` gives for ``spec`` (not the class-name string)."""
    if spec.kind == "regression_gaussian":
        return (spec.name, f"{spec.name}_err", f"{spec.name}_std")
    if spec.kind == "classes":
        return tuple(f"{spec.name}_{label}" for label in spec.classes)
    return (spec.name, f"{spec.name}_std")


def column_dtype(spec: OutputSpec, name: str) -> np.dtype:
    """dtype of column ``name`` of output ``spec``: float64 for a probability itself (it resolves
    the best candidates, :mod:`pipeline.models.logits`), float32 for every other numeric column.

    >>> spec = OutputSpec("score", "probability")
    >>> column_dtype(spec, "score"), column_dtype(spec, "score_std")
    (dtype('float64'), dtype('float32'))
    """
    return np.dtype(np.float64 if spec.kind == "probability" and name == spec.name else np.float32)


def aggregate_output(spec: OutputSpec, predictions: np.ndarray) -> dict[str, np.ndarray]:
    """Catalog columns of one output from its ``(P, n, width)`` predictions (see the module table).

    Raises
    ------
    BundleError
        If ``predictions`` does not have the declared width.
    """
    values = np.asarray(predictions)
    values = values.astype(np.float64 if spec.kind == "probability" else np.float32, copy=False)
    width = output_width(spec)
    if values.ndim != 3 or values.shape[2] != width:
        raise BundleError(
            f"output {spec.name!r} ({spec.kind}) must give {width} values per object, predictions have "
            f"shape {values.shape} (predictions, objects, values)"
        )
    if spec.kind in ("probability", "regression"):
        return {
            spec.name: values[..., 0].mean(axis=0).astype(column_dtype(spec, spec.name)),
            f"{spec.name}_std": values[..., 0].std(axis=0).astype(np.float32),
        }
    if spec.kind == "regression_gaussian":
        mu = values[..., 0].astype(np.float64)
        variance = np.exp(2.0 * values[..., 1].astype(np.float64))
        spread = mu.std(axis=0)
        return {
            spec.name: mu.mean(axis=0).astype(np.float32),
            f"{spec.name}_err": np.sqrt(variance.mean(axis=0) + spread**2).astype(np.float32),
            f"{spec.name}_std": spread.astype(np.float32),
        }
    means = values.mean(axis=0)
    return {f"{spec.name}_{label}": means[:, k] for k, label in enumerate(spec.classes)}


def aggregate_outputs(
    specs: Iterable[OutputSpec], predictions: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Catalog columns of every declared output, in declaration order (see :func:`aggregate_output`)."""
    columns: dict[str, np.ndarray] = {}
    for spec in specs:
        columns.update(aggregate_output(spec, predictions[spec.name]))
    return columns


def most_probable_class(spec: OutputSpec, probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
    """The most probable class name per object (``""`` where the probabilities are NaN).

    ``probabilities`` maps the ``<name>_<class>`` columns to ``(n,)`` arrays. Ties go to the
    class declared first.

    >>> spec = OutputSpec("morph", "classes", classes=("disk", "ring"))
    >>> most_probable_class(spec, {"morph_disk": np.array([0.7, 0.2, np.nan]),
    ...                            "morph_ring": np.array([0.3, 0.8, np.nan])}).tolist()
    ['disk', 'ring', '']
    """
    stacked = np.stack([np.asarray(probabilities[f"{spec.name}_{label}"]) for label in spec.classes], axis=1)
    known = np.isfinite(stacked).all(axis=1)
    best = np.argmax(np.where(np.isfinite(stacked), stacked, -np.inf), axis=1)
    names = np.asarray(spec.classes, dtype=object)[best]
    names[~known] = ""
    return names
