"""The 95% confidence intervals of a run's metrics: ``metrics.json``'s ``ci95``, and how they read.

:func:`metric_intervals` bootstraps them (:mod:`pipeline.evaluation.bootstrap`); :class:`Intervals`
is what ``metrics.json`` keeps (``"ci95": {"auroc": [0.983, 0.996], ...}`` beside the point values,
whose keys are unchanged); :func:`interval_text` and :func:`ci_text` are how the command lines and
the report show them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

METHOD = "stratified percentile bootstrap (Efron & Tibshirani 1993): lenses and non-lenses resampled apart"


def _bounds(metric: str) -> object:
    return Field(default=None, description=f"[low, high] of the {metric}; null: undefined")


class Intervals(BaseModel):
    """95% intervals of the metrics of one set; a metric's is None where the set cannot give one (the
    metric undefined, fewer than :data:`~pipeline.evaluation.bootstrap.MIN_PER_CLASS` lenses or
    non-lenses, or the metric undefined in most resamples)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: float = Field(default=0.95, gt=0, lt=1, description="Confidence level")
    method: str = Field(default=METHOD, description="How the intervals were made")
    resamples: int = Field(ge=1, description="Bootstrap resamples")
    seed: int = Field(description="Seed of the resampling (the same set and seed give the same intervals)")
    auroc: tuple[float, float] | None = _bounds("AUROC")
    average_precision: tuple[float, float] | None = _bounds("average precision")
    precision: tuple[float, float] | None = _bounds("precision at the threshold")
    recall: tuple[float, float] | None = _bounds("recall at the threshold")
    f_beta: tuple[float, float] | None = _bounds("F-beta at the threshold")
    tpr0: tuple[float, float] | None = _bounds("TPR0")
    tpr10: tuple[float, float] | None = _bounds("TPR10")


def metric_intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    points: Mapping[str, float | None],
    *,
    threshold: float,
    beta: float,
    resamples: int,
    seed: int,
) -> Intervals:
    """The intervals of the metrics :func:`~pipeline.evaluation.metrics.evaluate` gave as ``points``
    (name -> value, None where undefined: its interval is None too).

    Parameters
    ----------
    labels, scores : numpy.ndarray
        As ``evaluate`` takes them (-1: unknown label, NaN: unscored).
    points : Mapping[str, float or None]
        The point values, by :data:`~pipeline.evaluation.bootstrap.INTERVAL_METRICS` name.
    threshold, beta : float
        As ``evaluate`` takes them.
    resamples, seed : int
        Of :func:`~pipeline.evaluation.bootstrap.resampled_metrics`.
    """
    from pipeline.evaluation.bootstrap import INTERVAL_METRICS, intervals, resampled_metrics

    draws = resampled_metrics(labels, scores, threshold, beta, resamples=resamples, seed=seed)
    found = intervals(draws)
    defined = {name: found[name] if points.get(name) is not None else None for name in INTERVAL_METRICS}
    return Intervals(resamples=resamples, seed=seed, **defined)


def flat_note(ci95: Intervals) -> str | None:
    """A note on the intervals of no width (every resample gave the metric one value: the lenses all
    above the non-lenses, say); None where there are none.

    >>> flat_note(Intervals(resamples=10, seed=0, auroc=(1.0, 1.0), tpr0=(0.5, 0.9)))[:50]
    'the 95% interval of auroc has no width (every resa'
    """
    from pipeline.evaluation.bootstrap import INTERVAL_METRICS

    flat = [
        name for name in INTERVAL_METRICS if (ends := getattr(ci95, name)) is not None and ends[0] == ends[1]
    ]
    if not flat:
        return None
    which = f"interval of {flat[0]} has" if len(flat) == 1 else f"intervals of {', '.join(flat)} have"
    return (
        f"the 95% {which} no width (every resample gave one value: the lenses and non-lenses apart in "
        "the scores, or all tied): a bootstrap cannot show how far the value of another such set may fall"
    )


def interval_text(interval: tuple[float, float] | None, digits: int = 3) -> str:
    """An interval as the command lines show it, ``[0.983, 0.996]``; ``""`` for None.

    >>> interval_text((0.98312, 0.99604)), interval_text((0.9, 0.99996)), interval_text(None)
    ('[0.983, 0.996]', '[0.90000, 0.99996]', '')
    """
    if interval is None or any(np.isnan(value) for value in interval):
        return ""
    from pipeline.evaluation.formats import format_values

    low, high = format_values(list(interval), digits)
    return f"[{low}, {high}]"


def ci_text(interval: tuple[float, float] | None, digits: int = 3) -> str:
    """An interval as the report shows it beside its value, ``95% CI 0.983–0.996``; ``""`` for None.

    >>> ci_text((0.98312, 0.99604))
    '95% CI 0.983–0.996'
    """
    text = interval_text(interval, digits)
    return f"95% CI {text[1:-1].replace(', ', '–')}" if text else ""
