"""The domain check's 95% intervals: each domain's AUROC, each drop from the reference, the largest drop.

A fresh-user trial measured, by a stratified bootstrap, an in-domain AUROC of 0.9905 [0.983, 0.996]
on 600 objects and an independent simulator's 0.901 [0.882, 0.919] on 1000: the check gave point
values only, and its verdict compared the largest drop's point value with the goal of 0.05. Each
domain's AUROC is resampled as :func:`pipeline.evaluation.metrics.evaluate` resamples it for its
``ci95`` (:func:`pipeline.evaluation.bootstrap.resampled_metrics`, the same resamples and seed, so
the intervals are the same); the sets being independent, a drop's draws pair the reference's with the
domain's in a random order of the domain's own (:func:`~pipeline.evaluation.bootstrap.difference_draws`),
and the largest drop's draws are the largest of the domains' paired drops in each draw. The verdict
says whether that interval lies below the goal, above it, or across it.

Card entries: ``<domain>_auroc_ci_low`` and ``_ci_high`` (and those of ``_tpr0``, ``_tpr10`` and
``_average_precision``), ``max_auroc_drop_ci_low`` and ``_ci_high``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.evaluation.bootstrap import SEED, difference_draws, percentile_interval, resampled_metrics
from pipeline.evaluation.metrics import Metrics
from pipeline.training.card_entries import interval_entries

if TYPE_CHECKING:
    from pipeline.training.domains import DomainReport

MAX_DROP_KEYS = ("max_auroc_drop_ci_low", "max_auroc_drop_ci_high")
"""The largest drop's interval in the card (removed with the other maxima by a later check)."""
INTERVALS_SAID = (
    "95% intervals: a stratified bootstrap of each set (its lenses and non-lenses resampled apart, "
    "pipeline.evaluation.bootstrap); a drop's pairs the two sets' resamples at random, the sets being "
    "independent."
)
"""The table's line on its bracketed intervals."""


def of(metrics: Metrics, name: str) -> tuple[float, float] | None:
    """The 95% interval of the metric ``name`` in ``metrics`` (its ``ci95``); None without one."""
    return getattr(metrics.ci95, name) if metrics.ci95 is not None else None


def auroc_draws(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """A domain's AUROC on each bootstrap resample (NaN where undefined); empty where its set has too
    few lenses or non-lenses (:data:`~pipeline.evaluation.bootstrap.MIN_PER_CLASS`)."""
    return resampled_metrics(labels, scores).get("auroc", np.empty(0))


def auroc_interval(report: DomainReport, domain: str) -> tuple[float, float] | None:
    """The 95% interval of the domain's AUROC: of its draws, else its metrics' ``ci95``; None without."""
    draws = report.auroc_draws.get(domain)
    if draws is not None:
        return percentile_interval(draws)
    return of(report.metrics[domain], "auroc")


def drop_draws(report: DomainReport, domain: str) -> np.ndarray | None:
    """Draws of the domain's AUROC drop from the reference; None where either has none."""
    reference, other = report.auroc_draws.get(report.reference), report.auroc_draws.get(domain)
    if reference is None or other is None or not reference.size or reference.shape != other.shape:
        return None
    return difference_draws(reference, other, seed=SEED + 1 + list(report.metrics).index(domain))


def drop_interval(report: DomainReport, domain: str) -> tuple[float, float] | None:
    """The 95% interval of the domain's AUROC drop; None where it has no draws."""
    draws = drop_draws(report, domain)
    return None if draws is None else percentile_interval(draws)


def max_drop_interval(report: DomainReport, domains: Sequence[str]) -> tuple[float, float] | None:
    """The 95% interval of the largest drop over ``domains`` (the held-out shifted ones with a drop):
    per draw the largest of their paired drops. None where one has no draws."""
    draws = [drop_draws(report, name) for name in domains]
    if not draws or any(d is None for d in draws):
        return None
    return percentile_interval(np.max(np.stack(draws), axis=0))


def card_entries(metrics: Mapping[str, Metrics], max_drop: tuple[float, float] | None) -> dict[str, float]:
    """``<domain>_<metric>_ci_low`` / ``_ci_high`` where a domain's metrics have an interval, and the
    largest drop's ``max_auroc_drop_ci_low`` / ``_ci_high``."""
    values = {}
    for name, measured in metrics.items():  # as training's validation (card_metrics) records them
        values.update(interval_entries(measured, name))
    if max_drop is not None:
        values.update(zip(MAX_DROP_KEYS, max_drop, strict=True))
    return values


def bracket(interval: tuple[float, float] | None) -> str:
    """`` [0.882, 0.919]`` (3 decimals, as the check's table), ``""`` for None.

    >>> bracket((0.88213, 0.9191)), bracket((-0.0123, 0.031)), bracket(None)
    (' [0.882, 0.919]', ' [-0.012, 0.031]', '')
    """
    if interval is None or any(math.isnan(end) for end in interval):
        return ""
    return f" [{interval[0]:.3f}, {interval[1]:.3f}]"
