"""Whose grades a log holds: inspector names that differ only in case, one selection per inspector,
and what a page says when its run is rescored under it.

Trial: ``grades/Ann.jsonl`` beside ``grades/ann.jsonl`` counted as two inspectors (an object graded
by two people got ``grade_n`` 3), and on a case-insensitive disk the two names are one file whose
lines of the other spelling were skipped; ``--select`` of bob replaced ann's ``selection-score.csv``;
a page open while its run was rescored said "now 151 objects scored" of 151 rows, 146 scored.
Real runs here: the ring-lens store of ``test_training`` with a real catalog and ``lenshunt inspect``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from test_inspect import REPO, free_port, run_dir, start_server  # noqa: F401 - the inspection tests' run
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance
from pipeline.evaluation.grades import GradeError, GradeLog, read_grades
from pipeline.inspection import InspectSession, candidate_order
from pipeline.inspection.rewrites import CatalogWatch, file_identity


@pytest.fixture
def run(run_dir, tmp_path):  # noqa: F811
    """A copy of the inspection tests' run without grades."""
    return shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades"))


def scored_ids(run) -> list[int]:
    return candidate_order(read_catalog(run), "score").tolist()


def inspect(*options: str, timeout: float = 60) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flows.cli", "inspect", *options]
    env = {**os.environ, "USER": "ann"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout)


