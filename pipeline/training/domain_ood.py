"""The domain check's view of the out-of-distribution score: how much of each domain the model flags.

A bundle with feature statistics (:mod:`pipeline.models.features`) gives every scored object an
``ood_score``: its squared Mahalanobis distance in the score network's pooled features from the
training objects' (Lee et al. 2018; from the nearer class, lenses or non-lenses, where the fit was
per class), over its ``q``-quantile (0.99 by default) on in-domain objects the fit did not use; above 1 the
catalog flags it ``UNLIKE_TRAINING``. Per domain the check reports the share of objects so
flagged (lenses and non-lenses apart) and the AUROC among the objects not flagged: how well the
model ranks what it recognises, and how much of a shifted set it would send to a human as
"unlike anything I was trained on" instead.

Card entries: ``<domain>_unlike_training`` (share flagged) and ``<domain>_auroc_like_training``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.evaluation.metrics import evaluate
from pipeline.models.features import OOD_COLUMN

__all__ = ["OOD_CARD_KEYS", "OOD_COLUMN", "OodSummary", "ood_card_metrics", "ood_summary", "ood_table"]


OOD_CARD_KEYS = ("_unlike_training", "_auroc_like_training")
"""Endings of the card keys this module writes (removed before a rewrite: a bundle's statistics
may have been refitted or removed since)."""


@dataclass(frozen=True)
class OodSummary:
    """One domain's objects outside the training feature distribution, and the AUROC of the rest.

    Shares are fractions of the scored objects with a label (NaN where there are none);
    ``auroc_like_training`` is NaN when the objects not flagged hold one class only.
    """

    n_scored: int
    unlike_training: float
    unlike_training_lenses: float
    unlike_training_nonlenses: float
    auroc_like_training: float
    quantile: float = 0.99
    """The bundle's calibration quantile ``q``: about ``1 - q`` of in-domain objects are flagged."""


def _share(flags: np.ndarray) -> float:
    return float(flags.mean()) if flags.size else math.nan


def ood_summary(
    labels: np.ndarray, scores: np.ndarray, ood: np.ndarray, quantile: float = 0.99
) -> OodSummary:
    """Summary of one domain from per-object ``labels`` (1, 0, -1 unknown), ``scores`` and ``ood``.

    All three are ``(n,)`` arrays in the same order; objects with a NaN score or ood score, or no
    label, are left out.
    """
    labels, scores, ood = (np.asarray(a) for a in (labels, scores, ood))
    keep = np.isfinite(scores) & np.isfinite(ood) & ((labels == 0) | (labels == 1))
    labels, scores, unlike = labels[keep], scores[keep], ood[keep] > 1.0
    like = ~unlike
    auroc = evaluate(labels[like], scores[like]).auroc if like.any() else None
    return OodSummary(
        n_scored=int(keep.sum()),
        unlike_training=_share(unlike),
        unlike_training_lenses=_share(unlike[labels == 1]),
        unlike_training_nonlenses=_share(unlike[labels == 0]),
        auroc_like_training=math.nan if auroc is None else float(auroc),
        quantile=float(quantile),
    )


def ood_card_metrics(summaries: Mapping[str, OodSummary]) -> dict[str, float]:
    """``<domain>_unlike_training`` and ``<domain>_auroc_like_training`` (the latter where defined)."""
    values: dict[str, float] = {}
    for name, summary in summaries.items():
        if not math.isnan(summary.unlike_training):
            values[f"{name}_unlike_training"] = summary.unlike_training
        if not math.isnan(summary.auroc_like_training):
            values[f"{name}_auroc_like_training"] = summary.auroc_like_training
    return values


def ood_table(summaries: Mapping[str, OodSummary], aurocs: Mapping[str, float | None]) -> list[str]:
    """Markdown lines: per domain, the share flagged UNLIKE_TRAINING and the AUROC of the rest."""
    if not summaries:
        return []

    def number(value: float | None) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.3f}"

    quantile = next(iter(summaries.values())).quantile
    lines = [
        "",
        "Objects unlike the training set (ood_score > 1: farther from the training objects in the "
        f"model's features than {quantile:.1%} of in-domain objects; flagged UNLIKE_TRAINING in "
        "catalogs), and the AUROC of the objects not flagged.",
        "",
        "| domain | flagged | of the lenses | of the non-lenses | AUROC (all) | AUROC (not flagged) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {number(s.unlike_training)} | {number(s.unlike_training_lenses)} | "
            f"{number(s.unlike_training_nonlenses)} | {number(aurocs.get(name))} | "
            f"{number(s.auroc_like_training)} |"
        )
    return lines
