"""Objects of the label catalog that have no file: recorded by the ingest, counted by the evaluation.

Trial: catalog rows 100006 and 300003 named objects whose files never arrived; ``lenshunt ingest``
said so in one line, and then they were in no catalog, not in ``metrics.json`` and not on the page:
the lens among them dropped out of the "lenses not scored: lost to completeness" count silently.
Real FITS files, a real label CSV, a real store, the real evaluation.
"""

from __future__ import annotations

import json

import pytest
from cutouts import band_file, write_set
from markupsafe import escape
from test_inspect import write_run
from test_training import LAYOUT

from flows.cli import main
from flows.evaluate import evaluation_summary
from flows.run import RunSummary
from pipeline import paths
from pipeline.evaluation import evaluate_run, read_metrics
from pipeline.store import ingest, open_store, read_without_files

IDS = [100000, 100001, 100002, 100003, 100004, 100005, 300000, 300001, 300002]
LABELS = {object_id: object_id % 2 for object_id in IDS} | {100006: 1, 300003: 0}  # files never came
NOTE = (
    "2 object(s) of the label catalog (1 lens) have no file (ids 100006, 300003): not in the store, so not "
    "scored and left out of the metrics; recall counts the lenses of the store only (a part of a set "
    "ingested on purpose would make a recall over the whole catalog meaningless). Their list: "
    f"report/files/{paths.WITHOUT_FILES_LIST}; ingest their files, score and evaluate again to count them"
)


def _row(name: str, value: str) -> str:
    return f'<tr><td class="name">{name}</td><td class="num">{value}</td>'


@pytest.fixture
def ingested(tmp_path, dask_client):
    source = write_set(LAYOUT, tmp_path / "src", IDS, LABELS)
    store = tmp_path / "store.zarr"
    report = ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    assert "2 row(s) name objects with no file in the source and not in the store" in report.summary()
    return source, store


def test_objects_without_files_are_counted_in_metrics_report_and_info(ingested, tmp_path, capsys):
    source, store = ingested
    run = write_run(store, tmp_path / "run")
    result = evaluate_run(run, store, top_n=2)
    metrics = result.metrics
    assert (metrics.n_catalog_without_files, metrics.n_pos_without_files) == (2, 1)
    assert metrics.n_objects == len(IDS)  # no catalog rows for them (a partial ingest on purpose)
    assert metrics.notes[-1] == NOTE
    saved = json.loads(paths.metrics_file(run).read_text())
    assert (saved["n_catalog_without_files"], saved["n_pos_without_files"]) == (2, 1)
    assert f"note:    {NOTE}" in evaluation_summary(result).splitlines()
    run_lines = RunSummary(
        store=str(store),
        n_objects=9,
        n_new_objects=9,
        n_scored_new=8,
        n_scored=8,
        n_reread=0,
        n_rewritten=0,
        catalog_fits="c.fits",
        catalog_parquet="c.parquet",
        report=str(result.report_path),
        metrics=metrics.model_dump(),
    ).summary()
    assert f"note:    {NOTE}" in run_lines.splitlines()  # `lenshunt run` says it too

    page = result.report_path.read_text()
    assert _row("Lenses not scored", "0") in page  # beside it
    assert _row("Lenses without files", "1") in page and _row("Catalog objects without files", "2") in page
    assert page.index("Lenses not scored") < page.index("Catalog objects without files")
    assert page.index("Catalog objects without files") < page.index("Lenses without files")  # among them
    assert str(escape(NOTE)) in page
    link = f'<a href="files/{paths.WITHOUT_FILES_LIST}">Label-catalog objects without files (CSV, 2)</a>'
    assert link in page
    listed = paths.report_dir(run) / "files" / paths.WITHOUT_FILES_LIST
    assert listed.read_text() == "object_id,label\n100006,1\n300003,0\n"

    assert main(["info", str(store)]) == 0
    assert (
        "no file    2 object(s) of the label catalog (1 lens) have no file (ids 100006, 300003): not in the "
        f"store, not scored; their files may not have arrived yet (as {next(source.glob('*.csv'))} said)"
        in capsys.readouterr().out
    )