def write_log(path, inspector: str, grades: list[tuple[int, str]]) -> None:
    """A grade log written by hand (as copied from another machine)."""
    lines = [
        {"object_id": oid, "grade": grade, "inspector": inspector, "time": f"2036-12-05T10:00:0{i}Z"}
        for i, (oid, grade) in enumerate(grades)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_an_inspector_differing_only_in_case_from_a_log_is_refused(run):
    ids = scored_ids(run)
    log = GradeLog(run / "grades", "ann")
    log.append(ids[0], "A")
    log.close()
    for options in ([], ["--select", "2"]):  # serving, and --select
        done = inspect(str(run), "--inspector", "Ann", "--port", str(free_port()), *options)
        assert done.returncode == 1, done.stdout + done.stderr
        said = done.stderr.strip()
        assert len(said.splitlines()) == 1, said
        assert "'Ann' differs only in case from the grade log" in said and "ann.jsonl" in said, said
        assert "give --inspector ann" in said, said
    assert sorted(path.name for path in (run / "grades").iterdir()) == ["ann.jsonl"]
    with pytest.raises(GradeError, match="differs only in case"):
        InspectSession.open(run, "ANN")
    InspectSession.open(run, "ann").log.close()  # the log's own name, and another, are taken
    InspectSession.open(run, "bob").log.close()


def test_a_log_refuses_its_first_grade_once_another_spelling_has_a_log(tmp_path):
    """Two pages started before either graded: the second spelling's first grade is refused."""
    ann, other = GradeLog(tmp_path, "ann"), GradeLog(tmp_path, "Ann")
    ann.append(7, "A")
    with pytest.raises(GradeError, match=r"'Ann' differs only in case from the grade log .*ann\.jsonl"):
        other.append(7, "X")
    ann.append(8, "B")  # the log already there goes on
    ann.close()
    assert sorted(path.name for path in tmp_path.glob("*.jsonl")) == ["ann.jsonl"]


def test_logs_of_names_differing_only_in_case_are_refused_not_counted_twice(run, store, tmp_path):  # noqa: F811
    from flows.cli import main
    from pipeline.evaluation import evaluate_run
    from pipeline.training.grades import labels_from_grades

    ids = scored_ids(run)
    folder = run / "grades"
    write_log(folder / "ann.jsonl", "ann", [(ids[0], "A"), (ids[1], "X")])
    write_log(folder / "Ann.jsonl", "Ann", [(ids[0], "A")])  # the same person, or another?
    write_log(folder / "bob.jsonl", "bob", [(ids[0], "B")])
    before = read_catalog(run)
    for action in ("--apply", "--export"):
        done = inspect(str(run), action)
        assert done.returncode == 1, done.stdout + done.stderr
        said = done.stderr.strip()
        assert len(said.splitlines()) == 1, said
        assert f"{folder / 'Ann.jsonl'} and {folder / 'ann.jsonl'}" in said, said
        assert "differ only in case" in said, said
    pd.testing.assert_frame_equal(read_catalog(run), before)  # no consensus written
    assert not (folder / "grades.parquet").exists()
    for source in (run, folder):
        with pytest.raises(GradeError, match="differ only in case"):
            read_grades(source)
    catalog = read_catalog(run)
    with pytest.raises(GradeError, match="differ only in case"):  # lenshunt train --grades RUN
        labels_from_grades(catalog["object_id"].to_numpy(), catalog["label"].to_numpy(), [str(run)])
    report = " ".join(evaluate_run(run, store, top_n=2).report_path.read_text().split())
    assert "visual grades left out: grade logs" in report, report[:2000]
    # a page of another inspector grades on; it says why the table was not written when it stops
    process, _ = start_server(run, free_port(), "--inspector", "carl")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "the grades table was not written: grade logs" in output, output
    # once the two are one inspector's log, every reader takes it
    (folder / "Ann.jsonl").unlink()
    assert main(["inspect", str(run), "--apply"]) == 0
    table = read_catalog(run).set_index("object_id")
    assert table.loc[ids[0], "grade_n"] == 2 and table.loc[ids[1], "grade_n"] == 1


def test_select_writes_one_file_per_inspector(run):
    from flows.cli import main

    ids = scored_ids(run)
    folder = run / "grades"
    GradeLog(folder, "ann").append(ids[0], "A")
    (folder / "selection-score.csv").write_text("object_id\n1\n")  # made by the earlier naming
    assert main(["inspect", str(run), "--inspector", "ann", "--select", "3"]) == 0
    assert main(["inspect", str(run), "--inspector", "bob", "--select", "3"]) == 0
    assert main(["inspect", str(run), "--inspector", "ann", "--select", "2", "--order", "random"]) == 0
    ann = pd.read_csv(folder / "selection-ann-score.csv")["object_id"].tolist()
    bob = pd.read_csv(folder / "selection-bob-score.csv")["object_id"].tolist()
    assert ann == ids[1:4] and bob == ids[:3]  # bob's did not replace ann's
    assert len(pd.read_csv(folder / "selection-ann-random.csv")) == 2
    rows = read_grades(run)  # the selections, the earlier one included, are no grade files to warn of
    assert rows.attrs["unread_files"] == []


def test_a_rescored_catalog_is_said_in_scored_objects_not_rows(run, monkeypatch):
    import pipeline.catalog

    path = paths.catalog_parquet(run)
    was = read_provenance(path)
    assert was.n_scored < was.n_objects  # the run has an object without a score
    watch = CatalogWatch.start(run, path, file_identity(path), was, read_catalog(path))
    assert watch.rewritten() is None
    now = was.model_copy(update={"n_scored": was.n_scored - 2, "model_id": "model-two"})
    monkeypatch.setattr(pipeline.catalog, "read_provenance", lambda _: now)
    os.utime(path, ns=(0, 0))  # as a score run's rewrite changes it
    said = watch.rewritten()
    assert f"now {now.n_scored} of {now.n_objects} objects scored by model-two" in said, said
    assert f"this page has {was.n_scored} of {was.n_objects} scored by test-model" in said, said


def test_a_rewritten_catalog_locks_the_page_only_when_scores_ranks_objects_or_model_change(run):
    """Trial: a threshold-only score run rewrote the catalog with the same 300 scores and every open
    page refused grades; a rewrite that changes an object's score says so, not "new objects"."""
    from datetime import UTC, datetime

    from pipeline.catalog import write_catalog

    path = paths.catalog_parquet(run)
    table, was = read_catalog(path), read_provenance(path)
    watch = CatalogWatch.start(run, path, file_identity(path), was, table)
    later = {"date": datetime(2027, 3, 4, tzinfo=UTC), "code_version": "9", "known_lenses": "other 1.0"}
    write_catalog(
        table, run, was.model_copy(update={**later, "threshold": 0.6}), expected_n=len(table), hats=False
    )
    assert file_identity(path) != watch.seen[0]
    assert watch.rewritten() is None
    rescored = table.copy()
    first = rescored.index[rescored["rank"] == 1][0]  # its score lowered a little: same order
    rescored.loc[first, "score"] = rescored.loc[first, "score"] - 1e-4
    write_catalog(rescored, run, was.model_copy(update=later), expected_n=len(table), hats=False)
    said = watch.rewritten()
    assert said is not None and "(1 object with another score or spread: now" in said, said
    assert "new object" not in said and "another model" not in said, said
