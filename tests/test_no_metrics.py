"""A run without labels says that it has no metrics and why, on the console and on its page (trial: a
run without labels printed no metrics line, and nothing said why)."""

from __future__ import annotations

import json
import re

from cutouts import write_set
from markupsafe import escape
from test_inspect import write_run
from test_training import LAYOUT

from flows.evaluate import evaluation_summary
from flows.run import RunSummary
from pipeline import paths
from pipeline.evaluation import evaluate_run
from pipeline.store import ingest

IDS = list(range(640000, 640012))
WHY = (
    "none of the 12 objects has a label (lens or non-lens): give the label catalog to `lenshunt "
    "ingest` or `lenshunt run` (--catalog FILE, or the layout's file name in the cutout folder), then "
    "`lenshunt evaluate` the run"
)


def _run_summary(**fields) -> RunSummary:
    counts = {"n_objects": 12, "n_new_objects": 12, "n_scored_new": 11, "n_scored": 11}
    return RunSummary(
        store="s.zarr",
        **counts,
        n_reread=0,
        n_rewritten=0,
        catalog_fits="c.fits",
        catalog_parquet="c.parquet",
        **fields,
    )


def test_an_unlabelled_run_says_it_has_no_metrics_and_why(tmp_path, dask_client):
    source = write_set(LAYOUT, tmp_path / "src", IDS)  # no label catalog
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run")
    result = evaluate_run(run, store, top_n=2)
    assert result.metrics is None and result.no_metrics == WHY
    assert not paths.metrics_file(run).exists()
    lines = evaluation_summary(result).splitlines()
    assert lines[0] == f"metrics: none, {WHY}"
    page = result.report_path.read_text()
    assert f"<tr><th>Metrics</th><td>none: {escape(WHY)}</td></tr>" in page

    summary = _run_summary(report=str(result.report_path), metrics=None, no_metrics=result.no_metrics)
    assert summary.summary().splitlines()[-1] == f"metrics: none, {WHY}"


def test_a_labelled_run_has_no_such_line(tmp_path, dask_client):
    source = write_set(LAYOUT, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    result = evaluate_run(write_run(store, tmp_path / "run"), store, top_n=2)
    assert result.metrics is not None and result.no_metrics is None
    assert evaluation_summary(result).startswith("metrics: auroc=")
    assert "none of the" not in result.report_path.read_text()


def test_the_metrics_notes_reach_the_console(tmp_path, dask_client):
    """Trial: a lens-only catalog printed ``auroc=n/a ... tpr0=n/a`` without the reason, which only the
    page and metrics.json gave."""
    source = write_set(LAYOUT, tmp_path / "src", IDS, dict.fromkeys(IDS, 1))  # lenses only
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    result = evaluate_run(write_run(store, tmp_path / "run"), store, top_n=2)
    lines = evaluation_summary(result).splitlines()
    assert lines[0].startswith("metrics: auroc=n/a, ") and "tpr0=n/a" in lines[0]
    undefined = (
        "no scored non-lenses: AUROC, AP, TPR0 and TPR10 are undefined (AP would be 1 whatever the scores: "
        "precision is 1 at every threshold)"
    )
    assert f"note:    {undefined}" in lines
    # trial: "Average precision 1" with no note, AP being 1 by construction without non-lenses
    assert "average_precision=n/a" in lines[0], lines[0]
    written = json.loads(paths.metrics_file(tmp_path / "run").read_text())
    assert written["average_precision"] is None and undefined in written["notes"]
    page = result.report_path.read_text()
    assert re.search(r'<td class="name">Average precision</td><td class="num">—<', page), "AP has a value"
    assert str(escape(undefined)) in page
    assert (
        "note:    1 of 12 lenses was not scored (flagged): recall, F-beta, TPR0 and TPR10 count it as "
        "missed; AUROC and AP rank the scored objects"
    ) in lines


def test_the_run_summary_names_every_catalog_and_the_metrics_file():
    """Trial: the run's last lines left out the VOTable and HATS catalogs, metrics.json and f_beta."""
    summary = _run_summary(
        report="report.html",
        metrics={"auroc": 0.75, "f_beta": 0.5, "notes": ["no object scored >= 0.9"]},
        catalog_votable="c.vot",
        catalog_hats="c_hats",
        metrics_path="metrics.json",
    )
    assert summary.summary().splitlines()[1:] == [
        "catalog: c.fits",
        "         c.parquet",
        "         c.vot",
        "         c_hats (HATS, lsdb.read_hats)",
        "report:  report.html",
        "metrics: auroc=0.75, f_beta=0.5",
        "         metrics.json",
        "note:    no object scored >= 0.9",
    ]
