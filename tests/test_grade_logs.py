"""Grades read back from damaged or foreign logs and tables: skipped, counted and said, never a crash.

Trial (the human grading loop): an object id of ``1e30`` crashed ``--export``, ``--apply``,
``evaluate`` and the server's shutdown, ``9223372036854775808`` became a negative id and ``100011.9``
became 100011; a log saved with a byte-order mark (Notepad) lost its first grade; a line naming
ann in ``carl.jsonl`` replaced ann's own grade; an exported table edited with pandas (``'a'``,
``'maybe'``) lost grades without a word in training; grades of ids the catalog does not hold were
counted as graded objects; a grader's CSV in ``grades/`` was ignored without a word. Real logs and
tables are written, read by the real commands.
"""

from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_inspect import get, run_dir, start_server  # noqa: F401 - run_dir: the inspection tests' run
from test_training import store  # noqa: F401 - the store fixture of the training tests

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.evaluation import evaluate_run
from pipeline.evaluation.grade_report import grade_section
from pipeline.evaluation.grades import GradeLog, export_grades, latest_grades, read_grades
from pipeline.inspection import apply_grades
from pipeline.training.config import TrainConfig
from pipeline.training.grades import grade_warnings, labels_from_grades, write_grade_summary

TIME = "2036-12-05T00:00:00Z"
"""Grade times after any store of these tests was made (one made before it is another store's)."""


def line(object_id, grade="A", inspector="lee", time=TIME) -> str:
    """One log line as an editor would write it: ``object_id`` spelled as given (JSON text)."""
    return f'{{"object_id": {object_id}, "grade": "{grade}", "inspector": "{inspector}", "time": "{time}"}}'


@pytest.fixture
def run(run_dir, tmp_path) -> Path:  # noqa: F811
    """A copy of the inspection tests' run without grades, and its scored ids (unscored last)."""
    return Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades")))


def scored_ids(run: Path) -> list[int]:
    catalog = read_catalog(paths.catalog_parquet(run))
    return catalog.loc[np.isfinite(catalog["score"]), "object_id"].tolist()


def test_a_damaged_object_id_is_skipped_and_counted_by_every_reader(run, capsys):
    from flows.cli import main

    good, other = scored_ids(run)[:2]
    damaged = [
        "1e30",  # a float past int64 (trial: OverflowError in every reader)
        "9223372036854775808",  # 2**63 (trial: silently a negative id)
        "-9223372036854775809",
        f"{good}.9",  # trial: silently truncated to the id
        f'"{good}"',
        "true",
        "null",
        "NaN",
    ]
    log = run / "grades" / "lee.jsonl"
    log.parent.mkdir()
    log.write_text(
        "\n".join([line(good, "B"), *(line(value) for value in damaged), line(f"{other}.0")]) + "\n"
    )
    rows = read_grades(log)
    assert rows[["object_id", "grade"]].values.tolist() == [[good, "B"], [other, "A"]]  # x.0 is the id x
    assert rows.attrs["n_bad_lines"] == len(damaged)
    assert rows.attrs["bad_lines"][0] == f"{log} line 2 (object_id 1e+30 is not an integer id)"
    assert (
        rows.attrs["bad_lines"][1]
        == f"{log} line 3 (object_id 9223372036854775808 is outside the int64 range)"
    )
    assert rows.attrs["bad_lines"][3] == f"{log} line 5 (object_id {good}.9 is not an integer id)"

    assert main(["inspect", str(run), "--export"]) == 0
    err = capsys.readouterr().err
    assert (
        f"warning: {len(damaged)} line(s) of the grade logs are not grades" in err and "Traceback" not in err
    )
    assert read_grades(run / "grades" / "grades.parquet")["object_id"].tolist() == [good, other]
    assert main(["inspect", str(run), "--apply"]) == 0
    captured = capsys.readouterr()
    assert "2 objects graded" in captured.out and f"{log} line 2 (object_id 1e+30" in captured.err
    section = grade_section(run, read_catalog(paths.catalog_parquet(run)))  # what evaluate shows
    assert section["summary"]["n_graded"] == 2 and section["summary"]["n_bad_lines"] == len(damaged)

    process, _ = start_server(run, 0, "--inspector", "ann")  # the shutdown exports every log
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and "Traceback" not in output, output
    assert f"{len(damaged)} line(s) of the grade logs are not grades" in output


