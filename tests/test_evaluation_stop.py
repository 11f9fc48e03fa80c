"""A stopped evaluation leaves no page nor metrics (trial: new metrics and figures stood beside the
old page, which described other ones). A real set is ingested, a run written and evaluated, and the
second evaluation stopped while it renders the gallery."""

from __future__ import annotations

import pytest
from cutouts import write_set
from test_inspect import write_run
from test_training import LAYOUT

from pipeline import paths
from pipeline.evaluation import evaluate_run
from pipeline.store import ingest

IDS = list(range(630000, 630012))


def test_a_stopped_evaluation_leaves_no_page_beside_new_figures(tmp_path, dask_client, monkeypatch):
    import pipeline.evaluation.gallery

    source = write_set(LAYOUT, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run")
    first = evaluate_run(run, store, top_n=3)
    page, metrics = first.report_path, paths.metrics_file(run)
    assert page.is_file() and metrics.is_file()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # a Ctrl-C once the figures are new

    monkeypatch.setattr(pipeline.evaluation.gallery, "render_gallery_pngs", stopped)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, store, top_n=3, threshold=0.9)
    assert not page.exists() and not metrics.exists()
    monkeypatch.undo()
    again = evaluate_run(run, store, top_n=3, threshold=0.9)  # the next one writes both
    assert again.report_path.is_file() and metrics.is_file() and again.metrics.threshold == 0.9
