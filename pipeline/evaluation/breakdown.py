"""Where a lens finder loses AUROC: per kind of non-lens, per arc visibility, and at matched visibility.

A whole-set AUROC mixes what a model can do with what the set holds. A set with fainter arcs, or
with more non-lenses of the hard kinds (plain ellipticals, galaxies with a blue companion), scores
lower even for a model that does exactly as well on each kind of object. These pure functions
split the AUROC along the truth catalog's columns, the way lens-search papers report completeness
as a function of lens and source properties:

- :func:`auroc_by_kind`: the lenses against each kind of non-lens alone (e.g. the simulators'
  ``kind`` column: ``elliptical``, ``ring``, ``spiral``, ...);
- :func:`auroc_by_bin`: the lenses of each bin of a visibility column (the challenges'
  ``n_pix_source``: lensed-source pixels above the 1-sigma noise) against all non-lenses;
- :func:`matched_auroc`: the AUROC after reweighting the lenses so that their distribution over
  those bins is a reference set's (importance weighting of a covariate shift; Shimodaira 2000),
  which removes the part of a drop that only comes from fainter arcs.

All take aligned 1-D arrays of labels (1 lens, 0 non-lens, -1 unknown: left out), scores and the
catalog column; objects with a non-finite score are left out. AUROC is scikit-learn's
:func:`~sklearn.metrics.roc_auc_score` (ties count half), NaN where a class is missing.

Examples
--------
>>> import numpy as np
>>> labels = np.array([1, 1, 0, 0, 0, 0])
>>> scores = np.array([0.9, 0.4, 0.5, 0.1, 0.2, 0.3])
>>> kinds = np.array(["lens", "lens", "elliptical", "spiral", "spiral", "elliptical"])
>>> {kind: round(value, 2) for kind, (n, value) in auroc_by_kind(labels, scores, kinds).items()}
{'elliptical': 0.75, 'spiral': 1.0}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

VISIBILITY_COLUMN = "n_pix_source"
"""The challenges' visibility column: lensed-source pixels above the 1-sigma noise (label rule: > 20)."""

VISIBILITY_EDGES: tuple[float, ...] = (20.0, 50.0, 100.0, 200.0, 500.0, math.inf)
"""Bin edges of :data:`VISIBILITY_COLUMN` (left-open, right-closed): from the label rule's 20 pixels up."""


def _roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    from sklearn.metrics import roc_auc_score

    if np.unique(labels).size < 2:
        return math.nan
    return float(roc_auc_score(labels, scores, sample_weight=weights))


def _known(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(
            f"labels and scores must be aligned 1-D arrays, got {labels.shape} and {scores.shape}"
        )
    return (labels >= 0) & np.isfinite(scores)


def auroc_by_kind(labels: np.ndarray, scores: np.ndarray, kinds: np.ndarray) -> dict[str, tuple[int, float]]:
    """All lenses against the non-lenses of each kind: kind -> (non-lenses of that kind, AUROC).

    Parameters
    ----------
    labels, scores, kinds
        Shape (n,): 1/0/-1 labels, scores, and each object's kind (any strings; a lens's kind is
        not used). Kinds are sorted by name.
    """
    keep = _known(labels, scores)
    labels, scores, kinds = (
        np.asarray(labels)[keep],
        np.asarray(scores, dtype=np.float64)[keep],
        np.asarray(kinds)[keep],
    )
    lens = labels == 1
    result = {}
    for kind in sorted({str(k) for k in kinds[~lens]}):
        negative = ~lens & (kinds.astype(str) == kind)
        chosen = lens | negative
        result[kind] = (int(negative.sum()), _roc_auc(labels[chosen], scores[chosen]))
    return result


def bin_index(values: np.ndarray, edges: Sequence[float] = VISIBILITY_EDGES) -> np.ndarray:
    """Bin of each value in left-open, right-closed ``(edges[i], edges[i+1]]``; -1 outside or NaN.

    >>> bin_index(np.array([10, 21, 50, 51, 1e4, np.nan])).tolist()
    [-1, 0, 0, 1, 4, -1]
    """
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left") - 1
    inside = np.isfinite(values) & (values > edges[0]) & (values <= edges[-1])
    return np.where(inside, index, -1)


def auroc_by_bin(
    labels: np.ndarray, scores: np.ndarray, values: np.ndarray, edges: Sequence[float] = VISIBILITY_EDGES
) -> list[tuple[float, float, int, float]]:
    """The lenses of each bin of ``values`` against all non-lenses: ``(low, high, n_lenses, AUROC)`` per bin.

    Lenses outside every bin (or with NaN) are left out; non-lenses are always all in.
    """
    keep = _known(labels, scores)
    labels, scores = np.asarray(labels)[keep], np.asarray(scores, dtype=np.float64)[keep]
    bins = bin_index(np.asarray(values)[keep], edges)
    lens, negative = labels == 1, labels == 0
    rows = []
    for i in range(len(edges) - 1):
        chosen = negative | (lens & (bins == i))
        rows.append(
            (
                float(edges[i]),
                float(edges[i + 1]),
                int((lens & (bins == i)).sum()),
                _roc_auc(labels[chosen], scores[chosen]),
            )
        )
    return rows


def bin_fractions(
    labels: np.ndarray, values: np.ndarray, edges: Sequence[float] = VISIBILITY_EDGES
) -> np.ndarray:
    """Fraction of the binned lenses in each bin, shape (len(edges) - 1,); zeros without any."""
    labels = np.asarray(labels)
    bins = bin_index(np.asarray(values)[labels == 1], edges)
    counts = np.bincount(bins[bins >= 0], minlength=len(edges) - 1).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def matched_auroc(
    labels: np.ndarray,
    scores: np.ndarray,
    values: np.ndarray,
    reference_fractions: np.ndarray,
    edges: Sequence[float] = VISIBILITY_EDGES,
) -> tuple[float, float]:
    """AUROC with the lenses reweighted to ``reference_fractions`` over the bins of ``values``.

    Each lens of bin ``i`` gets weight ``reference_fractions[i] / fraction of this set's lenses in
    bin i``; non-lenses weigh 1. Bins where this set has no lens cannot be reweighted: the
    reference mass they hold is reported as not covered.

    Returns
    -------
    (auroc, covered)
        The weighted AUROC (NaN without lenses in any reference bin) and the fraction of the
        reference distribution this set's lenses cover (1.0: every reference bin has lenses here).
    """
    keep = _known(labels, scores)
    labels, scores = np.asarray(labels)[keep], np.asarray(scores, dtype=np.float64)[keep]
    values = np.asarray(values)[keep]
    reference = np.asarray(reference_fractions, dtype=np.float64)
    here = bin_fractions(labels, values, edges)
    covered = float(reference[here > 0].sum())
    bins = bin_index(values, edges)
    lens = labels == 1
    ratio = np.divide(reference, here, out=np.zeros_like(reference), where=here > 0)
    weights = np.ones(labels.shape, dtype=np.float64)
    weights[lens] = np.where(bins[lens] >= 0, ratio[np.maximum(bins[lens], 0)], 0.0)
    chosen = (labels == 0) | (lens & (weights > 0))
    if not (lens & chosen).any():
        return math.nan, covered
    return _roc_auc(labels[chosen], scores[chosen], weights[chosen]), covered