def test_a_log_saved_with_a_byte_order_mark_and_crlf_keeps_its_first_grade(run, capsys):
    from flows.cli import main

    first, second = scored_ids(run)[:2]
    log = run / "grades" / "ann.jsonl"
    log.parent.mkdir()
    log.write_bytes(b"\xef\xbb\xbf" + f"{line(first, 'A', 'ann')}\r\n{line(second, 'X', 'ann')}\r\n".encode())
    rows = read_grades(run)
    assert rows[["object_id", "grade"]].values.tolist() == [[first, "A"], [second, "X"]]
    assert rows.attrs["n_bad_lines"] == 0
    log.write_bytes(log.read_bytes() + b'{"object_id": 3, "gra')  # and a torn line: --export says it
    assert main(["inspect", str(run), "--export"]) == 0
    err = capsys.readouterr().err
    assert err == (
        "lenshunt inspect: warning: 1 line(s) of the grade logs are not grades (torn by a kill, or damaged) "
        f"and were skipped: {log} line 3\n"
    )
    GradeLog(run / "grades", "ann").append(first, "B", time="2036-12-05T00:00:01Z")  # the server appends
    assert latest_grades(read_grades(run))[["object_id", "grade"]].values.tolist() == [
        [first, "B"],
        [second, "X"],
    ]