def test_late_files_and_a_later_catalog_change_the_counts(ingested, tmp_path, dask_client, capsys):
    source, store = ingested
    run = write_run(store, tmp_path / "run")
    assert evaluate_run(run, store, top_n=2).metrics.n_pos_without_files == 1

    write_set(LAYOUT, source, [100006])  # the lens's files arrive late; the catalog stays
    assert ingest(LAYOUT, source, store, dask_client).n_added == 1
    recorded = read_without_files(store)
    assert (recorded.object_ids.tolist(), recorded.labels.tolist()) == ([300003], [0])
    stale = evaluate_run(run, store, top_n=2)  # not scored again: the lens is in no count of this run
    assert (stale.metrics.n_catalog_without_files, stale.metrics.n_pos_without_files) == (1, 0)
    assert (
        "1 labelled object(s) of the store (1 lens; ids 100006) are not in this run's catalog (ingested "
        "after it was scored): not in the metrics; score into the same --out again, then evaluate (a work "
        "directory: `lenshunt run` again)"
    ) in stale.notes
    lines = evaluation_summary(stale).splitlines()  # the note with the metrics, before the report's line
    note = next(row for row, line in enumerate(lines) if line.startswith("note:    1 labelled object(s)"))
    assert lines[0].startswith("metrics: ") and lines[note + 1] == f"report:  {stale.report_path}"
    rescored = write_run(store, tmp_path / "run2")
    result = evaluate_run(rescored, store, top_n=2)
    assert result.notes == () and result.metrics.n_objects == len(IDS) + 1
    assert result.metrics.n_pos_unscored == 1  # write_run leaves the last object unscored: 100006
    assert result.metrics.notes[-1].startswith(
        "1 object(s) of the label catalog (0 lenses) have no file (ids 300003): not in the store"
    )
    listed = paths.report_dir(rescored) / "files" / paths.WITHOUT_FILES_LIST
    assert listed.read_text() == "object_id,label\n300003,0\n"
    page = result.report_path.read_text()
    assert _row("Lenses without files", "0") in page and _row("Catalog objects without files", "1") in page

    # a later catalog replaces the list: 300003's row gone, a row for 100077 (a lens not delivered) new
    catalog = next(source.glob("image_catalog*.csv"))
    catalog.unlink()
    write_set(LAYOUT, source, [], {object_id: object_id % 2 for object_id in IDS} | {100006: 1, 100077: 1})
    ingest(LAYOUT, source, store, dask_client)
    assert read_without_files(store).object_ids.tolist() == [100077]
    assert evaluate_run(rescored, store, top_n=2).metrics.n_pos_without_files == 1

    # an ingest without a catalog keeps the list, less the ids whose files arrived; then none is left
    # and its objects arriving take the labels recorded (trial: the lens came in unlabelled, forgotten)
    next(source.glob("image_catalog*.csv")).unlink()
    write_set(LAYOUT, source, [100077])
    report = ingest(LAYOUT, source, store, dask_client)
    assert (
        "1 object(s) whose files arrived now (ids 100077) take the labels that "
        f"{catalog} gave them when they had no file (no label catalog read now)"
    ) in report.label_notes
    stored = open_store(store)
    assert int(stored["label"].values[list(stored["object_id"].values).index(100077)]) == 1
    assert read_without_files(store).n == 0
    result = evaluate_run(rescored, store, top_n=2)
    assert (result.metrics.n_catalog_without_files, result.metrics.n_pos_without_files) == (0, 0)
    assert not any("have no file" in note for note in result.metrics.notes)
    assert not listed.exists()  # the earlier evaluation's list is gone with the objects
    assert paths.WITHOUT_FILES_LIST not in result.report_path.read_text()
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    assert "no file" not in capsys.readouterr().out


def test_a_store_without_the_record_says_nothing(ingested, tmp_path, capsys):
    """A store ingested before the record existed: "not recorded" (null), no row, no list, no crash."""
    source, store = ingested
    paths.without_files_record(store).unlink()
    run = write_run(store, tmp_path / "run")
    result = evaluate_run(run, store, top_n=2)
    assert (result.metrics.n_catalog_without_files, result.metrics.n_pos_without_files) == (None, None)
    saved = read_metrics(paths.metrics_file(run))
    assert saved.n_catalog_without_files is None and not any("have no file" in n for n in saved.notes)
    page = result.report_path.read_text()
    assert "without files" not in page and paths.WITHOUT_FILES_LIST not in page
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "labels     lens" in out and "no file" not in out


def test_a_label_catalog_with_files_for_every_row_records_none(tmp_path, dask_client):
    source = write_set(LAYOUT, tmp_path / "src", IDS, {object_id: object_id % 2 for object_id in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    for band in LAYOUT.band_names:  # a stored object whose files are gone is no object without files
        band_file(LAYOUT, source, 100001, band).unlink()
    ingest(LAYOUT, source, store, dask_client)
    assert read_without_files(store).n == 0
    result = evaluate_run(write_run(store, tmp_path / "run"), store, top_n=2)
    assert (result.metrics.n_catalog_without_files, result.metrics.n_pos_without_files) == (0, 0)
