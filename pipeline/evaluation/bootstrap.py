"""95% confidence intervals of the metrics of :func:`pipeline.evaluation.metrics.evaluate`, by bootstrap.

A stratified percentile bootstrap: percentile intervals as in Efron & Tibshirani 1993, *An
Introduction to the Bootstrap*, ch. 13, each class resampled apart as in their two-sample problem
(ch. 8). Each resample draws, with replacement, as many lenses from the labelled lenses and as many
non-lenses from the labelled non-lenses as the set holds, so every resample keeps the set's class
balance; its metrics are computed exactly as :func:`~pipeline.evaluation.metrics.evaluate` computes
them on the set (a lens left unscored is resampled like any other and counts as missed in recall,
F-beta, TPR0 and TPR10; AUROC and AP rank the scored objects; tied scores are one threshold); the
interval is the 2.5th and 97.5th percentiles of the resamples' values. Objects of unknown label are
left out, as there. The intervals are of the sampling noise of a set of this size drawn from the same
population: they say nothing of how far another population (a shifted domain) lies.

Resampling with replacement is drawing a count per object (how often it is drawn); every metric is
then a sum over the scored lenses of cumulative counts of lenses and non-lenses, vectorised over a
batch of resamples. :mod:`sklearn.metrics` computes the point values; per resample it costs 0.08 s
on 100,000 objects (roc_auc_score 0.040 s, average_precision_score 0.024 s,
precision_recall_fscore_support 0.013 s, measured on 2 cores), 80 s for 1000 resamples: hence these
sums, which equal scikit-learn's on each resampled set (``tests/test_bootstrap.py`` compares them
resample by resample). :data:`RESAMPLES` resamples take 0.02 s on 1,000 objects, 0.13 s on 10,000,
and on 100,000 1.0 s with 1% lenses, 1.5 s with 10% and 2.8 s with half (CPU time of one core,
numpy 2.4; the point values take 0.09 s); a bootstrap through scikit-learn would take 80 s.

TPR0 and TPR10 hang on the few highest-scored non-lenses, each of which a resample leaves out about
a third of the time (then more lenses come first): their intervals are skewed upwards and rougher
than the others (the trial's in-domain TPR0 0.753 [0.70, 0.87]).

Few objects give rough intervals (percentile intervals run narrow, and a metric takes few distinct
values): with fewer than :data:`MIN_PER_CLASS` lenses or non-lenses there are none, and below
:data:`ROUGH_BELOW` the metrics' notes say so (:func:`rough_note`).

Examples
--------
>>> labels = np.repeat([1, 0], 50)
>>> scores = np.r_[np.linspace(0.3, 1.0, 50), np.linspace(0.0, 0.7, 50)]
>>> draws = resampled_metrics(labels, scores, resamples=200)
>>> low, high = percentile_interval(draws["auroc"])
>>> bool(low < 0.832 < high), round(high - low, 2)  # AUROC 0.832 of 50 lenses and 50 non-lenses
(True, 0.14)
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000
"""Resamples behind each interval: its ends move by 2-3% of its width from one seed to another (standard
deviation over 30 seeds, AUROC of 150 lenses and 450 non-lenses; 4% with 500 resamples)."""
SEED = 0
"""The default seed: the same set gives the same intervals."""
LEVEL = 0.95
"""The intervals' confidence level."""
MIN_PER_CLASS = 5
"""Fewer labelled lenses (or non-lenses) than this: no interval."""
ROUGH_BELOW = 20
"""Fewer labelled lenses (or non-lenses) than this: the notes say the intervals are rough."""
MIN_DEFINED = 0.5
"""A metric undefined in more than this share of the resamples (nothing selected, say) has no interval."""
INTERVAL_METRICS = ("auroc", "average_precision", "precision", "recall", "f_beta", "tpr0", "tpr10")
"""The metrics that get an interval, as :class:`~pipeline.evaluation.metrics.Metrics` names them."""
BATCH_ELEMENTS = 4_000_000
"""Counts drawn at once (resamples x objects): bounds the memory to some 100 MB."""


