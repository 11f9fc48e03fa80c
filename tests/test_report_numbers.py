"""Numbers in the report as a fresh user read them (trial): a metric short of 1 never reads 1 (table,
plot titles); the Declared-outputs row shows one precision and never ``range 1 – 1`` for scores short of
1; the gallery's explanation is left out where no gallery was asked for."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from test_report import THETA_E, build_run, small_provenance

from flows.common import format_metric as cli_format_metric
from pipeline.catalog import make_catalog_table
from pipeline.catalog.columns import CatalogLayout
from pipeline.evaluation import evaluate, format_metric
from pipeline.evaluation.plots import make_evaluation_plots
from pipeline.evaluation.report import build_report
from pipeline.models.outputs import DEFAULT_SCORE

SHOWN = {
    "AUROC": "auroc",
    "Average precision": "average_precision",
    "Precision (purity)": "precision",
    "Recall (completeness)": "recall",
    "F1": "f_beta",
    "TPR0": "tpr0",
    "TPR10": "tpr10",
}
"""Metric rows of the report's table: the Metrics field each shows."""


def _nearly_perfect(n_pos: int = 100, n_neg: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores whose AUROC is 1 - 1/(n_pos n_neg): one non-lens above the lowest lens."""
    labels = np.r_[np.ones(n_pos, np.int8), np.zeros(n_neg, np.int8)]
    scores = np.r_[np.linspace(0.6, 0.99, n_pos), np.linspace(0.01, 0.4, n_neg)]
    scores[-1] = 0.601  # above the lowest lens (0.6) only
    return labels, scores


def _texts(monkeypatch, owner: type, method: str) -> list[str]:
    """The texts the plots pass to ``owner.method`` (a PNG's text cannot be read back)."""
    texts: list[str] = []
    original = getattr(owner, method)

    def recording(self, text, *args, **kwargs):
        texts.append(str(text))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(owner, method, recording)
    return texts


def _titles(monkeypatch) -> list[str]:
    """The titles the plots give their axes."""
    from matplotlib.axes import Axes

    return _texts(monkeypatch, Axes, "set_title")


def test_a_metric_short_of_one_never_reads_one(tmp_path: Path, monkeypatch) -> None:
    labels, scores = _nearly_perfect()
    n = labels.size
    catalog = make_catalog_table(
        object_ids=np.arange(n),
        ra=np.linspace(10, 20, n),
        dec=np.zeros(n),
        scores=scores,
        score_std=np.zeros(n),
        flags=np.zeros(n, np.int32),
        model_id="m",
        labels=labels,
    )
    metrics = evaluate(labels, scores, threshold=0.5)
    assert metrics.auroc == 1 - 1 / 25_000
    titles = _titles(monkeypatch)
    plots = make_evaluation_plots(labels, scores, tmp_path / "plots")
    assert "ROC: AUROC = 0.99996" in titles, titles
    assert any(re.fullmatch(r"Precision-recall: AP = 0\.9999\d*", title) for title in titles), titles

    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=small_provenance(n_objects=n, n_scored=n),
        metrics=metrics,
        plots=plots,
        gallery=[],
        run_info={},
    )
    html = report.read_text()
    cells = dict(  # the value, without its 95% interval beside it
        re.findall(
            r'<td class="name">([^<]+)</td><td class="num">([^<]*)(?:<span class="ci">[^<]*</span>)?</td>',
            html,
        )
    )
    assert cells["AUROC"] == "0.99996", cells
    said = " ".join(html.split())  # trial: "Objects ... without a score are left out", which recall is not
    assert "without a score are left out" not in said
    assert (
        "AUROC and AP rank the scored objects; recall, F-beta, TPR0 and TPR10 count a lens without a "
        "score as missed."
    ) in said
    for name, field in SHOWN.items():
        value = getattr(metrics, field)
        assert cells[name] == format_metric(value, missing="—"), (name, cells[name], value)
        assert (float(cells[name]) in (0.0, 1.0)) == (value in (0.0, 1.0)), (name, cells[name], value)
    assert cells["Lenses scored"] == "100"
    # the command line prints metrics by the same rule
    assert cli_format_metric(metrics.auroc) == cells["AUROC"] and cli_format_metric(None) == "n/a"


def test_outputs_row_has_one_precision_and_no_gallery_no_gallery_text(tmp_path: Path) -> None:
    n = 6
    scores = np.array([0.9999, 0.99999, 0.999999, 0.9999999, 0.99999996, 0.99995])
    radius = np.array([0.464, 1.2, 1.5, 1.7, 1.997, 0.9])
    outputs = {"score": scores, "score_std": np.zeros(n), "theta_e": radius}
    outputs |= {"theta_e_err": radius / 10, "theta_e_std": radius / 20}
    layout = CatalogLayout(outputs=(DEFAULT_SCORE, THETA_E))
    catalog = make_catalog_table(
        object_ids=np.arange(n),
        ra=np.linspace(10, 20, n),
        dec=np.zeros(n),
        outputs=outputs,
        flags=np.zeros(n, np.int32),
        model_id="m",
        layout=layout,
    )
    provenance = small_provenance(n_objects=n, n_scored=n, outputs=layout.outputs_json())
    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=provenance,
        metrics=None,
        plots={},
        gallery=[],
        run_info={},
        top_n=0,
    )
    html = report.read_text()
    summary = re.findall(r"median ([^,<]+), range ([^ <]+) – ([^;<\s]+)", html)
    assert len(summary) == 2, summary
    (score_median, score_low, score_high), (theta_median, theta_low, theta_high) = summary
    # scores short of 1 read short of 1 (trial: "median 1, range 1 – 1")
    for text in (score_median, score_low, score_high):
        assert float(text) < 1.0, summary
    assert float(score_low) == 0.9999 and float(score_high) == 0.99999996
    # one precision, enough for both ends (trial: "range 0.464 – 2" for a maximum of 1.997)
    assert (theta_low, theta_high) == ("0.464", "1.997"), summary
    assert len(theta_median.split()[0].split(".")[1]) == 3, summary
    assert len(score_low.split(".")[1]) == len(score_high.split(".")[1]) == len(score_median.split(".")[1])
    # no gallery asked for: the page says so, and does not explain colour composites it does not show
    assert 'id="no-gallery"' in html
    assert "Colour composites" not in html and "The bar is the angular scale" not in html


