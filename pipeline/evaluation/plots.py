"""Evaluation plots as PNG files: ROC and precision-recall curves, score histograms.

Functions take arrays and a path, draw with matplotlib's object API on the Agg canvas (no
pyplot state, safe in worker threads) and return the path. Curve inputs are cleaned the way
:func:`pipeline.evaluation.metrics.evaluate` does: unknown labels (-1) and unscored objects (NaN) are left
out of the curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.evaluation import metrics as m
from pipeline.evaluation.formats import format_metric

LENS_COLOUR = "#d62728"
NONLENS_COLOUR = "#1f77b4"
UNLABELLED_COLOUR = "#7f7f7f"
THRESHOLD_COLOUR = "#2ca02c"
_BINS = np.linspace(0.0, 1.0, 41)


def _figure(width: float = 5.0, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(figure: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _usable(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    keep = (labels != m.LABEL_UNKNOWN) & ~np.isnan(scores)
    return labels[keep].astype(np.int64), scores[keep]


def _unscored_lenses(labels: np.ndarray, scores: np.ndarray) -> int:
    return int(np.count_nonzero((np.asarray(labels) == 1) & np.isnan(np.asarray(scores, dtype=np.float64))))


def _unscored_caption(figure: Any, n_unscored: int) -> None:
    """Say under a curve of the scored objects that the metrics count the unscored lenses as missed."""
    if n_unscored:
        figure.supxlabel(  # laid out by the constrained layout, below the axes' own labels
            f"curve of the scored objects; {n_unscored} unscored lens(es) are not in it\n(recall, TPR0 "
            "and TPR10 count them as missed)",
            fontsize="small",
            color="0.35",
        )


def plot_roc(labels: np.ndarray, scores: np.ndarray, path: Path, *, threshold: float = 0.5) -> Path:
    """ROC curve, linear and with a logarithmic false-positive axis, operating point marked; a caption
    counts the unscored lenses the curve leaves out (:func:`pipeline.evaluation.metrics.evaluate`)."""
    n_unscored = _unscored_lenses(labels, scores)
    labels, scores = _usable(labels, scores)
    fpr, tpr, _ = m.roc_curve(labels, scores)
    selected = scores >= threshold
    point = (np.mean(selected[labels == 0]), np.mean(selected[labels == 1]))
    figure = _figure(9.0, 4.0)
    axes = figure.subplots(1, 2)
    for ax, log in zip(axes, (False, True)):
        ax.plot(fpr, tpr, color=LENS_COLOUR, drawstyle="default", lw=1.8, label="model")
        ax.plot(*point, "o", color=THRESHOLD_COLOUR, label=f"score ≥ {threshold:g}")
        ax.set_xlabel("false-positive rate")
        # trial: with lenses unscored, the point read completeness 1.0 beside a recall of 0.944
        ax.set_ylabel("true-positive rate" + (" (of the scored lenses)" if n_unscored else " (completeness)"))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if log:
            n_neg = int(np.sum(labels == 0))
            ax.set_xscale("log")
            ax.set_xlim(0.5 / n_neg, 1.0)
            ax.set_title("ROC, logarithmic FPR")
        else:
            ax.plot([0, 1], [0, 1], ls=":", color="0.5", label="random")
            ax.set_xlim(0, 1)
            ax.set_title(f"ROC: AUROC = {format_metric(m.auroc(labels, scores))}")
            ax.legend(loc="lower right")
    _unscored_caption(figure, n_unscored)
    return _save(figure, path)


def plot_precision_recall(
    labels: np.ndarray, scores: np.ndarray, path: Path, *, threshold: float = 0.5
) -> Path:
    """Precision (purity) against recall (completeness) of the scored objects, operating point and
    prevalence marked; a caption counts the unscored lenses the curve leaves out."""
    n_unscored = _unscored_lenses(labels, scores)
    labels, scores = _usable(labels, scores)
    precision, recall, _ = m.precision_recall_curve(labels, scores)
    at_precision, at_recall = m.precision_recall_at(labels, scores, threshold)
    figure = _figure()
    ax = figure.subplots()
    ax.plot(
        np.r_[0.0, recall], np.r_[precision[0], precision], drawstyle="steps-pre", color=LENS_COLOUR, lw=1.8
    )
    if not np.isnan(at_precision):
        ax.plot(at_recall, at_precision, "o", color=THRESHOLD_COLOUR, label=f"score ≥ {threshold:g}")
    ax.axhline(labels.mean(), ls=":", color="0.5", label=f"lens fraction {labels.mean():.3g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall" + (" (of the scored lenses)" if n_unscored else " (completeness)"))
    ax.set_ylabel("precision (purity)")
    ax.set_title(f"Precision-recall: AP = {format_metric(m.average_precision(labels, scores))}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    _unscored_caption(figure, n_unscored)
    return _save(figure, path)


def _threshold_line(ax: Any, threshold: float) -> None:
    ax.axvline(threshold, color=THRESHOLD_COLOUR, ls="--", lw=1.2, label=f"threshold {threshold:g}")


def _finish_histogram(ax: Any, title: str) -> None:
    """Log counts with head room above the bars for a legend that covers no data."""
    top = ax.get_ylim()[1]
    ax.set_ylim(0.5, max(top, 1.0) * 40)  # before the log scale: no bars (nothing scored) warned there
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (0-1; a probability only at the training class balance)")
    ax.set_ylabel("objects per bin")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", ncols=2, fontsize="small", framealpha=0.9)


def plot_score_histograms(
    labels: np.ndarray, scores: np.ndarray, path: Path, *, threshold: float = 0.5
) -> Path:
    """Score histograms of lenses, non-lenses and unlabelled objects (log counts)."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    scored = ~np.isnan(scores)
    figure = _figure(6.0, 4.0)
    ax = figure.subplots()
    classes = (
        (1, "lenses", LENS_COLOUR),
        (0, "non-lenses", NONLENS_COLOUR),
        (-1, "unlabelled", UNLABELLED_COLOUR),
    )
    for value, name, colour in classes:
        chosen = scores[scored & (labels == value)]
        if chosen.size:
            ax.hist(
                chosen, bins=_BINS, histtype="step", lw=1.8, color=colour, label=f"{name} ({chosen.size})"
            )
    _threshold_line(ax, threshold)
    _finish_histogram(ax, "Score distribution per class")
    return _save(figure, path)