def resampled_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    beta: float = 1.0,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, np.ndarray]:
    """Each metric of :func:`~pipeline.evaluation.metrics.evaluate` on stratified bootstrap resamples.

    Parameters
    ----------
    labels : numpy.ndarray
        1 lens, 0 non-lens, -1 unknown (left out); shape (n,).
    scores : numpy.ndarray
        Scores, NaN where not scored; shape (n,).
    threshold, beta : float
        As :func:`~pipeline.evaluation.metrics.evaluate` takes them (precision, recall, F-beta).
    resamples : int
        How many resamples.
    seed : int
        Seed of :func:`numpy.random.default_rng`: the same arguments give the same values.

    Returns
    -------
    dict of str to numpy.ndarray
        :data:`INTERVAL_METRICS` name -> its value on each resample, shape (resamples,); NaN where
        the resample leaves it undefined (as ``evaluate`` leaves it None). Empty (no resample) where
        the set has fewer than :data:`MIN_PER_CLASS` labelled lenses or non-lenses.
    """
    labels, scores = _checked(labels, scores)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    strata = _Strata(labels, scores)
    n_lenses, n_others = strata.lenses.size, strata.others.size
    if min(n_lenses, n_others) < MIN_PER_CLASS:
        return {}
    rng = np.random.default_rng(seed)
    batch = max(1, min(resamples, BATCH_ELEMENTS // (n_lenses + n_others)))
    parts = []
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        parts.append(
            strata.metrics(
                resample_counts(rng, n_lenses, size), resample_counts(rng, n_others, size), threshold, beta
            )
        )
    return {name: np.concatenate([part[name] for part in parts]) for name in INTERVAL_METRICS}


def metrics_of_counts(
    labels: np.ndarray, scores: np.ndarray, counts: np.ndarray, threshold: float = 0.5, beta: float = 1.0
) -> dict[str, np.ndarray]:
    """The metrics of sets that hold each object ``counts[i, j]`` times, as ``evaluate`` computes them on
    ``np.repeat(labels, counts[i])`` and ``np.repeat(scores, counts[i])`` (how the resamples' are).

    Parameters
    ----------
    labels, scores : numpy.ndarray
        As :func:`resampled_metrics` takes them; shape (n,).
    counts : numpy.ndarray
        Non-negative integers, shape (sets, n): how often each object is in each set.
    threshold, beta : float
        As :func:`~pipeline.evaluation.metrics.evaluate` takes them.

    Returns
    -------
    dict of str to numpy.ndarray
        :data:`INTERVAL_METRICS` name -> its value on each set, shape (sets,); NaN where undefined.
    """
    labels, scores = _checked(labels, scores)
    strata = _Strata(labels, scores)
    counts = np.atleast_2d(counts)
    return strata.metrics(counts[:, strata.lenses], counts[:, strata.others], threshold, beta)


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The central ``level`` percentile interval of ``draws`` (NaN: undefined, left out); None where
    more than :data:`MIN_DEFINED` of them are undefined, or there are none.

    >>> [round(end, 3) for end in percentile_interval(np.arange(101) / 100.0)]
    [0.025, 0.975]
    >>> percentile_interval(np.array([np.nan, np.nan, 0.5])) is None
    True
    """
    draws = np.asarray(draws, dtype=np.float64)
    defined = draws[~np.isnan(draws)]
    if not draws.size or defined.size < MIN_DEFINED * draws.size:
        return None
    tail = 50 * (1 - level)
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def intervals(draws: dict[str, np.ndarray], level: float = LEVEL) -> dict[str, tuple[float, float] | None]:
    """:func:`percentile_interval` of each metric of :func:`resampled_metrics` (None without draws)."""
    return {name: percentile_interval(draws[name], level) if draws else None for name in INTERVAL_METRICS}


def difference_draws(reference: np.ndarray, other: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Draws of ``reference - other`` for two independent sets, from each set's resampled values.

    The sets being independent, a draw of the difference pairs a draw of each at random: ``other``'s
    values in a seeded random order (resamples drawn with one seed from sets of one size would
    otherwise pair like resamples, and their differences run narrow). NaN where either value is.

    Parameters
    ----------
    reference, other : numpy.ndarray
        Each set's values on its resamples (a metric of :func:`resampled_metrics`), of one length.
    seed : int
        Seed of the pairing: give each set compared with one reference a seed of its own.

    Examples
    --------
    >>> difference_draws(np.array([0.9, 0.8]), np.array([0.5, 0.5])).round(3).tolist()
    [0.4, 0.3]
    """
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"draws of {reference.shape} and {other.shape} values cannot be paired")
    return reference - other[np.random.default_rng(seed).permutation(other.size)]


def paired_difference_draws(
    labels: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    metric: str = "auroc",
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> np.ndarray:
    """Draws of ``metric(after) - metric(before)`` for two scorings of the same objects (a paired bootstrap).

    Each resample draws the objects once, stratified by class as :func:`resampled_metrics` does, and
    computes the metric of both scorings on that one resample: the difference keeps the pairing, so the
    objects both scorings find easy or hard do not widen its interval (Efron & Tibshirani 1993, *An
    Introduction to the Bootstrap*, ch. 8, a sample of pairs; :func:`difference_draws` is for two
    independent sets instead).

    Parameters
    ----------
    labels : numpy.ndarray
        1 lens, 0 non-lens, -1 unknown (left out); shape (n,).
    before, after : numpy.ndarray
        The two scorings of the objects, NaN where not scored; shape (n,) each.
    metric : str
        One of :data:`INTERVAL_METRICS`.
    resamples, seed : int
        As :func:`resampled_metrics`.

    Returns
    -------
    numpy.ndarray
        Shape (resamples,), NaN where either value is undefined; empty where the set has fewer than
        :data:`MIN_PER_CLASS` labelled lenses or non-lenses.

    Raises
    ------
    ValueError
        If the arrays differ in shape, ``metric`` is not one of :data:`INTERVAL_METRICS` or
        ``resamples`` is below 1.

    Examples
    --------
    >>> labels = np.repeat([1, 0], 50)
    >>> before = np.r_[np.linspace(0.3, 1.0, 50), np.linspace(0.0, 0.7, 50)]
    >>> draws = paired_difference_draws(labels, before, before + 0.0)
    >>> float(np.abs(draws).max())  # the same scores: no difference on any resample
    0.0
    """
    labels, before = _checked(labels, before)
    _, after = _checked(labels, after)
    if metric not in INTERVAL_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {INTERVAL_METRICS}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    lenses, others = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if min(lenses.size, others.size) < MIN_PER_CLASS:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    batch = max(1, min(resamples, BATCH_ELEMENTS // labels.size))
    parts = []
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        counts = np.zeros((size, labels.size), dtype=np.int64)  # unknown labels: never drawn
        counts[:, lenses] = resample_counts(rng, lenses.size, size)
        counts[:, others] = resample_counts(rng, others.size, size)
        first, second = (metrics_of_counts(labels, scores, counts)[metric] for scores in (before, after))
        parts.append(second - first)
    return np.concatenate(parts)


def rough_note(n_pos: int, n_neg: int) -> str | None:
    """The note on intervals from few objects: none under :data:`MIN_PER_CLASS` of a class, rough under
    :data:`ROUGH_BELOW`; None where there are enough of both.

    >>> rough_note(3, 500)
    'no 95% intervals: only 3 labelled lenses (a bootstrap needs at least 5 lenses and 5 non-lenses)'
    >>> rough_note(12, 0).split(" (")[0]
    'no 95% intervals: only 12 labelled lenses and no labelled non-lenses'
    >>> rough_note(12, 500)
    'only 12 labelled lenses: the 95% intervals are rough (a percentile bootstrap of so few runs narrow)'
    >>> rough_note(500, 500) is None
    True
    >>> rough_note(1, 1).split(" (")[0]  # trial: "only 1 labelled lenses"
    'no 95% intervals: only 1 labelled lens and 1 labelled non-lens'
    >>> rough_note(1, 0).split(" (")[0]
    'no 95% intervals: only 1 labelled lens and no labelled non-lenses'
    """
    from pipeline.evaluation.formats import count_noun

    counted = (
        (n_pos, "labelled lens", "labelled lenses"),
        (n_neg, "labelled non-lens", "labelled non-lenses"),
    )
    few = " and ".join(
        count_noun(n, one, many) if n else f"no {many}" for n, one, many in counted if n < ROUGH_BELOW
    )
    if not few:
        return None
    few = f"only {few}" if few[0].isdigit() else few
    if min(n_pos, n_neg) < MIN_PER_CLASS:
        needed = f"at least {count_noun(MIN_PER_CLASS, 'lens', 'lenses')} and "
        needed += count_noun(MIN_PER_CLASS, "non-lens", "non-lenses")
        return f"no 95% intervals: {few} (a bootstrap needs {needed})"
    return f"{few}: the 95% intervals are rough (a percentile bootstrap of so few runs narrow)"


def _checked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-d and of one length")
    return labels, scores


def resample_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """How often each of ``n`` objects is drawn in each of ``size`` resamples of ``n`` with replacement:
    shape (size, n), each row summing to ``n``."""
    drawn = rng.integers(0, n, (size, n))
    drawn += (np.arange(size) * n)[:, None]
    return np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)


class _Strata:
    """The lenses and the non-lenses of a set, each scored ones first in descending score order, and
    where each lens and each threshold falls among them.

    A resample is a count per object of each stratum (in this order); every metric is a sum over the
    scored lenses of cumulative counts, so its cost is one pass over the objects and a few over the
    lenses per resample (rather than over every distinct threshold: 3x faster on 100,000 objects).
    """

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        from pipeline.evaluation.metrics import TPR10_FALSE_POSITIVES  # that module imports this one

        self.tpr10_allowed = TPR10_FALSE_POSITIVES

        def stratum(label: int) -> tuple[np.ndarray, np.ndarray]:
            members = np.flatnonzero(labels == label)
            order = np.argsort(-scores[members], kind="stable")  # NaN (unscored) last
            ordered = members[order]
            return ordered, scores[ordered][~np.isnan(scores[ordered])]

        self.lenses, lens = stratum(1)
        self.others, other = stratum(0)
        self.n_lens_scored = lens.size
        # per scored lens: lenses at or above its score (its tie group's end), non-lenses at or above, above
        self.lenses_reached = np.searchsorted(-lens, -lens, side="right")
        self.others_reached = np.searchsorted(-other, -lens, side="right")
        self.others_above = np.searchsorted(-other, -lens, side="left")
        self.thresholds = np.unique(np.r_[lens, other])[::-1]  # the distinct scores, descending
        self.lens_at = np.searchsorted(-lens, -self.thresholds, side="right")  # reached by each
        self.other_at = np.searchsorted(-other, -self.thresholds, side="right")
        self.lens_scores, self.other_scores = lens, other

    def metrics(
        self, lens_counts: np.ndarray, other_counts: np.ndarray, threshold: float, beta: float
    ) -> dict[str, np.ndarray]:
        """The metrics of each resample, NaN where undefined: a row of ``lens_counts`` (of
        ``other_counts``) counts each lens (non-lens) in the stratum's order."""
        drawn = lens_counts[:, : self.n_lens_scored]
        lenses = _cumulative(drawn)  # (resamples, scored lenses + 1): lenses drawn among the top j
        others = _cumulative(other_counts[:, : self.other_scores.size])
        n_pos, n_neg = lenses[:, -1].astype(np.float64), others[:, -1].astype(np.float64)
        n_lenses = n_pos + lens_counts[:, self.n_lens_scored :].sum(axis=1)  # unscored ones: missed
        reached = others[:, self.others_reached]
        with np.errstate(divide="ignore", invalid="ignore"):
            # each lens drawn scores the non-lenses below it and half of those tied with it
            tied_or_above = (drawn * (reached + others[:, self.others_above])).sum(axis=1)
            auroc = np.where((n_pos > 0) & (n_neg > 0), 1 - tied_or_above / (2 * n_pos * n_neg), np.nan)
            # the precision at each lens's score, once per lens drawn (scikit-learn's sum over thresholds)
            found = lenses[:, self.lenses_reached]
            selected = np.maximum(found + reached, 1)  # at least 1 where the lens is drawn: itself
            average = ((drawn * found) / selected).sum(axis=1) / n_pos
            average = np.where((n_pos > 0) & (n_neg > 0), np.minimum(average, 1.0), np.nan)  # as evaluate
            values = {
                "auroc": auroc,
                "average_precision": average,
                **self._at_threshold(lenses, others, n_lenses, threshold, beta),
                "tpr0": self._tpr_within(lenses, others, n_lenses, 0),
                "tpr10": self._tpr_within(lenses, others, n_lenses, self.tpr10_allowed),
            }
        values["tpr10"][n_neg <= self.tpr10_allowed] = np.nan  # 1.0 by construction there
        return values

    def _at_threshold(
        self, lenses: np.ndarray, others: np.ndarray, n_lenses: np.ndarray, threshold: float, beta: float
    ) -> dict[str, np.ndarray]:
        """Precision, recall (over every lens, unscored ones missed) and F-beta of ``score >= threshold``."""
        true = lenses[:, np.count_nonzero(self.lens_scores >= threshold)]
        selected = true + others[:, np.count_nonzero(self.other_scores >= threshold)]
        precision = np.where(selected > 0, true / selected, np.nan)
        recall = np.where(n_lenses > 0, true / n_lenses, np.nan)
        weighted = beta**2 * precision + recall
        f_beta = np.where(weighted > 0, (1 + beta**2) * precision * recall / weighted, 0.0)
        f_beta[np.isnan(precision) | np.isnan(recall)] = np.nan
        return {"precision": precision, "recall": recall, "f_beta": f_beta}

    def _tpr_within(
        self, lenses: np.ndarray, others: np.ndarray, n_lenses: np.ndarray, allowed: int
    ) -> np.ndarray:
        """The largest share of every lens found at a threshold with at most ``allowed`` false positives;
        NaN without non-lenses or lenses, 0 where every lens drawn is unscored. Only the thresholds above
        the first non-lens past ``allowed`` in every resample are looked at (a few dozen)."""
        low, high = 0, others.shape[1]  # the first column of ``others`` above ``allowed`` in every row
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if (others[:, middle] > allowed).all() else (middle + 1, high)
        top = (
            np.searchsorted(self.other_at, low, side="left") if low < others.shape[1] else self.other_at.size
        )
        false = others[:, self.other_at[:top]]
        best = np.where(false <= allowed, lenses[:, self.lens_at[:top]], 0.0).max(axis=1, initial=0.0)
        rate = np.where(n_lenses > 0, best / n_lenses, np.nan)
        return np.where(others[:, -1] > 0, rate, np.nan)


def _cumulative(counts: np.ndarray) -> np.ndarray:
    """Counts summed along each row from its start: column j holds the sum of the first j."""
    total = np.zeros((counts.shape[0], counts.shape[1] + 1), dtype=np.int64)
    np.cumsum(counts, axis=1, dtype=np.int64, out=total[:, 1:])  # integers: 6x faster than to floats
    return total