def test_a_spread_short_of_a_thousandth_never_reads_none(tmp_path: Path) -> None:
    """Spreads of 1e-5 to 5e-4 (a confident ensemble) read "± 0.000" on the cards and candidate pages."""
    report, top_ids = build_run(tmp_path, n=60, n_gallery=3, spread=5e-4)
    pages = [report] + [report.parent / "gallery" / f"{object_id}.html" for object_id in top_ids]
    for page in pages:
        spreads = re.findall(r"± ([0-9.e-]+)", page.read_text())
        assert spreads, page
        assert all(0 < float(text) <= 5e-4 for text in spreads), (page.name, spreads)


def test_the_curves_say_they_leave_out_the_unscored_lenses(tmp_path: Path, monkeypatch) -> None:
    """Recall, TPR0 and TPR10 count an unscored lens as missed; the ROC and precision-recall curves
    (like AUROC and AP) are of the scored objects, and say so under them, with the count."""
    from matplotlib.figure import Figure

    from pipeline.evaluation.plots import plot_precision_recall, plot_roc

    captions = _texts(monkeypatch, Figure, "supxlabel")
    from matplotlib.axes import Axes

    y_labels, x_labels = _texts(monkeypatch, Axes, "set_ylabel"), _texts(monkeypatch, Axes, "set_xlabel")
    labels = np.array([1, 0, 1, 0, 1, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1, np.nan, np.nan, np.nan])
    plot_roc(labels, scores, tmp_path / "roc.png")
    plot_precision_recall(labels, scores, tmp_path / "pr.png")
    expected = (
        "curve of the scored objects; 2 unscored lens(es) are not in it\n(recall, TPR0 and TPR10 count "
        "them as missed)"
    )
    assert captions == [expected, expected]
    # trial: the axes said completeness, and the operating point sat at 1.0 beside a recall of 0.6
    assert y_labels[:2] == ["true-positive rate (of the scored lenses)"] * 2
    assert "recall (of the scored lenses)" in x_labels
    assert not [label for label in y_labels + x_labels if "completeness" in label]
    captions.clear()
    plot_roc(labels[:4], scores[:4], tmp_path / "roc2.png")  # every lens scored: no caption
    assert captions == [] and (tmp_path / "roc2.png").stat().st_size > 0


def test_a_perfect_average_precision_short_of_one_by_rounding_reads_one(tmp_path: Path, monkeypatch) -> None:
    """Trial: sklearn's average precision of a perfect ranking of 7 lenses above 4 non-lenses is
    0.9999999999999998 (float rounding); the command line printed ``average_precision=0.9999999999999998``
    beside AUROC's 4 digits, the report's table and the precision-recall title alike. It reads 1 where it
    is shown; the Metrics (metrics.json) keep the value."""
    from flows.common import metrics_lines

    labels = np.r_[np.ones(7, np.int8), np.zeros(4, np.int8)]
    scores = np.r_[np.linspace(0.6, 0.99, 7), np.linspace(0.01, 0.4, 4)]
    metrics = evaluate(labels, scores, threshold=0.5)
    assert metrics.average_precision == 0.9999999999999998  # kept as computed
    titles = _titles(monkeypatch)
    plots = make_evaluation_plots(labels, scores, tmp_path / "plots")
    assert "Precision-recall: AP = 1" in titles, titles
    report = build_report(
        tmp_path / "report",
        catalog=make_catalog_table(
            object_ids=np.arange(labels.size),
            ra=np.linspace(10, 20, labels.size),
            dec=np.zeros(labels.size),
            scores=scores,
            score_std=np.zeros(labels.size),
            flags=np.zeros(labels.size, np.int32),
            model_id="m",
            labels=labels,
        ),
        provenance=small_provenance(n_objects=labels.size, n_scored=labels.size),
        metrics=metrics,
        plots=plots,
        gallery=[],
        run_info={},
    )
    html = report.read_text()
    assert '<td class="name">Average precision</td><td class="num">1<' in html
    assert "0.9999999999999998" not in html
    (line,) = metrics_lines(metrics.model_dump())[:1]
    assert "average_precision=1," in line and "0.99999" not in line, line
    # its bootstrap interval, whose draws are as near 1, alike
    with_interval = metrics.model_dump() | {"ci95": {"average_precision": [0.9999999999999998, 1.0]}}
    with_interval["ci95"]["resamples"] = 100
    assert "average_precision=1 [1.00, 1.00]" in metrics_lines(with_interval)[0]
