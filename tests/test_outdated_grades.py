"""Grades made before an ingest re-read their object's images are left out, said, and asked again.

Trial (session 33): an object graded, then its band file replaced and ingested again, kept its
old grade in the catalog's consensus, the report and training labels, with no word that the
images changed after grading. A real set is ingested, a real run graded, a real file replaced and
re-read by a real ingest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cutouts import band_file, cutout_image, sky, write_cutout, write_set
from test_inspect import write_run
from test_training import LAYOUT

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.evaluation import evaluate_run
from pipeline.evaluation.grade_report import grade_section
from pipeline.evaluation.grades import GradeLog
from pipeline.evaluation.outdated import split_outdated
from pipeline.inspection import apply_grades
from pipeline.inspection.server import InspectSession
from pipeline.store import ingest, open_store, rewrite_times
from pipeline.training.config import TrainConfig, TrainingError
from pipeline.training.grades import grade_warnings, labels_from_grades, write_grade_summary

IDS = list(range(610000, 610016))
REPLACED, KEPT, TOUCHED = IDS[2], IDS[5], IDS[7]


@pytest.fixture(scope="module")
def regraded(tmp_path_factory, dask_client):
    """A graded run whose store re-read REPLACED (new pixels) and TOUCHED (same pixels) after grading."""
    root = tmp_path_factory.mktemp("outdated")
    source = write_set(LAYOUT, root / "src", IDS, dict.fromkeys(IDS, 0))
    store = root / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, root / "run")
    log = GradeLog(Path(run) / "grades", "ana")
    for object_id, grade in ((REPLACED, "X"), (KEPT, "A"), (TOUCHED, "B")):
        log.append(object_id, grade, score=0.5, model_id="test-model")
    log.close()
    band = LAYOUT.bands[0]
    brighter = cutout_image(REPLACED, 0, band.shape) * 40
    write_cutout(
        band_file(LAYOUT, source, REPLACED, band.name),
        brighter,
        *sky(REPLACED),
        scale_arcsec=band.pixel_scale_arcsec,
    )
    touched = band_file(LAYOUT, source, TOUCHED, band.name)
    touched.write_bytes(touched.read_bytes())  # a new modification time, the same pixels
    report = ingest(LAYOUT, source, store, dask_client)
    assert report.n_reread == 2
    return run, store


def test_rewrite_times_name_only_the_objects_whose_pixels_changed(regraded):
    _, store = regraded
    times = rewrite_times(store)
    assert times.index.tolist() == [REPLACED]
    assert str(times.dtype) == "datetime64[ns, UTC]"
    records = list(paths.repair_records_dir(store).glob("repair-*.json"))
    assert all(json.loads(path.read_text())["time"].endswith("Z") for path in records)


def test_apply_leaves_the_outdated_grade_out_and_says_so(regraded):
    run, store = regraded
    (Path(run) / "grades" / "zed.jsonl").write_text('{"object_id": 1, "gra\n')  # torn by a kill
    summary = apply_grades(run, hats=False)
    assert summary["n_graded"] == 2 and summary["n_outdated"] == 1 and summary["n_bad_lines"] == 1
    assert summary["bad_lines_where"] == f"{Path(run) / 'grades' / 'zed.jsonl'} line 1"  # trial: unnamed
    assert f"e.g. {REPLACED})" in summary["outdated_note"]
    assert f"`lenshunt inspect {run}`, whose page offers those with a score again" in summary["outdated_note"]
    catalog = read_catalog(paths.catalog_parquet(run)).set_index("object_id")
    assert catalog.loc[REPLACED, "grade_n"] == 0 and np.isnan(catalog.loc[REPLACED, "grade_mean"])
    assert catalog.loc[KEPT, "grade_mode"] == "A" and catalog.loc[TOUCHED, "grade_mode"] == "B"


def test_apply_on_the_command_line_names_the_torn_line(regraded, capsys):
    from flows.cli import main

    run, store = regraded
    torn = Path(run) / "grades" / "zed.jsonl"
    torn.write_text('{"object_id": 1, "gra\n')  # torn by a kill
    assert main(["inspect", str(run), "--store", str(store), "--apply"]) == 0
    err = capsys.readouterr().err
    assert (
        "lenshunt inspect: warning: 1 line(s) of the grade logs are not grades (torn by a kill, or damaged) "
        f"and were skipped: {torn} line 1\n" in err  # trial: the file was not named
    )


def test_the_exported_tables_mark_the_outdated_grades(regraded, capsys):
    """Trial: grades.parquet and grades.fits kept the grades of replaced images unmarked."""
    from astropy.table import Table

    from flows.cli import main

    run, store = regraded
    assert main(["inspect", str(run), "--export"]) == 0  # the store the catalog records
    folder = Path(run) / "grades"
    table = pd.read_parquet(folder / "grades.parquet").set_index("object_id")
    assert table["outdated"].to_dict() == {REPLACED: True, KEPT: False, TOUCHED: False}
    fits_table = Table.read(folder / "grades.fits")
    assert dict(zip(fits_table["object_id"], fits_table["outdated"], strict=True))[REPLACED]
    from pipeline.evaluation.grade_export import OUTDATED_RULE

    said = " ".join(line.strip() for line in fits_table.meta["comments"])  # the rule, wrapped into cards
    assert " ".join(OUTDATED_RULE.split()) in said and fits_table["outdated"].description
    assert pq.read_schema(folder / "grades.parquet").field("outdated").metadata[b"description"]
    labels, summary = labels_from_grades(
        np.array(IDS), np.zeros(len(IDS)), [str(folder / "grades.parquet")], rewritten=rewrite_times(store)
    )
    assert summary["n_outdated"] == 1  # read back, the time still says it


def test_the_report_section_counts_and_names_them(regraded):
    run, store = regraded
    catalog = read_catalog(paths.catalog_parquet(run))
    section = grade_section(run, catalog, store=store)
    assert section["summary"]["n_outdated"] == 1 and section["summary"]["n_graded"] == 2
    assert str(REPLACED) in section["note"] and REPLACED not in [row["object_id"] for row in section["rows"]]
    assert grade_section(run, catalog)["note"] is None  # no store: nothing to compare with
    page = evaluate_run(run, store, top_n=2).report_path.read_text()
    assert 'id="grades-outdated"' in page and f"e.g. {REPLACED})" in page
    assert 'id="grades-torn"' in page and section["summary"]["n_bad_lines"] == 1  # trial: skipped unsaid
    assert f"and were skipped: {Path(run) / 'grades' / 'zed.jsonl'} line 1.</p>" in page  # trial: unnamed


def test_the_page_offers_the_object_again_until_it_is_graded_anew(regraded, tmp_path):
    run, store = regraded
    session = InspectSession.open(run, "ana", store=store)
    assert session.n_outdated == 1
    assert REPLACED not in session.my_grades and KEPT in session.my_grades
    assert REPLACED in session.queue.tolist() and KEPT not in session.queue.tolist()
    other = InspectSession.open(run, "ben", store=store)  # another inspector has nothing outdated
    assert other.n_outdated == 0


def test_training_labels_leave_it_out_and_warn(regraded, tmp_path):
    run, store = regraded
    dataset = open_store(store, chunks=None)
    labels, summary = labels_from_grades(
        dataset["object_id"].values,
        dataset["label"].values,
        [str(run)],
        rewritten=(times := rewrite_times(store)),
        grades_only=True,
    )
    row = {int(object_id): i for i, object_id in enumerate(dataset["object_id"].values)}
    assert labels[row[REPLACED]] == -1 and labels[row[KEPT]] == 1 and labels[row[TOUCHED]] == 1
    assert summary["n_outdated"] == 1 and summary["n_graded"] == 2
    (tmp_path / "w").mkdir()
    config = TrainConfig(grades=[str(run)], grades_only=True)
    written = write_grade_summary(tmp_path / "w", store, dataset, config)
    assert written["n_outdated"] == 1
    assert any("1 grade(s) were made before an ingest re-read" in line for line in grade_warnings(written))
    # only grades of replaced images: refused, not a training run without grade labels
    old = {"object_id": REPLACED, "grade": "A", "inspector": "x", "time": "2020-01-01T00:00:00Z"}
    (old_log := tmp_path / "x.jsonl").write_text(json.dumps(old) + "\n")  # x's log
    with pytest.raises(TrainingError, match=r"every grade of .*x\.jsonl \(1\) was made before an ingest"):
        labels_from_grades(
            dataset["object_id"].values, dataset["label"].values, [str(old_log)], rewritten=times
        )


def test_a_grade_log_copied_from_another_run_is_left_out_as_older_than_the_store(regraded, tmp_path):
    """Fresh-user trial: ``dan.jsonl`` copied from another run into this run's grades folder (as the
    docs' merging of grades made elsewhere does) was applied: 13 grades of other images sharing these
    ids, 3 of which then changed training labels. A grade made before the store was made is of none of
    its images: left out of the catalog's consensus and of training, and said."""
    from pipeline.evaluation.outdated import outdated_note, store_rewrites
    from pipeline.store import read_attributes

    run, store = regraded
    created = pd.Timestamp(read_attributes(store).created).tz_convert("UTC")
    earlier = (created - pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    copied = Path(run) / "grades" / "dan.jsonl"
    copied.write_text(
        json.dumps({"object_id": KEPT, "grade": "X", "inspector": "dan", "time": earlier}) + "\n"
    )
    try:
        summary = apply_grades(run, hats=False)
        assert summary["n_outdated"] == 2 and summary["n_graded"] == 2  # REPLACED's by ana, and dan's
        assert (
            "(1 of them before this run's store was made: another store's objects)"
            in summary["outdated_note"]
        )
        assert read_catalog(run).set_index("object_id").loc[KEPT, "grade_n"] == 1  # ana's grade alone
        current, outdated = split_outdated(
            pd.DataFrame({"object_id": [KEPT], "time": [earlier]}), store_rewrites(store)
        )
        assert current.empty and outdated.attrs["n_before_store"] == 1
        assert outdated_note(outdated, run).startswith(
            f"1 grade(s) of 1 object(s) (e.g. {KEPT}) were made before this run's store was made "
            f"({created.isoformat()}), so of another store's objects that share their ids"
        )
        dataset = open_store(store, chunks=None)
        with pytest.raises(TrainingError, match="made before the training store was made: of another store"):
            labels_from_grades(
                dataset["object_id"].values,
                dataset["label"].values,
                [str(copied)],
                rewritten=store_rewrites(store),
            )
        _, both = labels_from_grades(
            dataset["object_id"].values, dataset["label"].values, [str(run)], rewritten=store_rewrites(store)
        )
        assert both["n_before_store"] == 1 and both["n_graded"] == 2
        assert any(
            "1 grade(s) were made before the training store was made" in line for line in grade_warnings(both)
        )
    finally:
        copied.unlink()
        apply_grades(run, hats=False)


def test_a_grade_made_after_the_re_read_counts_again(regraded, tmp_path):
    run, store = regraded
    log = GradeLog(Path(run) / "grades", "ana")
    log.append(REPLACED, "A", score=0.5, model_id="test-model")
    log.close()
    try:
        session = InspectSession.open(run, "ana", store=store)
        assert session.n_outdated == 0 and session.my_grades[REPLACED] == "A"
    finally:  # the module's other tests expect the first grades only
        path = Path(run) / "grades" / "ana.jsonl"
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def test_torn_grade_lines_are_counted_for_training(tmp_path):
    """Trial: ``lenshunt train --grades`` skipped a torn line without a word."""
    log = tmp_path / "grades" / "ana.jsonl"
    log.parent.mkdir()
    good = {"object_id": 1, "grade": "A", "inspector": "ana", "time": "2026-01-01T00:00:00.000000Z"}
    log.write_text(json.dumps(good) + '\n{"object_id": 2, "gra\n')
    _, summary = labels_from_grades(np.array([1, 2]), np.array([0, 0]), [str(log)])
    assert summary["n_bad_lines"] == 1
    assert grade_warnings(summary)[0].startswith(
        f"WARNING: 1 line(s) of the grade logs are not grades (torn by a kill in mid-write, or damaged) and "
        f"were skipped ({log} line 2); every other grade is used"
    )


def test_split_keeps_grades_of_unknown_time_and_objects_never_rewritten():
    grades = pd.DataFrame(
        {"object_id": [1, 1, 2], "time": ["not a time", "2026-01-01T00:00:00.000000Z", "2025-01-01T00:00Z"]}
    )
    rewritten = pd.Series(pd.to_datetime(["2026-06-01T00:00:00Z"], utc=True), index=[1])
    current, outdated = split_outdated(grades, rewritten)
    assert current.index.tolist() == [0, 2] and outdated.index.tolist() == [1]
    assert split_outdated(grades, None)[1].empty


def test_a_record_without_its_time_is_dated_by_its_id_in_local_time():
    """Records written before the time was saved: their id is the local time the re-read began, which
    a copy of the store keeps (a file's modification time would date every record at the copy)."""
    from datetime import datetime

    from pipeline.store.rewrites import record_time

    began = datetime(2026, 1, 2, 3, 4, 5).astimezone()
    assert record_time({}, "20260102T030405-0a1b2c3d") == pd.Timestamp(began)
    assert record_time({"time": "2026-05-01T00:00:00.000000Z"}, "20260102T030405-0a1b2c3d") == pd.Timestamp(
        "2026-05-01T00:00:00Z"
    )
    with pytest.raises(ValueError, match="does not match format"):
        record_time({}, "not-an-id")


def test_a_page_opened_before_an_ingest_rewrote_an_object_refuses_its_grade(regraded, dask_client):
    """Trial: a page opened before the re-read showed the old images, and its grade of them counted as
    one of the new. The module's last test: it rewrites KEPT."""
    from pipeline.evaluation.grades import GradeError

    run, store = regraded
    session = InspectSession.open(run, "dan", store=store)
    band = LAYOUT.bands[0]
    source = Path(run).parent / "src"
    brighter = cutout_image(KEPT, 0, band.shape) * 7
    write_cutout(
        band_file(LAYOUT, source, KEPT, band.name), brighter, *sky(KEPT), scale_arcsec=band.pixel_scale_arcsec
    )
    assert ingest(LAYOUT, source, store, dask_client).n_reread == 1
    stale = rf"the images of object {KEPT} were re-read by an ingest at .*, after this page opened"
    with pytest.raises(GradeError, match=stale):
        session.grade(KEPT, "A")
    assert session.grade(TOUCHED, "B")["saved"]["grade"] == "B"  # the others are graded as before
    again = InspectSession.open(run, "dan", store=store)  # a new page
    assert again.grade(KEPT, "A")["saved"]["grade"] == "A"


def test_apply_refreshes_the_report_s_copies_of_the_catalogs(regraded):
    """Trial: after ``inspect --apply`` the report's ``files/`` copies lacked the grade columns."""
    run, store = regraded
    report_files = paths.report_dir(run) / "files"
    if not (report_files / "catalog.parquet").is_file():
        evaluate_run(run, store, top_n=2)
    log = GradeLog(Path(run) / "grades", "zoe")
    log.append(IDS[9], "A", score=0.5, model_id="test-model")
    log.close()
    try:
        apply_grades(run, hats=False)
        copy = read_catalog(report_files / "catalog.parquet").set_index("object_id")
        assert copy.loc[IDS[9], "grade_n"] == 1 and copy.loc[IDS[9], "grade_mode"] == "A"
        fits_copy = read_catalog(report_files / "catalog.fits").set_index("object_id")
        assert fits_copy.loc[IDS[9], "grade_mode"] == "A"
    finally:
        (Path(run) / "grades" / "zoe.jsonl").unlink()
