"""The record of a run's metrics, ``metrics.json``: :class:`Metrics` and its reader and writer.

:func:`pipeline.evaluation.metrics.evaluate` makes it (and :mod:`pipeline.evaluation.metrics` names
these too). Keys are only ever added, with defaults, so that an older ``metrics.json`` still reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pipeline.atomic import write_text_atomic
from pipeline.evaluation.intervals import Intervals


class Metrics(BaseModel):
    """Metrics of one run at one threshold; ``None`` marks a metric the data cannot define."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auroc: float | None = Field(description="Area under the ROC curve")
    average_precision: float | None = Field(description="Average precision (area under precision-recall)")
    precision: float | None = Field(description="Purity: lenses among selected (score >= threshold)")
    recall: float | None = Field(
        description="Completeness: selected among the lenses, an unscored lens counted as not selected"
    )
    f_beta: float | None = Field(description="F-beta of precision and recall")
    beta: float = Field(gt=0, description="Weight of recall relative to precision in F-beta")
    threshold: float = Field(description="Score threshold for selection")
    tpr0: float | None = Field(
        description="Highest TPR before the first false positive (over every lens, unscored ones missed)"
    )
    tpr10: float | None = Field(
        description="Highest TPR with fewer than ten false positives (over every lens, unscored ones missed)"
        "; None with fewer than ten scored non-lenses (1.0 by construction there)"
    )
    ci95: Intervals | None = Field(
        default=None,
        description="95% confidence intervals [low, high] of the metrics above, by a stratified bootstrap; "
        "None: not computed (evaluate(..., resamples=0), or a metrics.json written before they were)",
    )
    n_pos: int = Field(ge=0, description="Lenses that were scored (used by AUROC and AP)")
    n_neg: int = Field(ge=0, description="Non-lenses that were scored (used)")
    n_unscored: int = Field(ge=0, description="Objects without a score (any label)")
    n_unlabelled: int = Field(ge=0, description="Objects with unknown label (scored or not)")
    n_objects: int = Field(ge=0, description="All objects given")
    n_pos_unscored: int = Field(
        ge=0, description="Lenses left unscored: counted as missed by recall, F-beta, TPR0 and TPR10"
    )
    n_catalog_without_files: int | None = Field(
        default=None,
        ge=0,
        description="Objects of the label catalog with no file (not in the store), at the store's latest "
        "ingest: not scored, and in no count above; None: not recorded (a store ingested before it was)",
    )
    n_pos_without_files: int | None = Field(
        default=None,
        ge=0,
        description="Lenses among them: lost to completeness too, but left out of the recall, which counts "
        "the lenses of the store",
    )
    notes: list[str] = Field(default_factory=list, description="Why a metric is None, and other caveats")
    n_learned_trained: int | None = Field(
        default=None,
        ge=0,
        description="Labelled objects with the ids of objects the scoring model trained on (its "
        "training/split.json, its ensemble members' and those of the bundles they were fine-tuned "
        "from); None: not checked",
    )
    n_learned_validated: int | None = Field(
        default=None,
        ge=0,
        description="Labelled objects with the ids of those it validated on (not trained on)",
    )
    held_out: Metrics | None = Field(
        default=None,
        description="The same metrics on the objects the scoring model never learned from, where it "
        "learned from some labelled ones and the others hold lenses and non-lenses",
    )


def write_metrics(metrics: Metrics, path: Path) -> Path:
    """Write ``metrics`` as JSON (undefined metrics as null), atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(metrics.model_dump(mode="json"), indent=2) + "\n")


def read_metrics(path: Path) -> Metrics:
    """Read a ``metrics.json`` written by :func:`write_metrics`."""
    return Metrics.model_validate_json(Path(path).read_text())
