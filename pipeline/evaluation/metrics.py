"""Classification metrics of a scored run against known labels, from scikit-learn where it has them.

All curve functions take ``labels`` (1 lens, 0 non-lens) and finite ``scores``; an object is
selected at threshold ``t`` when ``score >= t``. Tied scores are one threshold: objects with the
same score are selected together, so a lens and a non-lens that tie count together (this is what
makes the ROC area give half credit to ties, and what TPR0 must respect).

:func:`evaluate` takes a whole catalog's ``label`` (-1 unknown) and ``score`` (NaN unscored)
columns, leaves out unknown labels (and counts them), and returns :class:`Metrics`. A lens left
unscored (flagged: its files broken) counts as missed in recall, F-beta, TPR0 and TPR10, which the
challenges define over every lens of the set; AUROC and AP rank the scored objects only. A metric
that is undefined for the data (no lenses, or no non-lenses, or nothing selected) is ``None`` and
``Metrics.notes`` says why; so is TPR10 with fewer than ten scored non-lenses, where "fewer than ten
false positives" holds at every threshold and it would read 1.0 by construction.

Each metric also gets a 95% confidence interval (``Metrics.ci95``), a stratified bootstrap of the
lenses and non-lenses (:mod:`pipeline.evaluation.bootstrap`, :mod:`pipeline.evaluation.intervals`):
a fresh-user trial measured intervals as wide as the differences between models quoted at three
decimals. ROC, AUROC, the precision-recall curve, average precision and precision / recall / F-beta
at a threshold come from :mod:`sklearn.metrics` (their conventions match the ones above). TPR0 and TPR10
are ours: they follow the first Strong Lens Finding Challenge (Metcalf et al. 2019), the highest
true-positive rate reached before the first false positive, and with fewer than ten.

Examples
--------
>>> labels = np.array([1, 0, 1, 0])
>>> scores = np.array([0.9, 0.8, 0.7, 0.1])
>>> float(auroc(labels, scores)), float(tpr0(labels, scores))
(0.75, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pipeline.evaluation.bootstrap import RESAMPLES, SEED, rough_note
from pipeline.evaluation.formats import count_noun
from pipeline.evaluation.metrics_file import Metrics as Metrics
from pipeline.evaluation.metrics_file import read_metrics as read_metrics
from pipeline.evaluation.metrics_file import write_metrics as write_metrics

MAX_BETA = 1e150
"""The largest beta of F-beta taken: its square must be a finite float (past about 1.3e154 it is not;
fresh-user trial: ``lenshunt evaluate --beta 1e200`` ended in scikit-learn's OverflowError)."""


def check_beta(beta: float) -> None:
    """Refuse a beta of F-beta that is not a number in (0, :data:`MAX_BETA`].

    Raises
    ------
    ValueError
        Naming the value.
    """
    if not (math.isfinite(beta) and 0 < beta <= MAX_BETA):
        raise ValueError(f"beta must be positive and at most {MAX_BETA:g}, got {beta}")


LABEL_UNKNOWN = -1


def _check_clean(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-d and of one length")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1 here; drop unknown (-1) labels first, or call evaluate()")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite here; drop unscored (NaN) objects first, or call evaluate()")
    return labels.astype(np.int64), scores


def _threshold_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) and the true and false positives selected at each.

    TPR0 and TPR10 count false positives per threshold; scikit-learn's ROC curve gives the same
    counts as rates, so this stays ours (it is what the challenge metrics are defined on).
    """
    labels, scores = _check_clean(labels, scores)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    true_positives = np.cumsum(labels[order])
    false_positives = np.cumsum(1 - labels[order])
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    if sorted_scores.size == 0:
        last_of_run = last_of_run[:0]
    return sorted_scores[last_of_run], true_positives[last_of_run], false_positives[last_of_run]


def _both_classes(labels: np.ndarray) -> bool:
    return bool(labels.any()) and not bool(labels.all())


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1).

    :func:`sklearn.metrics.roc_curve` with every threshold kept (``drop_intermediate=False``).

    Returns
    -------
    fpr, tpr, thresholds : numpy.ndarray
        Shape (k + 1,) for k distinct scores; ``thresholds`` descend and start at +inf
        (nothing selected).

    Raises
    ------
    ValueError
        When ``labels`` lack lenses or non-lenses (a rate would divide by zero).
    """
    from sklearn import metrics

    labels, scores = _check_clean(labels, scores)
    if not _both_classes(labels):
        n_pos, n_neg = int(labels.sum()), int(labels.size - labels.sum())
        raise ValueError(f"a ROC curve needs lenses and non-lenses; got {n_pos} and {n_neg}")
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (:func:`sklearn.metrics.roc_auc_score`; ties count half).

    NaN when one class is absent (scikit-learn raises there).
    """
    from sklearn import metrics

    labels, scores = _check_clean(labels, scores)
    if not _both_classes(labels):
        return math.nan
    return float(metrics.roc_auc_score(labels, scores))


def precision_recall_curve(
    labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision (purity) and recall (completeness) at every distinct threshold, descending.

    :func:`sklearn.metrics.precision_recall_curve` in descending-threshold order, without the
    (precision 1, recall 0) end point it appends.

    Returns
    -------
    precision, recall, thresholds : numpy.ndarray
        Shape (k,) for k distinct scores.

    Raises
    ------
    ValueError
        When there are no lenses (recall is undefined).
    """
    from sklearn import metrics

    labels, scores = _check_clean(labels, scores)
    if not labels.any():
        raise ValueError("a precision-recall curve needs at least one lens")
    precision, recall, thresholds = metrics.precision_recall_curve(labels, scores)
    return precision[-2::-1], recall[-2::-1], thresholds[::-1]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (:func:`sklearn.metrics.average_precision_score`); NaN without lenses, and
    NaN without non-lenses.

    Without non-lenses every threshold selects lenses only, so precision is 1 at every recall and
    scikit-learn's sum is 1 by construction, whatever the scores: it says nothing of the ranking
    (trial: "Average precision 1" shown beside an undefined AUROC). scikit-learn returns it without a
    warning (it warns only without lenses, and returns 0 there, which this function makes NaN too);
    this module's convention for a value fixed by construction is "undefined", as for TPR10 with
    fewer than ten non-lenses, and :func:`evaluate` gives None and a note. The challenges' metrics
    (AUROC, TPR0, TPR10; Metcalf et al. 2019) are likewise undefined without non-lenses.

    Parameters
    ----------
    labels : numpy.ndarray
        1 lens, 0 non-lens; shape (n,).
    scores : numpy.ndarray
        Finite scores; shape (n,).

    Returns
    -------
    float
        In [0, 1]; NaN without lenses or without non-lenses.

    The sum over thresholds of (recall step) x precision; equals the mean, over lenses, of the
    precision at the lens's own score (ties included). Clipped to at most 1: the sum's rounding gave
    1.0000000000000002 for 9 lenses ranked above 2 non-lenses (trial: shown so in the summary, the
    report and ``metrics.json``).
    """
    from sklearn import metrics

    labels, scores = _check_clean(labels, scores)
    if not labels.any() or labels.all():
        return math.nan
    return min(1.0, float(metrics.average_precision_score(labels, scores)))


def precision_recall_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """Precision and recall of selecting ``score >= threshold``.

    Precision is NaN when nothing is selected; recall is NaN when there are no lenses.
    """
    precision, recall, _ = precision_recall_f_at(labels, scores, threshold)
    return precision, recall


def precision_recall_f_at(
    labels: np.ndarray, scores: np.ndarray, threshold: float, beta: float = 1.0
) -> tuple[float, float, float]:
    """Precision, recall and F-beta of selecting ``score >= threshold``.

    :func:`sklearn.metrics.precision_recall_fscore_support` on the selection. Precision is NaN
    when nothing is selected, recall NaN without lenses, and F-beta NaN when either is (where
    scikit-learn would report 0).
    """
    from sklearn import metrics

    check_beta(beta)
    labels, scores = _check_clean(labels, scores)
    if labels.size == 0:
        return math.nan, math.nan, math.nan
    precision, recall, f_score, _ = metrics.precision_recall_fscore_support(
        labels, (scores >= threshold).astype(np.int64), beta=beta, average="binary", zero_division=np.nan
    )
    precision, recall, f_score = float(precision), float(recall), float(f_score)
    if math.isnan(precision) or math.isnan(recall):
        f_score = math.nan
    return precision, recall, f_score


def f_beta(precision: float, recall: float, beta: float = 1.0) -> float:
    """F-beta score of a precision and recall; recall weighs ``beta`` times as much as precision.

    0 when both are 0; NaN when either is NaN.

    Examples
    --------
    >>> f_beta(0.5, 1.0)
    0.6666666666666666
    """
    check_beta(beta)
    if math.isnan(precision) or math.isnan(recall):
        return math.nan
    if precision == 0 and recall == 0:
        return 0.0
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def tpr_at_false_positives(labels: np.ndarray, scores: np.ndarray, max_false_positives: int) -> float:
    """Highest true-positive rate over thresholds that select at most ``max_false_positives``.

    Thresholds run over distinct scores, so a non-lens tied with lenses is selected with them.
    NaN when there are no lenses.
    """
    _, true_positives, false_positives = _threshold_counts(labels, scores)
    n_pos = int(np.sum(np.asarray(labels) == 1))
    if n_pos == 0:
        return math.nan
    allowed = false_positives <= max_false_positives
    best = int(true_positives[allowed].max()) if allowed.any() else 0
    return best / n_pos


def tpr0(labels: np.ndarray, scores: np.ndarray) -> float:
    """True-positive rate reached before the first false positive (first lens challenge)."""
    return tpr_at_false_positives(labels, scores, 0)


TPR10_FALSE_POSITIVES = 9
"""The most false positives TPR10 allows ("fewer than ten"): :func:`evaluate` leaves TPR10 undefined
with no more non-lenses than this, where it is 1.0 (every scored lens) by construction."""


def tpr10(labels: np.ndarray, scores: np.ndarray) -> float:
    """True-positive rate reached with fewer than ten false positives (first lens challenge)."""
    return tpr_at_false_positives(labels, scores, TPR10_FALSE_POSITIVES)


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _missed_unscored(
    rate: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    s: np.ndarray,
    n_neg: int,
    n_pos_unscored: int,
) -> float | None:
    """``rate`` (TPR0 or TPR10) over every lens, the unscored ones missed; None without non-lenses or
    without any lens."""
    if not n_neg:
        return None
    if not y.any():
        return 0.0 if n_pos_unscored else None
    return _defined(_over_every_lens(rate(y, s), int(y.sum()), n_pos_unscored))


def _over_every_lens(rate: float, n_pos: int, n_pos_unscored: int) -> float:
    """A rate over the ``n_pos`` scored lenses as one over them and the unscored ones (exact counts)."""
    if math.isnan(rate):
        return 0.0 if n_pos_unscored and not n_pos else rate
    return round(rate * n_pos) / (n_pos + n_pos_unscored)


def evaluate(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    beta: float = 1.0,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Metrics:
    """All metrics of a run and their 95% intervals, leaving out unknown labels (-1); unscored lenses
    (NaN) count as missed.

    Parameters
    ----------
    labels : numpy.ndarray
        1 lens, 0 non-lens, -1 unknown; shape (n,).
    scores : numpy.ndarray
        Scores in [0, 1], NaN when not scored; shape (n,).
    threshold : float
        Objects with ``score >= threshold`` are selected as candidates.
    beta : float
        F-beta weight of recall.
    resamples, seed : int
        Bootstrap resamples and seed of the intervals (:func:`pipeline.evaluation.bootstrap.
        resampled_metrics`; :data:`~pipeline.evaluation.bootstrap.RESAMPLES`, 1 to 3 s on 100,000
        objects); 0 resamples: none (``ci95`` None).

    Returns
    -------
    Metrics
        Undefined metrics are None with a note (e.g. AUROC without non-lenses); so are intervals,
        the note saying why where the set is too small.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-d and of one length")
    if not np.isin(labels, (LABEL_UNKNOWN, 0, 1)).all():
        raise ValueError("labels must be 1 (lens), 0 (non-lens) or -1 (unknown)")
    if np.isinf(scores).any():
        raise ValueError("scores must be finite or NaN (unscored); flag and blank infinite model outputs")
    scored = ~np.isnan(scores)
    known = labels != LABEL_UNKNOWN
    used = scored & known
    y, s = labels[used].astype(np.int64), scores[used]
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    n_pos_unscored = int(np.count_nonzero(~scored & (labels == 1)))
    # Completeness is over every lens of the catalog: one left unscored (its files broken) was not
    # found, as the challenges count a lens missing from a submission (trial: 2 of 7 lenses unscored,
    # recall and TPR0 said 1). AUROC and AP rank the scored objects.
    notes = []
    if n_pos == 0:
        undefined = "AUROC and AP" if n_pos_unscored else "AUROC, AP, recall, F-beta, TPR0 and TPR10"
        notes.append(f"no scored lenses: {undefined} are undefined")
    if n_neg == 0:
        notes.append(  # trial: AP read 1 without a word, 1 by construction there
            "no scored non-lenses: AUROC, AP, TPR0 and TPR10 are undefined (AP would be 1 whatever the "
            "scores: precision is 1 at every threshold)"
        )
    elif n_neg < TPR10_FALSE_POSITIVES + 1:  # every threshold selects fewer than ten: 1.0 by construction
        notes.append(
            f"only {n_neg} scored non-lens{'es' * (n_neg != 1)}: TPR10 is undefined (fewer than ten false "
            f"positives hold at every threshold); TPR0 rests on {n_neg} non-lens{'es' * (n_neg != 1)}"
        )
    precision, recall, f_score = precision_recall_f_at(y, s, threshold, beta)
    if n_pos_unscored:
        recall = _over_every_lens(recall, n_pos, n_pos_unscored)
        f_score = f_beta(precision, recall, beta)
    if math.isnan(precision):
        notes.append(f"no object scored >= {threshold}: precision and F-beta are undefined")
    if n_pos_unscored:
        notes.append(
            f"{n_pos_unscored} of {count_noun(n_pos + n_pos_unscored, 'lens', 'lenses')} "
            f"{'was' if n_pos_unscored == 1 else 'were'} not scored (flagged): recall, F-beta, TPR0 and "
            f"TPR10 count {'it' if n_pos_unscored == 1 else 'them'} as missed; AUROC and AP rank the scored "
            "objects"
        )
    points = {
        "auroc": _defined(auroc(y, s)),
        "average_precision": _defined(average_precision(y, s)),
        "precision": _defined(precision),
        "recall": _defined(recall),
        "f_beta": _defined(f_score),
        "tpr0": _missed_unscored(tpr0, y, s, n_neg, n_pos_unscored),
        "tpr10": _missed_unscored(tpr10, y, s, n_neg, n_pos_unscored)
        if n_neg > TPR10_FALSE_POSITIVES
        else None,
    }
    ci95 = None
    if resamples:
        from pipeline.evaluation.intervals import flat_note, metric_intervals

        ci95 = metric_intervals(
            labels, scores, points, threshold=threshold, beta=beta, resamples=resamples, seed=seed
        )
        said = (rough_note(n_pos + n_pos_unscored, int(np.sum(labels == 0))), flat_note(ci95))
        notes += [note for note in said if note]
    return Metrics(
        **points,
        ci95=ci95,
        beta=beta,
        threshold=threshold,
        n_pos=n_pos,
        n_neg=n_neg,
        n_unscored=int(np.count_nonzero(~scored)),
        n_unlabelled=int(np.count_nonzero(~known)),
        n_objects=int(labels.size),
        n_pos_unscored=n_pos_unscored,
        notes=notes,
    )
