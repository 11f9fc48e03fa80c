"""Evaluation: metrics against labels, plots, colour composites and the HTML report of a run.

:mod:`~pipeline.evaluation.metrics` is pure (AUROC, AP, TPR0/TPR10, ..., with 95% intervals from
:mod:`~pipeline.evaluation.bootstrap`); :mod:`~pipeline.evaluation.run`
reads a scored run and writes ``metrics.json``, the plots and ``report/report.html``.
"""

from pipeline.evaluation.formats import format_metric, format_values
from pipeline.evaluation.intervals import Intervals, ci_text, interval_text
from pipeline.evaluation.metrics import (
    MAX_BETA,
    Metrics,
    auroc,
    evaluate,
    read_metrics,
    tpr0,
    tpr10,
    write_metrics,
)
from pipeline.evaluation.options import check_options, earlier_options
from pipeline.evaluation.run import EvaluationResult, check_evaluation_writable, evaluate_run

__all__ = [
    "MAX_BETA",
    "EvaluationResult",
    "Intervals",
    "Metrics",
    "auroc",
    "check_evaluation_writable",
    "check_options",
    "ci_text",
    "earlier_options",
    "evaluate",
    "evaluate_run",
    "format_metric",
    "format_values",
    "interval_text",
    "read_metrics",
    "tpr0",
    "tpr10",
    "write_metrics",
]