def test_an_unpaired_surrogate_in_a_comment_is_refused_and_read_back_as_a_replacement(run, capsys):
    """Trial: a comment posted as ``"arc \\ud800"`` (JSON of a string with an unpaired UTF-16 surrogate,
    as a browser's ``JSON.stringify`` writes one) was logged, and then ``--export``, ``--apply``,
    ``evaluate``, ``train --grades`` and the server's shutdown crashed on it (pyarrow's
    UnicodeEncodeError): the server refuses it, and such a line in a log from elsewhere is read with
    U+FFFD in its place, its grade kept."""
    from flows.cli import main

    good, other = scored_ids(run)[:2]
    process, url = start_server(run, 0, "--inspector", "ann")
    try:
        request = urllib.request.Request(
            url + "api/grade",
            data=b'{"object_id": %d, "grade": "A", "comment": "arc \\ud800 NE"}' % good,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 400
        assert "unpaired UTF-16 surrogate" in json.loads(refused.value.read())["error"]
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and "Traceback" not in output, output
    assert not (run / "grades" / "ann.jsonl").exists()

    log = run / "grades" / "lee.jsonl"  # a log written by another tool holds one
    grade = {"object_id": good, "grade": "B", "inspector": "lee", "time": TIME}
    damaged = json.dumps({**grade, "model_id": "m\udc00", "comment": "arc \ud800 NE"})  # ASCII: "\\ud800"
    log.write_text(f"{damaged}\n{line(other, 'X')}\n")
    rows = read_grades(log)
    assert rows[["object_id", "grade", "comment"]].values.tolist() == [
        [good, "B", "arc \ufffd NE"],
        [other, "X", ""],
    ]
    assert rows["model_id"].tolist() == ["m\ufffd", ""] and rows.attrs["n_bad_lines"] == 0
    assert main(["inspect", str(run), "--export"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    for table in ("grades.parquet", "grades.fits"):
        exported = read_grades(run / "grades" / table).set_index("object_id")["comment"]
        assert exported[good] == "arc \ufffd NE", table
    assert main(["inspect", str(run), "--apply"]) == 0
    assert "2 objects graded" in capsys.readouterr().out
    section = grade_section(run, read_catalog(paths.catalog_parquet(run)))  # what evaluate shows
    assert section["summary"]["n_graded"] == 2
    process, _ = start_server(run, 0, "--inspector", "ann")  # the shutdown exports every log
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and "Traceback" not in output, output


def test_a_line_naming_another_inspector_than_its_log_is_skipped(run, capsys):
    """The file is its inspector's log: ann's line in carl.jsonl does not replace ann's grade."""
    from flows.cli import main

    object_id = scored_ids(run)[0]
    folder = run / "grades"
    GradeLog(folder, "ann").append(object_id, "A", time="2036-12-05T00:00:00.000000Z")
    (folder / "carl.jsonl").write_text(
        line(object_id, "c", "ann", "2036-12-05T01:00:00Z") + "\n" + line(object_id, "X", "carl") + "\n"
    )
    rows = read_grades(run)
    latest = latest_grades(rows)
    assert latest[["inspector", "grade"]].values.tolist() == [["ann", "A"], ["carl", "X"]]
    assert rows.attrs["bad_lines"] == [f"{folder / 'carl.jsonl'} line 1 (inspector 'ann' in the log of carl)"]
    assert main(["inspect", str(run), "--apply"]) == 0
    assert "(inspector 'ann' in the log of carl)" in capsys.readouterr().err
    catalog = read_catalog(paths.catalog_parquet(run)).set_index("object_id")
    assert catalog.loc[object_id, "grade_n"] == 2 and catalog.loc[object_id, "grade_mean"] == pytest.approx(
        1.5
    )


def test_an_edited_grade_table_is_checked_like_a_log(run, store, tmp_path):  # noqa: F811
    """Trial: ``train --grades edited.parquet`` dropped ``'a'`` and ``'maybe'`` with ``n_bad_lines: 0``."""
    lens, other, maybe = scored_ids(run)[:3]
    log = GradeLog(run / "grades", "ann")
    for object_id in (lens, other, maybe):
        log.append(object_id, "X")
    log.close()
    parquet, _ = export_grades(run)
    table = pd.read_parquet(parquet)
    table.loc[table["object_id"] == lens, "grade"] = "a"
    table.loc[table["object_id"] == maybe, "grade"] = "maybe"
    edited = tmp_path / "edited.parquet"
    table.to_parquet(edited, index=False)
    where = f"{edited} row {table.index[table['object_id'] == maybe][0] + 1}"
    rows = read_grades(edited)
    assert dict(zip(rows["object_id"], rows["grade"], strict=True)) == {lens: "A", other: "X"}
    assert rows.attrs["bad_lines"] == [f"{where} (grade 'maybe' is not one of A, B, C, X, skip)"]
    with_gap = table.astype({"object_id": "float64"})
    with_gap.loc[0, "object_id"] = np.nan  # a pandas edit that left an id empty
    with_gap.to_parquet(tmp_path / "gap.parquet", index=False)
    assert (
        read_grades(tmp_path / "gap.parquet")
        .attrs["bad_lines"][0]
        .endswith("row 1 (object_id nan is not an integer id)")
    )

    dataset_ids = np.array(scored_ids(run))
    labels, summary = labels_from_grades(dataset_ids, np.zeros(dataset_ids.size), [str(edited)])
    assert labels[dataset_ids.tolist().index(lens)] == 1  # 'a' is A, a lens
    assert summary["n_bad_lines"] == 1 and summary["n_graded"] == 2
    from pipeline.store import open_store

    (tmp_path / "w").mkdir()
    written = write_grade_summary(
        tmp_path / "w", store, open_store(store, chunks=None), TrainConfig(grades=[str(edited)])
    )
    assert json.loads((tmp_path / "w" / "grades.json").read_text())["n_bad_lines"] == 1
    assert written["bad_lines_where"] == f"{where} (grade 'maybe' is not one of A, B, C, X, skip)"
    assert "(grade 'maybe' is not one of A, B, C, X, skip)" in grade_warnings(written)[0]


def test_grade_times_in_another_zone_are_compared_in_utc_and_a_non_time_is_skipped(run, capsys):
    """Trial: ``19:40:00+01:00`` (18:40 UTC) beat a later ``18:45:00Z`` grade, and a time of
    ``"yesterday"`` beat a real one: times were compared as text. Every time is read back in UTC
    (one without a zone taken as UTC) and a line whose time is no time is skipped and named."""
    from flows.cli import main

    first, second = scored_ids(run)[:2]
    log = run / "grades" / "frank.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "\n".join(
            [
                line(first, "A", "frank", "2036-12-05T19:40:00+01:00"),
                line(first, "X", "frank", "2036-12-05T18:45:00Z"),
                line(second, "B", "frank", "2036-12-05T18:45:00"),
                line(second, "C", "frank", "yesterday"),
            ]
        )
        + "\n"
    )
    rows = read_grades(run)
    assert rows["time"].tolist()[:3] == [
        "2036-12-05T18:40:00.000000Z",
        "2036-12-05T18:45:00.000000Z",
        "2036-12-05T18:45:00.000000Z",
    ]
    assert rows.attrs["bad_lines"] == [f"{log} line 4 (time 'yesterday' is not a time)"]
    latest = latest_grades(rows).set_index("object_id")
    assert latest.loc[first, "grade"] == "X" and latest.loc[second, "grade"] == "B"
    assert main(["inspect", str(run), "--apply"]) == 0
    assert "(time 'yesterday' is not a time)" in capsys.readouterr().err
    catalog = read_catalog(paths.catalog_parquet(run)).set_index("object_id")
    assert catalog.loc[first, "grade_mode"] == "X" and catalog.loc[second, "grade_mode"] == "B"


def test_a_grade_table_made_by_hand_needs_no_score_or_model_id(tmp_path):
    """Trial: ``train --grades`` on a hand-made table insisted on the ``score`` and ``model_id``
    columns, which labels do not need (they are read as unknown, as a log line without them is)."""
    table = pd.DataFrame(
        {"object_id": [7, 8], "grade": ["A", "x"], "inspector": ["kim", "kim"], "time": [TIME, TIME]}
    )
    table.to_parquet(tmp_path / "grades.parquet")
    rows = read_grades(tmp_path / "grades.parquet")
    assert rows[["object_id", "grade"]].values.tolist() == [[7, "A"], [8, "X"]]
    assert rows["score"].isna().all() and (rows["model_id"] == "").all()


def test_grades_of_ids_not_in_the_catalog_are_left_out_and_said(run, store, capsys):  # noqa: F811
    from flows.cli import main

    graded = scored_ids(run)[:4]
    log = GradeLog(run / "grades", "ann")
    for object_id in [*graded, 999999]:
        log.append(object_id, "A")
    log.close()
    summary = apply_grades(run, hats=False)
    assert summary["n_graded"] == 4 and summary["n_A"] == 4 and summary["n_unknown_objects"] == 1
    assert (
        "1 grade(s) of 1 object id(s) not in this run's catalog (e.g. 999999) are left out"
        in (summary["unknown_note"])
    )
    assert main(["inspect", str(run), "--apply"]) == 0
    captured = capsys.readouterr()
    assert "4 objects graded" in captured.out  # trial: 5, 999999 included
    assert "warning: 1 grade(s) of 1 object id(s) not in this run's catalog (e.g. 999999)" in captured.err
    page = evaluate_run(run, store, top_n=1).report_path.read_text()
    assert 'id="grades-unknown"' in page and "(e.g. 999999)" in page
    assert "<td>999999</td>" not in page  # trial: listed with mean 3.00, score n/a
    section = grade_section(run, read_catalog(paths.catalog_parquet(run)))
    assert 999999 not in [row["object_id"] for row in section["rows"]] and section["summary"]["n_graded"] == 4


def test_the_server_refuses_a_grade_of_an_object_it_did_not_score(run):
    catalog = read_catalog(paths.catalog_parquet(run))
    unscored = int(catalog.loc[~np.isfinite(catalog["score"]), "object_id"].iloc[0])
    process, url = start_server(run, 0, "--inspector", "ann")
    try:
        request = urllib.request.Request(
            url + "api/grade",
            data=json.dumps({"object_id": unscored, "grade": "A"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 400
        error = json.loads(refused.value.read())["error"]
        assert error.startswith(
            f"object {unscored} is not in the queue: it has no score in this run (flags: "
        )
        assert error.endswith("only scored objects are graded")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and "0 graded, 0 skipped by ann" in output, output
    assert not (run / "grades" / "ann.jsonl").exists()


def test_a_file_in_grades_that_is_no_log_is_named_once(run, store, capsys):  # noqa: F811
    from flows.cli import main

    object_id = scored_ids(run)[0]
    folder = run / "grades"
    assert main(["inspect", str(run), "--inspector", "ann", "--select", "2"]) == 0  # selection-ann-score.csv
    GradeLog(folder, "ann").append(object_id, "A")
    (folder / "bob.csv").write_text(f"object_id,grade\n{object_id},X\n")
    (folder / ".ann.lock").write_text("1\n")
    assert main(["inspect", str(run), "--export"]) == 0  # grades.parquet, grades.fits: not warned of
    capsys.readouterr()
    for action in ("--export", "--apply"):
        assert main(["inspect", str(run), action]) == 0
        warnings = [text for text in capsys.readouterr().err.splitlines() if "warning" in text]
        assert warnings == [
            f"lenshunt inspect: warning: {folder / 'bob.csv'} is not read: only <inspector>.jsonl grade logs "
            "in grades/ count; grade on the page (lenshunt inspect RUN_DIR), write the grades as "
            "<inspector>.jsonl lines (object_id, grade, inspector, time), or give a table with the columns "
            "of an exported grades.parquet to lenshunt train --grades TABLE"
        ], action
    page = evaluate_run(run, store, top_n=1).report_path.read_text()
    assert 'id="grades-unread"' in page and f"{folder / 'bob.csv'} is not read" in page
    (folder / "ann.jsonl").unlink()  # the CSV alone: the report still says it is not read
    section = grade_section(run, read_catalog(paths.catalog_parquet(run)))
    assert section["summary"]["n_graded"] == 0 and "bob.csv is not read" in section["summary"]["unread_note"]
    (folder / "bob.csv").unlink()
    assert main(["inspect", str(run), "--export"]) == 0
    assert capsys.readouterr().err == ""
    assert grade_section(run, read_catalog(paths.catalog_parquet(run))) is None


def test_training_says_which_graded_ids_are_not_in_its_store(tmp_path):
    log = GradeLog(tmp_path / "grades", "ann")
    for object_id in (1, 999999):
        log.append(object_id, "A")
    log.close()
    labels, summary = labels_from_grades(np.array([1, 2]), np.array([0, 0]), [str(tmp_path / "grades")])
    assert labels.tolist() == [1, 0] and summary["n_not_in_store"] == 1
    assert grade_warnings(summary) == [
        "WARNING: 1 graded object id(s) are not in the training store and were left out (grades of another "
        "set, or an edited log or table); every other grade is used"
    ]
