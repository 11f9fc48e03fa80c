"""The 95% interval of a visibility-matched AUROC drop, by a stratified bootstrap of both sets.

:func:`pipeline.evaluation.breakdown.matched_auroc` reweights a set's lenses to a reference's shares
over the bins of arc visibility; a drop is the reference's matched AUROC less the set's. Both the
reference's shares and each set's own shares are estimates from finite sets, so each resample
resamples both sets (lenses and non-lenses apart, as :func:`pipeline.evaluation.bootstrap.resampled_metrics`
does), takes the reference's shares from its resample, reweights the set's resampled lenses to
them, and computes both matched AUROCs. Percentile intervals, as for every other interval
(:mod:`pipeline.evaluation.bootstrap`).

The weighted AUROC of each resample is computed here, vectorised over a batch of resamples, rather
than by :func:`sklearn.metrics.roc_auc_score` with ``sample_weight`` on each resampled set: for two
sets of 1,000 objects and 1,000 resamples (a domain of the shipped check) that took 6.1 s, this
0.10 s, 63x less (``bench/bench_matched_draws.py``, 2 cores, bench/RESULTS.md), for each domain
of every check. Each resample's value equals scikit-learn's on the resampled set (the bench and
``tests/test_matched_draws.py`` compare them resample by resample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.evaluation.bootstrap import BATCH_ELEMENTS, MIN_PER_CLASS, RESAMPLES, SEED, resample_counts
from pipeline.evaluation.breakdown import VISIBILITY_EDGES, bin_index


@dataclass(frozen=True)
class MatchSet:
    """One set of a matched comparison: labels (1 lens, 0 non-lens, -1 unknown), scores (NaN: not
    scored) and each object's arc visibility (``n_pix_source``; NaN where unknown), each shape (n,)."""

    labels: np.ndarray
    scores: np.ndarray
    values: np.ndarray


def matched_drop_draws(
    reference: MatchSet,
    other: MatchSet,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    edges: Sequence[float] = VISIBILITY_EDGES,
) -> np.ndarray | None:
    """Draws of the reference's matched AUROC less ``other``'s, the lenses of ``other`` reweighted to
    the reference's shares over the visibility bins of each resample.

    Parameters
    ----------
    reference, other : MatchSet
        The two (independent) sets. Objects of unknown label or without a score are left out.
    resamples : int
        How many resamples.
    seed : int
        The reference is resampled with ``seed``, ``other`` with ``seed + 1``: comparing several sets
        with one reference and one seed pairs the same reference resamples with each, so the largest
        drop per draw is the largest of one bootstrap world's drops.
    edges : sequence of float
        The visibility bins' edges (:data:`~pipeline.evaluation.breakdown.VISIBILITY_EDGES`).

    Returns
    -------
    numpy.ndarray or None
        Shape (resamples,), NaN where a resample leaves either AUROC undefined; None where either set
        has fewer than :data:`~pipeline.evaluation.bootstrap.MIN_PER_CLASS` binned lenses or
        non-lenses (no interval).
    """
    first = _Matched(reference, edges)
    second = _Matched(other, edges)
    if min(first.n_lenses, first.n_others, second.n_lenses, second.n_others) < MIN_PER_CLASS:
        return None
    ref_rng, other_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    size = max(first.n_lenses + first.n_others, second.n_lenses + second.n_others)
    batch = max(1, min(resamples, BATCH_ELEMENTS // size))
    parts = []
    for start in range(0, resamples, batch):
        count = min(batch, resamples - start)
        ref_auroc, shares = first.draw(ref_rng, count, None)
        other_auroc, _ = second.draw(other_rng, count, shares)
        parts.append(ref_auroc - other_auroc)
    return np.concatenate(parts)


class _Matched:
    """A set's binned lenses and its non-lenses, each in descending score order, and where each lens
    falls among the non-lenses (lenses outside every bin weigh 0 in a matched AUROC: left out)."""

    def __init__(self, data: MatchSet, edges: Sequence[float]) -> None:
        labels, scores = np.asarray(data.labels), np.asarray(data.scores, dtype=np.float64)
        values = np.asarray(data.values, dtype=np.float64)
        if not labels.shape == scores.shape == values.shape or labels.ndim != 1:
            raise ValueError(f"labels {labels.shape}, scores {scores.shape} and values {values.shape} differ")
        known = np.isfinite(scores)
        bins = bin_index(values, edges)
        lens = known & (labels == 1) & (bins >= 0)
        order = np.argsort(-scores[lens], kind="stable")
        self.lens_scores, self.lens_bins = scores[lens][order], bins[lens][order]
        self.other_scores = np.sort(scores[known & (labels == 0)])[::-1]
        self.n_lenses, self.n_others = self.lens_scores.size, self.other_scores.size
        self.n_bins = len(edges) - 1
        self.one_hot = np.eye(self.n_bins)[self.lens_bins] if self.n_lenses else np.zeros((0, self.n_bins))
        self.reached = np.searchsorted(-self.other_scores, -self.lens_scores, side="right")
        self.above = np.searchsorted(-self.other_scores, -self.lens_scores, side="left")

    def draw(
        self, rng: np.random.Generator, count: int, target: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``count`` resamples' matched AUROC (shape (count,)) and lens shares per bin (count, bins),
        the lenses reweighted to ``target`` (count, bins): None, to each resample's own shares."""
        lens_counts = resample_counts(rng, self.n_lenses, count)
        return self.of_counts(lens_counts, resample_counts(rng, self.n_others, count), target)

    def of_counts(
        self, lens_counts: np.ndarray, other_counts: np.ndarray, target: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`draw`, of sets that hold each binned lens (non-lens), in descending score order,
        as often as a row of ``lens_counts`` (``other_counts``) says."""
        lens_counts = np.asarray(lens_counts, dtype=np.float64)
        count = lens_counts.shape[0]
        per_bin = lens_counts @ self.one_hot
        shares = per_bin / per_bin.sum(axis=1, keepdims=True)
        if target is None:
            weights = lens_counts  # reweighted to its own shares: every binned lens weighs 1
        else:
            ratio = np.divide(target, shares, out=np.zeros_like(target), where=shares > 0)
            weights = lens_counts * ratio[:, self.lens_bins]
        others = np.zeros((count, self.n_others + 1), dtype=np.int64)
        np.cumsum(other_counts, axis=1, out=others[:, 1:])
        # each lens weighs the non-lenses at or above it and those strictly above (half a tie each)
        tied_or_above = (weights * (others[:, self.reached] + others[:, self.above])).sum(axis=1)
        n_pos, n_neg = weights.sum(axis=1), others[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            auroc = np.where((n_pos > 0) & (n_neg > 0), 1 - tied_or_above / (2 * n_pos * n_neg), np.nan)
        return auroc, shares