def plot_score_distribution(scores: np.ndarray, path: Path, *, threshold: float = 0.5) -> Path:
    """Histogram of all scores (log counts) for runs without labels."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[~np.isnan(scores)]
    figure = _figure(6.0, 4.0)
    ax = figure.subplots()
    n_selected = int(np.sum(scores >= threshold))
    ax.hist(
        scores,
        bins=_BINS,
        histtype="stepfilled",
        color=NONLENS_COLOUR,
        alpha=0.6,
        label=f"scored ({scores.size})",
    )
    _threshold_line(ax, threshold)
    ax.plot([], [], " ", label=f"{n_selected} candidates ≥ {threshold:g}")
    _finish_histogram(ax, "Score distribution")
    return _save(figure, path)


def make_evaluation_plots(
    labels: np.ndarray | None, scores: np.ndarray, out_dir: Path, *, threshold: float = 0.5
) -> dict[str, Path]:
    """Write the plots the data supports into ``out_dir``.

    Returns
    -------
    dict[str, pathlib.Path]
        ``"roc"`` and ``"precision_recall"`` when scored lenses and non-lenses exist,
        ``"histogram"`` when any scored object has a known label, else ``"distribution"``.
    """
    out_dir = Path(out_dir)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.full(scores.shape, m.LABEL_UNKNOWN, dtype=np.int8) if labels is None else np.asarray(labels)
    known = labels[~np.isnan(scores)]
    plots: dict[str, Path] = {}
    if np.any(known == 1) and np.any(known == 0):
        plots["roc"] = plot_roc(labels, scores, out_dir / "roc.png", threshold=threshold)
        plots["precision_recall"] = plot_precision_recall(
            labels, scores, out_dir / "precision_recall.png", threshold=threshold
        )
    if np.any(known != m.LABEL_UNKNOWN):
        plots["histogram"] = plot_score_histograms(
            labels, scores, out_dir / "score_histogram.png", threshold=threshold
        )
    else:
        plots["distribution"] = plot_score_distribution(
            scores, out_dir / "score_distribution.png", threshold=threshold
        )
    return plots
