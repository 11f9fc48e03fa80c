"""A stopped evaluation keeps the earlier one whole (trials: new metrics and figures stood beside the
old page, which described other ones; then, the old page deleted first, a stop lost a good report).
A real set is ingested, a run written and evaluated, and the second evaluation stopped while it
renders the gallery."""

from __future__ import annotations

import pytest
from cutouts import write_set
from test_inspect import write_run
from test_training import LAYOUT

from pipeline import paths
from pipeline.evaluation import evaluate_run
from pipeline.store import ingest

IDS = list(range(630000, 630012))


def test_a_stopped_evaluation_keeps_the_earlier_one_whole(tmp_path, dask_client, monkeypatch):
    import pipeline.evaluation.gallery

    source = write_set(LAYOUT, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run")
    first = evaluate_run(run, store, top_n=3)
    page, metrics = first.report_path, paths.metrics_file(run)
    report = page.parent
    (report / "files" / "notes.txt").write_text("the user's")
    before = {path: path.read_bytes() for path in report.rglob("*") if path.is_file()}
    before[metrics] = metrics.read_bytes()
    assert page.is_file() and first.plots and all(path.parent == report for path in first.plots.values())

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # a Ctrl-C once the figures are new

    monkeypatch.setattr(pipeline.evaluation.gallery, "render_gallery_pngs", stopped)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, store, top_n=3, threshold=0.9)
    after = {path: path.read_bytes() for path in report.rglob("*") if path.is_file()}
    after[metrics] = metrics.read_bytes()
    assert after == before  # the figures, gallery, copies, page and metrics as they were; no staging
    monkeypatch.undo()
    again = evaluate_run(run, store, top_n=1, threshold=0.9)  # the next one replaces them
    assert again.report_path == page and again.metrics.threshold == 0.9
    assert '"threshold": 0.9' in metrics.read_text() and not (report / paths.REPORT_STAGE).exists()
    gallery = {path.name for path in (report / "gallery").iterdir() if path.suffix == ".png"}
    assert len({name.split("-")[0].removesuffix(".png") for name in gallery}) == 1  # the other two gone
    assert (report / "files" / "notes.txt").is_file() and (report / "files" / "catalog.parquet").is_file()
    assert all(path.is_file() and path.parent == report for path in again.plots.values())
