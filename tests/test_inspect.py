"""Grading candidates: grade logs, consensus, the catalog's grade columns, the queue and the page.

The run is a real store (the ring-lens store of ``test_training``) with a real catalog; the page
is served by the real ``lenshunt inspect`` process and driven in headless chromium over CDP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cutouts import write_set
from test_training import DAMAGED, IDS, LAYOUT, store  # noqa: F401 - the training tests' store fixture

from pipeline.catalog import (
    CatalogLayout,
    StoreMismatchError,
    make_catalog_table,
    read_catalog,
    store_identity,
    write_catalog,
)
from pipeline.catalog.columns import table_layout
from pipeline.evaluation.consensus import consensus, consensus_columns, grade_labels
from pipeline.evaluation.grades import GradeError, GradeLog, export_grades, latest_grades, read_grades
from pipeline.flags import Flag
from pipeline.inspection import apply_grades, candidate_order, round_change
from pipeline.inspection.queue import binary_entropy
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec
from pipeline.store import ingest, open_store, read_attributes
from pipeline.store.columns import read_band_flags
from schemas.catalog import Provenance, band_flags_column, extra_column_specs

REPO = Path(__file__).resolve().parents[1]
FIRST, SECOND = DAMAGED[1], IDS[5]
THETA_E = OutputSpec("theta_e", "regression_gaussian", unit="arcsec", description="Einstein radius")
LAYOUT_WITH_THETA_E = CatalogLayout(outputs=(DEFAULT_SCORE, THETA_E))


def provenance_for(table: pd.DataFrame, store_path: Path) -> Provenance:
    return Provenance(
        model_id="test-model",
        model_sha256="0" * 64,
        store=str(store_path),
        layout=LAYOUT.name,
        code_version="0",
        date=datetime(2026, 1, 2, tzinfo=UTC),
        threshold=0.5,
        tta=False,
        n_objects=len(table),
        n_scored=int(np.isfinite(table["score"]).sum()),
        store_created=store_identity(read_attributes(store_path)),
        outputs=table_layout(table).outputs_json(),
        rank_by=table_layout(table).rank_by,
    )


def ingested_work(root: Path, ids: list[int], client) -> Path:  # type: ignore[no-untyped-def]
    """``root/work``: a small simulated set of ``ids`` (every other one a lens) ingested for real
    into ``work/store.zarr``, with its run written by :func:`write_run` into ``work/scores``."""
    source = write_set(LAYOUT, root / "src", ids, {object_id: object_id % 2 for object_id in ids})
    ingest(LAYOUT, source, root / "work" / "store.zarr", client, chunk_objects=8)
    write_run(root / "work" / "store.zarr", root / "work" / "scores")
    return root / "work"


def write_run(
    store_path: Path, out: Path, *, seed: int = 0, band_flags: bool = False, scored: bool = True
) -> Path:
    """A run directory: the store's objects with scores that favour its lenses, one unscored.

    The model declares ``score`` and ``theta_e`` (arcsec, with a 1-sigma error): ``theta_e`` of
    the i-th object is ``1 + i / 100 ± 0.25``. Without ``band_flags`` the catalog is one written
    before the per-band ``flags_<band>`` columns existed; with them, as a score run writes them,
    the damaged object ``FIRST`` (its Y file missing) ranks first and ``SECOND`` (its J band
    flagged POSITION_MISMATCH here) second. Not ``scored``: no object has a score (each failed).
    """
    dataset = open_store(store_path)
    ids = dataset["object_id"].values
    labels = dataset["label"].values
    rng = np.random.default_rng(seed)
    scores = np.clip(0.3 + 0.4 * (labels == 1) + rng.normal(0, 0.15, ids.size), 0, 1).astype(np.float32)
    scores[-1 if scored else slice(None)] = np.nan
    flags = dataset["flags"].values.copy()
    extra = {}
    if band_flags:
        extra = {band_flags_column(b).name: v for b, v in read_band_flags(dataset, store_path).items()}
        first, second = (IDS.index(oid) for oid in (FIRST, SECOND))
        scores = np.minimum(scores, 0.9)
        scores[[first, second]] = 1.0, 0.95
        extra["flags_J"][second] |= Flag.POSITION_MISMATCH
        flags[second] |= Flag.POSITION_MISMATCH
    table = make_catalog_table(
        object_ids=ids,
        ra=np.linspace(10, 11, ids.size),
        dec=np.linspace(-5, -4, ids.size),
        outputs={
            "score": scores,
            "score_std": np.zeros(ids.size),
            "theta_e": 1 + np.arange(ids.size) / 100,
            "theta_e_err": np.full(ids.size, 0.25),
            "theta_e_std": np.zeros(ids.size),
        },
        layout=CatalogLayout(LAYOUT_WITH_THETA_E.outputs, extra=extra_column_specs(list(extra))),
        flags=flags,
        model_id="test-model",
        labels=labels,
        extra=extra,
    )
    write_catalog(table, out, provenance_for(table, store_path), expected_n=len(table), hats=False)
    return out


@pytest.fixture(scope="module")
def run_dir(store, tmp_path_factory) -> Path:  # noqa: F811
    return write_run(store, tmp_path_factory.mktemp("inspect") / "run")


@pytest.fixture(scope="module")
def flagged_run(store, tmp_path_factory) -> Path:  # noqa: F811
    """A run whose catalog has the per-band flags columns (``write_run(..., band_flags=True)``)."""
    return write_run(store, tmp_path_factory.mktemp("inspect-flags") / "run", band_flags=True)


@pytest.fixture(scope="module")
def other_store(tmp_path_factory, dask_client) -> Path:
    """Another set numbered like the training store (same object ids, other objects and labels)."""
    root = tmp_path_factory.mktemp("other-set")
    source = write_set(LAYOUT, root / "src", IDS, dict.fromkeys(IDS[:10], 1))
    path = root / "other.zarr"
    ingest(LAYOUT, source, path, dask_client, chunk_objects=32)
    return path


# -- grade logs and consensus -----------------------------------------------------------------


def test_consensus_of_several_inspectors_by_hand():
    grades = pd.DataFrame(
        {
            "object_id": [1, 1, 1, 2, 2, 3, 3, 4],
            "inspector": ["a", "b", "c", "a", "b", "a", "b", "a"],
            "grade": ["A", "B", "A", "X", "C", "B", "C", "skip"],
        }
    )
    table = consensus(grades).set_index("object_id")
    assert list(table.index) == [1, 2, 3]  # object 4 was only skipped
    # object 1: 3, 2, 3 -> mean 8/3, std sqrt(2/9), mode A given by 2 of 3
    assert table.loc[1, "grade_n"] == 3
    assert table.loc[1, "grade_mean"] == pytest.approx(8 / 3)
    assert table.loc[1, "grade_std"] == pytest.approx(np.sqrt(2 / 9))
    assert table.loc[1, "grade_mode"] == "A"
    assert table.loc[1, "grade_agreement"] == pytest.approx(2 / 3)
    # object 2: X and C tie; mean 0.5 is equally near both -> the lower grade, X (trial: C)
    assert table.loc[2, "grade_mean"] == pytest.approx(0.5)
    assert table.loc[2, "grade_mode"] == "X" and table.loc[2, "grade_tie"] == "C vs X"
    assert table.loc[2, "grade_agreement"] == pytest.approx(0.5)
    # object 3: B and C, mean 1.5 -> C (trial: B); object 1 had a majority, no tie
    assert table.loc[3, "grade_mode"] == "C" and table.loc[3, "grade_tie"] == "B vs C"
    assert table.loc[1, "grade_tie"] == ""
    labels = grade_labels(consensus(grades))
    assert labels.to_dict() == {1: 1, 2: -1, 3: 1}
    assert grade_labels(consensus(grades), c_as="lens").to_dict() == {1: 1, 2: 1, 3: 1}
    assert grade_labels(consensus(grades), c_as="nonlens").to_dict() == {1: 1, 2: 0, 3: 1}
    columns = consensus_columns(np.array([4, 1]), consensus(grades))
    assert columns["grade_n"].tolist() == [0, 3]
    assert np.isnan(columns["grade_mean"][0]) and columns["grade_mode"].tolist() == ["", "A"]


def test_grade_log_survives_a_torn_line_and_latest_grade_wins(tmp_path):
    log = GradeLog(tmp_path, "ann")
    log.append(5, "B", score=0.8, model_id="m", time="2026-01-01T00:00:01.000000Z")
    log.append(6, "x", score=float("nan"), model_id="m", time="2026-01-01T00:00:02.000000Z")
    log.close()
    with open(tmp_path / "ann.jsonl", "ab") as handle:  # a kill in mid-write
        handle.write(b'{"object_id": 7, "grade": "A", "insp')
    log = GradeLog(tmp_path, "ann")  # a restarted server appends on a fresh line
    log.append(5, "A", score=0.8, model_id="m", time="2026-01-01T00:00:03.000000Z")
    log.close()
    rows = read_grades(tmp_path)
    assert rows.attrs["n_bad_lines"] == 1
    assert rows.attrs["bad_lines"] == [f"{tmp_path / 'ann.jsonl'} line 3"]  # trial: the file was not named
    assert rows["grade"].tolist() == ["B", "X", "A"]
    assert np.isnan(rows["score"].iloc[1])
    latest = latest_grades(rows)
    assert latest[["object_id", "grade"]].values.tolist() == [[5, "A"], [6, "X"]]
    with pytest.raises(GradeError, match="not one of"):
        GradeLog(tmp_path, "ann").append(5, "D")
    with pytest.raises(GradeError, match="inspector name"):
        GradeLog(tmp_path, "../evil")


def test_exported_grades_are_read_by_astropy_and_pandas(tmp_path):
    log = GradeLog(tmp_path / "grades", "ann")
    log.append(5, "B", score=0.8, model_id="m")
    log.append(5, "C", score=0.8, model_id="m")
    GradeLog(tmp_path / "grades", "bob").append(5, "A", score=0.8, model_id="m")
    parquet, fits_path = export_grades(tmp_path)
    from astropy.table import Table

    table = Table.read(fits_path)
    assert sorted(zip(table["inspector"], table["grade"])) == [("ann", "C"), ("bob", "A")]
    assert read_grades(parquet)["grade"].tolist() == ["C", "A"]
    assert consensus(read_grades(fits_path))["grade_mean"].tolist() == [2.0]


# -- the queue ----------------------------------------------------------------------------------


def test_candidate_orders():
    catalog = pd.DataFrame(
        {
            "object_id": [10, 11, 12, 13, 14],
            "score": [0.95, 0.55, 0.1, np.nan, 0.45],
            "score_std": [0.0, 0.0, 0.0, np.nan, 0.0],
            "rank": [1, 2, 4, 5, 3],
        }
    )
    assert candidate_order(catalog, "score").tolist() == [10, 11, 14, 12]
    # equal entropy for 0.55 and 0.45: ties by rank
    assert candidate_order(catalog, "uncertainty").tolist() == [11, 14, 12, 10]
    assert binary_entropy(np.array([0.5]))[0] == pytest.approx(1.0)
    with_spread = catalog.assign(score_std=[0.3, 0.01, 0.2, np.nan, 0.0])
    assert candidate_order(with_spread, "uncertainty").tolist() == [10, 12, 11, 14]
    shuffled = candidate_order(catalog, "random", seed=3)
    assert sorted(shuffled.tolist()) == [10, 11, 12, 14]
    assert candidate_order(catalog.iloc[::-1], "random", seed=3).tolist() == shuffled.tolist()
    assert candidate_order(catalog, "score", exclude={10, 14}).tolist() == [11, 12]
    with pytest.raises(ValueError, match="order must be one of"):
        candidate_order(catalog, "best")


# -- the catalog's grade columns --------------------------------------------------------------


def test_apply_writes_the_consensus_into_every_catalog_format(store, tmp_path):  # noqa: F811
    import lsdb

    out = write_run(store, tmp_path / "run")
    ids = read_catalog(out)["object_id"].to_numpy()
    GradeLog(out / "grades", "ann").append(ids[0], "A")
    GradeLog(out / "grades", "bob").append(ids[0], "B")
    GradeLog(out / "grades", "bob").append(ids[1], "X")
    GradeLog(out / "grades", "carl").append(ids[2], "skip")  # no grade: counted apart (trial: as a grade)
    summary = apply_grades(out)
    assert summary["n_graded"] == 2 and summary["n_multiple"] == 1
    for name in ("catalog.parquet", "catalog.fits", "catalog.vot"):
        catalog = read_catalog(out / name).set_index("object_id")
        assert catalog.loc[ids[0], "grade_mean"] == pytest.approx(2.5), name
        assert catalog.loc[ids[0], "grade_agreement"] == pytest.approx(0.5), name
        assert catalog.loc[ids[1], "grade_mode"] == "X", name
        assert (catalog["grade_n"] > 0).sum() == 2, name
        assert catalog.attrs["columns"]["grade_mean"]["ucd"] == "meta.code.qual;stat.mean"
    hats = lsdb.read_hats(out / "catalog_hats").compute().set_index("object_id")
    assert hats.loc[ids[0], "grade_n"] == 2
    assert (out / "grades" / "grades.fits").is_file()
    GradeLog(out / "grades", "bob").append(ids[1], "A")  # regraded: apply again replaces the columns
    apply_grades(out, hats=False)
    assert read_catalog(out).set_index("object_id").loc[ids[1], "grade_mode"] == "A"

    from pipeline.evaluation import evaluate_run

    report = evaluate_run(out, store, top_n=2).report_path.read_text()
    section = report[report.index('<section id="grades">') :]
    nav = report[report.index("<nav>") : report.index("</nav>")]
    assert '<a href="#grades">Visual grades</a>' in nav  # trial: the section had no link at the top
    assert "2 objects graded (3 grades by ann, bob; 1 skipped, not counted)" in " ".join(section.split())
    assert f"<td>{ids[0]}</td>" in section
    # another threshold than the catalog's (0.5): the page names the one its numbers use (trial)
    page = " ".join(evaluate_run(out, store, top_n=2, threshold=0.9).report_path.read_text().split())
    assert "score is at least the threshold 0.9." in page and "Candidates (score ≥ 0.9)" in page
    assert "threshold 0.5" not in page
    # and says the catalog files record another (trial: `evaluate --threshold 0.3`, files at 0.6, unsaid)
    note = "(the threshold of this evaluation; the catalog files, written by the score run, record 0.5)"
    assert note in page
    assert "the catalog files, written by the score run, record" not in report


def test_an_evaluation_refuses_a_gallery_it_cannot_write_and_keeps_only_its_candidates(
    run_dir,
    store,  # noqa: F811
    tmp_path,
):
    """Trial: an immutable report/gallery was found after the metrics and figures were new; and the
    gallery kept every earlier evaluation's pictures and pages."""
    import shutil

    from test_flows import immutable

    from pipeline import paths
    from pipeline.evaluation import evaluate_run

    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    shutil.rmtree(out / "grades", ignore_errors=True)
    evaluate_run(out, store, top_n=3)
    gallery = paths.report_dir(out) / "gallery"
    mine = [gallery / "2026-12-04.png", gallery / "42.html", gallery / "notes.txt"]  # the user's
    for path in mine:
        path.write_text("the user's")
    before = {path: path.stat().st_mtime_ns for path in paths.report_dir(out).rglob("*")}
    with immutable(gallery), pytest.raises(PermissionError) as refused:
        evaluate_run(out, store, top_n=3)
    assert refused.value.filename == str(gallery)
    assert {path: path.stat().st_mtime_ns for path in paths.report_dir(out).rglob("*")} == before
    (mine[2]).chmod(0o444)
    with immutable(mine[2]):  # the user's file is not the evaluation's business (trial: refused)
        evaluate_run(out, store, top_n=3)
    shutil.move(gallery, tmp_path / "aside")
    gallery.write_text("a file where the gallery goes")  # trial: found after metrics and figures
    metrics_before = paths.metrics_file(out).stat().st_mtime_ns if paths.metrics_file(out).exists() else None
    with pytest.raises(NotADirectoryError):
        evaluate_run(out, store, top_n=3)
    assert (paths.metrics_file(out).stat().st_mtime_ns if paths.metrics_file(out).exists() else None) == (
        metrics_before
    )
    gallery.unlink()
    shutil.move(tmp_path / "aside", gallery)
    top = read_catalog(out).nsmallest(3, "rank")["object_id"].tolist()
    evaluate_run(out, store, top_n=2)

    def ids_in_gallery() -> set[int]:
        return {int(p.name.split(".")[0].split("-")[0]) for p in gallery.iterdir() if p.name.startswith("5")}

    assert ids_in_gallery() == set(top[:2]) and all(path.is_file() for path in mine)
    (gallery / ".lenshunt-gallery.json").unlink()  # a gallery written before the record: by name
    evaluate_run(out, store, top_n=1)
    assert ids_in_gallery() == set(top[:1]) and (gallery / "notes.txt").is_file()


def test_inspect_command_selects_exports_applies_and_compares(run_dir, store, tmp_path, capsys):  # noqa: F811
    from flows.cli import main

    run = tmp_path / "run"
    import shutil

    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("grades"))
    assert main(["inspect", str(run), "--inspector", "ann", "--order", "uncertainty", "--select", "5"]) == 0
    selected = pd.read_csv(run / "grades" / "selection-ann-uncertainty.csv")["object_id"].tolist()
    assert selected == candidate_order(read_catalog(run), "uncertainty")[:5].tolist()
    log = GradeLog(run / "grades", "ann")
    log.append(selected[0], "A")
    log.close()
    assert main(["inspect", str(run), "--inspector", "ann", "--order", "uncertainty", "--select", "5"]) == 0
    again = pd.read_csv(run / "grades" / "selection-ann-uncertainty.csv")["object_id"].tolist()
    assert again[0] == selected[1]  # graded objects are not selected again
    assert main(["inspect", str(run), "--export"]) == 0
    assert read_grades(run / "grades" / "grades.parquet")["object_id"].tolist() == [selected[0]]
    capsys.readouterr()
    assert main(["inspect", str(run), "--apply"]) == 0
    assert read_catalog(run)["grade_n"].sum() == 1
    printed = capsys.readouterr().out.strip()  # no NaN mean agreement with a single inspector
    assert printed.endswith(
        "1 object graded (modal grade: A 1, B 0, C 0, X 0); none by more than one inspector yet"
    )
    from pipeline.evaluation import evaluate_run

    report = run / "report" / "report.html"
    evaluate_run(run, store, top_n=1)  # trial: its Visual grades stayed the last evaluation's, unsaid
    assert main(["inspect", str(run), "--apply"]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"its report {report} shows the grades of its last evaluation: `lenshunt evaluate` updates it"
        )
    )
    assert main(["inspect", str(run), "--compare", str(run)]) == 0
    change = json.loads((run / "grade-round.json").read_text())
    assert change["n_graded"] == 1 and change["n_lens"] == 1
    assert main(["inspect", str(run), "--inspector", "no/slash"]) == 1
    assert "inspector name 'no/slash' is not usable" in capsys.readouterr().err


# -- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run: Path, port: int, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "inspect", str(run), "--port", str(port), *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "USER": "ann"},
    )
    line = process.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    if not match:
        process.kill()
        raise AssertionError(f"no URL from lenshunt inspect: {line}{process.stdout.read()}")
    process.first_line = line  # what the command said first
    return process, match.group(1)


def get(url: str, **headers) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_server_is_local_only_and_checks_what_it_is_sent(run_dir, tmp_path):
    from pipeline.inspection import InspectError, InspectSession, make_server

    session = InspectSession.open(run_dir, "probe")
    # a catalog written before the flags_<band> columns: each band's flags come from the store
    assert session._candidate(FIRST, 0)["band_flags"] == {"VIS": [], "Y": ["MISSING_FILE"], "J": [], "H": []}
    assert read_catalog(run_dir).columns.str.startswith("flags_").sum() == 0  # the catalog is unchanged
    with pytest.raises(InspectError, match=r"127\.0\.0\.1"):
        make_server(session, "0.0.0.0")
    with pytest.raises(InspectError, match=r"port 99999 is not a port number: give 0-65535"):
        make_server(session, port=99999)
    session.log.close()
    process, url = start_server(run_dir, 0, "--inspector", "probe")
    try:
        taken = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "inspect",
                str(run_dir),
                "--port",
                url.rsplit(":", 1)[1][:-1],
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "USER": "probe2"},
        )
        assert taken.returncode == 1 and "give another --port" in taken.stderr, taken.stderr
        assert not (run_dir / "grades" / "probe2.jsonl").exists()  # a failed start leaves no log
        status, body = get(url + "api/session", Host="evil.example:80")
        assert status == 403 and b"local only" in body
        status, body = get(url + "img/1/composite.png")
        assert status == 404 and b"not in store" in body
        status, body = get(url + "img/abc/VIS.png")  # trial: "invalid literal for int() with base 10"
        assert status == 404 and json.loads(body) == {"error": "no object 'abc': object ids are integers"}
        first = json.loads(get(url + "api/candidates?start=0&n=1")[1])[0]
        assert list(first["band_flags"]) == ["VIS", "Y", "J", "H"]  # from the store (see above)
        status, png = get(url + f"img/{first['object_id']}/composite.png")
        assert status == 200 and png.startswith(b"\x89PNG")
        status, png = get(url + f"img/{first['object_id']}/J.png")
        assert status == 200 and png.startswith(b"\x89PNG")
        form = urllib.request.Request(url + "api/grade", data=b"object_id=1&grade=A", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(form, timeout=30)
        assert refused.value.code == 415
        bad = urllib.request.Request(
            url + "api/grade",
            data=json.dumps({"object_id": first["object_id"], "grade": "Q"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as rejected:
            urllib.request.urlopen(bad, timeout=30)
        assert rejected.value.code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "0 graded, 0 skipped by probe" in output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "99999", "99999 is out of range: give an integer 0..65535"),
        ("--port", "-1", "-1 is out of range: give an integer 0..65535"),
        ("--port", "http", "'http' is not an integer"),
        ("--select", "-3", "-3 is out of range: give an integer >= 1"),
        ("--select", "0", "0 is out of range: give an integer >= 1"),
        ("--seed", "-1", "-1 is out of range: give an integer >= 0"),
        ("--seed", "1.5", "'1.5' is not an integer"),
    ],
)
def test_numeric_options_are_checked_before_anything_runs(run_dir, capsys, option, value, message):
    from flows.cli import main

    before = (
        sorted(path.name for path in (run_dir / "grades").glob("*")) if (run_dir / "grades").is_dir() else []
    )
    with pytest.raises(SystemExit) as stopped:
        main(["inspect", str(run_dir), "--inspector", "opts", option, value])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and message in err and "Traceback" not in err
    after = (
        sorted(path.name for path in (run_dir / "grades").glob("*")) if (run_dir / "grades").is_dir() else []
    )
    assert after == before  # nothing written (--select -3 used to write 279 ids)


def test_the_grade_api_takes_only_an_integer_id_and_a_grade_string(run_dir, tmp_path):
    import shutil

    run_dir = Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades")))
    process, url = start_server(run_dir, 0, "--inspector", "strict")
    log_path = run_dir / "grades" / "strict.jsonl"

    def post(data: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(
            url + "api/grade", data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        first = json.loads(get(url + "api/candidates?start=0&n=1")[1])[0]
        oid = first["object_id"]
        assert isinstance(oid, str)  # a decimal string: a JSON number is rounded in a browser beyond 2**53
        theta_e = read_catalog(run_dir).set_index("object_id").loc[int(oid), "theta_e"]
        assert first["outputs"] == [f"theta_e {theta_e:.2f} ± 0.25 arcsec"]  # the declared outputs
        assert json.loads(get(url + "api/session")[1])["outputs"][0]["unit"] == "arcsec"
        for query in ("start=abc", "n=1.5", "start=0&n=x"):
            status, body = get(url + "api/candidates?" + query)
            assert (status, json.loads(body)) == (400, {"error": "start and n must be integers"}), query
        refused = {
            b'{"object_id": 1e400, "grade": "A"}': "object_id inf is not an integer",
            f'{{"object_id": {oid}.7, "grade": "A"}}'.encode(): f"object_id {oid}.7 is not an integer",
            b'{"object_id": true, "grade": "A"}': "object_id True is not an integer",
            f'{{"object_id": "{oid}.0", "grade": "A"}}'.encode(): f"object_id '{oid}.0' is not an integer",
            f'{{"object_id": " {oid}", "grade": "A"}}'.encode(): f"object_id ' {oid}' is not an integer",
            b'{"object_id": "1e5", "grade": "A"}': "object_id '1e5' is not an integer: give the object's id",
            b'{"object_id": "", "grade": "A"}': "object_id '' is not an integer",
            b'{"object_id": null, "grade": "A"}': "object_id None is not an integer",
            b'{"object_id": NaN, "grade": "A"}': "NaN is not JSON",
            b'{"object_id": 99999999999999999999999, "grade": "A"}': "is outside the int64 range",
            b'{"object_id": "9223372036854775808", "grade": "A"}': "9223372036854775808 is outside the int64",
            b'{"object_id": "999999", "grade": "A"}': "object 999999 is not in the run's catalog",
            b'{"object_id": 999999, "grade": "A"}': "object 999999 is not in the run's catalog",
            f'{{"object_id": {oid}, "grade": 1}}'.encode(): "grade 1 is not a string",
            f'{{"object_id": {oid}, "grade": true}}'.encode(): "grade True is not a string",
            f'{{"object_id": {oid}, "grade": "Q"}}'.encode(): "grade 'Q' is not one of A, B, C, X, skip",
            f'{{"object_id": {oid}}}'.encode(): '{"object_id": "<decimal id>", "grade": "A"}',
            f'[{oid}, "A"]'.encode(): 'send a JSON object {"object_id"',
            b"{not json": "the body is not JSON",
        }
        for body, message in refused.items():
            status, reply = post(body)
            assert status == 400, (body, reply)
            assert set(reply) == {"error"} and message in reply["error"], (body, reply)
            assert not reply["error"].startswith(("'", '"')), reply
        assert not log_path.exists()  # nothing was saved, and the log is made by the first grade
        status, reply = post(f'{{"object_id": {oid}, "grade": "b"}}'.encode())  # a JSON integer is taken
        assert status == 200 and reply["saved"]["object_id"] == oid and reply["saved"]["grade"] == "B"
        status, reply = post(f'{{"object_id": "{oid}", "grade": "b"}}'.encode())  # as the page sends it
        assert status == 200 and reply["saved"]["object_id"] == oid and reply["previous"]["grade"] == "B"

        # a second server of the same inspector and run refuses to start (one log, one writer)
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "inspect",
                str(run_dir),
                "--inspector",
                "strict",
                "--port",
                "0",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert second.returncode == 1, second.stderr
        assert f"(pid {process.pid}) is already grading as strict" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    finally:
        process.send_signal(signal.SIGKILL)  # the OS releases the lock of a killed server
        process.wait(timeout=30)
    assert read_grades(log_path)[["object_id", "grade"]].values.tolist() == [[int(oid), "B"]] * 2
    process, url = start_server(run_dir, 0, "--inspector", "strict")
    process.send_signal(signal.SIGTERM)  # and a new server of the same inspector starts
    assert "1 graded, 0 skipped by strict" in process.communicate(timeout=60)[0] and process.returncode == 0


def test_grading_in_a_real_browser_keeps_every_grade(run_dir, tmp_path):
    from cdp import Browser

    port = free_port()
    process, url = start_server(run_dir, port)
    catalog = read_catalog(run_dir)
    order = catalog.sort_values("rank")["object_id"].tolist()
    # trial: "N candidates by score" said of every object offered, where the report counted 78
    threshold = catalog.attrs["provenance"]["threshold"]
    scored = catalog["score"].notna()
    n_candidates = int((catalog.loc[scored, "score"] >= threshold).sum())
    assert 0 < n_candidates < scored.sum()
    assert process.first_line.startswith(
        f"lenshunt inspect: {scored.sum()} objects to grade ({n_candidates} candidates, score >= "
        f"{threshold:g}) by score for ann at "
    ), process.first_line
    log_path = run_dir / "grades" / "ann.jsonl"
    shown = "document.body.dataset.objectId"
    drawn = "document.body.dataset.drawn === document.body.dataset.objectId"  # a grade waits for it
    try:
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for("document.body.dataset.ready === '1'")
            assert int(browser.evaluate(shown)) == order[0]
            # an inline icon: no request for /favicon.ico, a 404 in the console (trial)
            assert browser.evaluate("document.querySelector('link[rel=icon]').href") == "data:,"
            # the composite and the four band panels are drawn and load in the browser
            browser.wait_for("[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
            assert browser.evaluate("document.images.length") == 1 + len(LAYOUT.bands)
            assert browser.evaluate("document.getElementById('composite').naturalWidth") == 48
            # no flags_<band> columns in this catalog: the per-band line and marks from the store's
            first = json.loads(get(url + "api/candidates?start=0&n=1")[1])[0]
            assert browser.evaluate("document.getElementById('band-flags-row').hidden") is False
            n_flagged = sum(bool(names) for names in first["band_flags"].values())
            assert browser.evaluate("document.querySelectorAll('#bands figure.flagged').length") == n_flagged
            theta_e = read_catalog(run_dir).set_index("object_id").loc[order[0], "theta_e"]
            outputs = browser.evaluate("document.getElementById('outputs').textContent")
            assert outputs == f"theta_e {theta_e:.2f} ± 0.25 arcsec"  # the model's declared outputs
            for key, position in (("a", 1), ("b", 2), ("x", 3)):
                browser.wait_for(drawn)
                browser.press(key)
                browser.wait_for(f"{shown} === '{order[position]}' && !document.body.dataset.busy")
            browser.press("ArrowLeft")  # back to the third and regrade it C
            browser.wait_for(f"{shown} === '{order[2]}' && {drawn}")
            assert browser.evaluate("document.getElementById('grade').textContent") == "X"
            browser.press("c")
            browser.wait_for(f"{shown} === '{order[3]}' && !document.body.dataset.busy")
            rows = read_grades(log_path)
            assert rows[["object_id", "grade"]].values.tolist() == [
                [order[0], "A"],
                [order[1], "B"],
                [order[2], "X"],
                [order[2], "C"],
            ]
            assert set(rows["inspector"]) == {"ann"} and rows["time"].str.endswith("Z").all()

            browser.send("Page.reload")  # a reload keeps the grades and resumes after them
            browser.wait_for("document.body.dataset.ready === '1'")
            assert int(browser.evaluate(shown)) == order[3]
            for position, grade in ((2, "C"), (1, "B"), (0, "A")):
                browser.press("Backspace")
                browser.wait_for(f"{shown} === '{order[position]}'")
                assert browser.evaluate("document.getElementById('grade').textContent") == grade

            process.send_signal(signal.SIGKILL)  # nothing is lost
            process.wait(timeout=30)
            assert latest_grades(read_grades(log_path))["grade"].tolist() == [
                g for _, g in sorted({order[0]: "A", order[1]: "B", order[2]: "C"}.items())
            ]
            process, url = start_server(run_dir, port)
            browser.send("Page.reload")
            browser.wait_for("document.body.dataset.ready === '1'")
            assert int(browser.evaluate(shown)) == order[3]  # graded objects are left out now
            browser.wait_for(drawn)
            browser.press("a")
            browser.wait_for(f"{shown} === '{order[4]}' && !document.body.dataset.busy")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    latest = latest_grades(read_grades(run_dir / "grades" / "grades.parquet")).set_index("object_id")
    assert latest["grade"].to_dict() == {order[0]: "A", order[1]: "B", order[2]: "C", order[3]: "A"}
    assert (latest["model_id"] == "test-model").all()
    scores = read_catalog(run_dir).set_index("object_id")["score"]
    assert latest["score"].to_numpy() == pytest.approx(scores[latest.index].to_numpy())


def test_the_page_names_the_flagged_band_of_a_candidate(flagged_run, tmp_path):
    from cdp import Browser

    catalog = read_catalog(flagged_run).set_index("object_id")
    assert catalog.loc[FIRST, "flags_Y"] == Flag.MISSING_FILE and catalog.loc[FIRST, "flags_J"] == 0
    process, url = start_server(flagged_run, 0)
    shown = "document.body.dataset.objectId"
    text = "document.getElementById('{}').textContent".format
    marked = "[...document.querySelectorAll('#bands figure.flagged figcaption')].map((c) => c.textContent)"
    try:
        first, second = json.loads(get(url + "api/candidates?start=0&n=2")[1])
        assert (first["object_id"], second["object_id"]) == (str(FIRST), str(SECOND))
        assert first["flags"] == ["MISSING_FILE"]  # the object's flags do not say which band
        assert first["band_flags"] == {"VIS": [], "Y": ["MISSING_FILE"], "J": [], "H": []}
        assert second["band_flags"] == {"VIS": [], "Y": [], "J": ["POSITION_MISMATCH"], "H": []}
        with Browser(tmp_path / "profile") as browser:
            browser.navigate(url)
            browser.wait_for("document.body.dataset.ready === '1'")
            assert int(browser.evaluate(shown)) == FIRST
            browser.wait_for("[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
            assert browser.evaluate(text("flags")) == "MISSING_FILE"
            assert browser.evaluate("document.getElementById('band-flags-row').hidden") is False
            assert browser.evaluate(text("band-flags")) == "Y: MISSING_FILE"
            assert browser.evaluate(marked) == ["Y: no pixels, MISSING_FILE"]  # the Y panel says so
            assert "band file missing" in browser.evaluate("document.querySelector('#bands .flagged').title")
            browser.press("ArrowRight")
            browser.wait_for(f"{shown} === '{SECOND}' && !document.body.dataset.busy")
            assert browser.evaluate(text("band-flags")) == "J: POSITION_MISMATCH"
            assert browser.evaluate(marked) == ["J: POSITION_MISMATCH"]
            browser.press("ArrowRight")  # a clean candidate: "none", no panel marked
            browser.wait_for(f"{shown} !== '{SECOND}' && !document.body.dataset.busy")
            assert browser.evaluate(text("band-flags")) == "none"
            assert browser.evaluate(marked) == []
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_round_change_counts_and_scores():
    before = pd.DataFrame(
        {
            "object_id": [1, 2, 3, 4, 5, 6],
            "score": [0.6, 0.5, 0.4, 0.3, 0.8, 0.1],
            "label": [1, 0, 1, 0, 1, 0],
        }
    )
    after = before.assign(score=[0.9, 0.2, 0.5, 0.2, 0.9, 0.3])
    grades = pd.DataFrame(
        {
            "object_id": [1, 2],
            "grade": ["A", "X"],
            "inspector": ["a", "a"],
            "time": ["t1", "t2"],
            "score": [0.6, 0.5],
            "model_id": ["m", "m"],
        }
    )
    change = round_change(before, after, grades)
    assert change["n_graded"] == 2 and change["n_lens"] == 1 and change["n_nonlens"] == 1
    assert change["mean_score_lens_before"] == pytest.approx(0.6)
    assert change["mean_score_lens_after"] == pytest.approx(0.9)
    assert change["mean_score_nonlens_after"] == pytest.approx(0.2)
    # held out: objects 3..6, labels 1 0 1 0; before 0.4 0.3 0.8 0.1 -> AUROC 1; after 0.5 0.2 0.9 0.3 -> 1
    assert change["n_heldout"] == 4
    assert change["auroc_heldout_before"] == pytest.approx(1.0)
    assert change["auroc_heldout_change_ci95"] is None  # 2 held-out lenses: too few for an interval
    # no graded non-lens: its means are None, null in grade-round.json (trial: a bare NaN, no JSON)
    lens_only = round_change(before, after, grades[grades["grade"] == "A"])
    assert lens_only["mean_score_nonlens_before"] is None and lens_only["mean_score_nonlens_after"] is None
    assert '"mean_score_nonlens_before": null' in json.dumps(lens_only, allow_nan=False)
    # a grade of an id not in the catalogs is left out, and said (trial: counted, 29 graded for 28)
    stray = pd.concat([grades, grades.iloc[:1].assign(object_id=999999, inspector="carl")])
    with_stray = round_change(before, after, stray)
    assert with_stray["n_graded"] == 2 and with_stray["n_lens"] == 1, with_stray
    assert "1 grade(s) of 1 object id(s) not in this run's catalog (e.g. 999999)" in with_stray["notes"][0]
    # trial: a grade made before an ingest re-read its object's images counted as graded (--apply and
    # training leave it out)
    dated = grades.assign(time=["2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:00.000000Z"])
    rewritten = pd.Series({2: pd.Timestamp("2026-12-02", tz="UTC")})  # as pipeline.store.rewrite_times
    outdated = round_change(before, after, dated, rewritten=rewritten)
    assert outdated["n_graded"] == 1 and outdated["n_nonlens"] == 0, outdated
    assert outdated["notes"][0].startswith("1 grade(s) of 1 object(s) (e.g. 2) were made before an ingest")


# -- the store must be the one the run scored: object ids name objects of one set only ------------


def test_inspect_refuses_the_images_of_another_set(run_dir, other_store):
    """The tester's example: ``--store`` of another set numbered like the run's would be graded."""
    from pipeline.inspection import InspectSession

    with pytest.raises(StoreMismatchError, match=r"scored the store \S*store\.zarr .*other\.zarr was"):
        InspectSession.open(run_dir, "wrongstore", store=other_store)
    assert not (run_dir / "grades" / "wrongstore.jsonl").exists()  # nothing started
    command = ["inspect", str(run_dir), "--store", str(other_store), "--select", "3", "--inspector", "x"]
    taken = subprocess.run(
        [sys.executable, "-m", "flows.cli", *command], cwd=REPO, capture_output=True, text=True
    )
    assert taken.returncode == 1, taken.stderr
    lines = taken.stderr.strip().splitlines()
    assert len(lines) == 1 and "another set" in lines[0] and "use the store" in lines[0], taken.stderr


def test_inspect_accepts_a_moved_store_and_refuses_one_replaced_at_its_path(
    store,  # noqa: F811
    other_store,
    tmp_path,
):
    import shutil

    from pipeline.inspection import InspectSession

    scored = Path(shutil.copytree(store, tmp_path / "scored.zarr"))
    run = write_run(scored, tmp_path / "run")
    moved = Path(shutil.copytree(store, tmp_path / "moved.zarr"))  # a copy keeps the store's identity
    session = InspectSession.open(run, "mover", store=moved)
    assert session.images.store == moved and len(session.queue) == len(IDS) - 1  # one unscored
    session.log.close()
    # the run's own store path now holds another set: the default store is checked too
    shutil.rmtree(scored)
    shutil.copytree(other_store, scored)
    with pytest.raises(StoreMismatchError, match="another set"):
        InspectSession.open(run, "mover")


def test_store_check_of_a_catalog_without_the_store_identity(run_dir, store, other_store, tmp_path):  # noqa: F811
    """Catalogs written before ``store_created`` was recorded: only the same path is accepted."""
    from pipeline.catalog import check_run_store, check_same_store, read_provenance

    assert check_run_store(run_dir, store).store_created  # the identity is recorded and matches
    legacy = read_provenance(run_dir).model_copy(update={"store_created": ""})
    check_same_store(legacy, store, read_attributes(store).created, run="old")
    with pytest.raises(StoreMismatchError, match=r"predates store identities.*rescore"):
        check_same_store(legacy, other_store, read_attributes(other_store).created, run="old")


def test_round_change_refuses_runs_of_two_sets(run_dir, other_store, tmp_path):
    """``--compare`` of a run of another set would pair unrelated objects by id."""
    other_run = write_run(other_store, tmp_path / "other-run")
    with pytest.raises(StoreMismatchError, match=r"run before scored the store .*other set"):
        round_change(read_catalog(run_dir), read_catalog(other_run), read_grades(run_dir))


def test_evaluate_refuses_the_gallery_of_another_set(run_dir, other_store):
    """``lenshunt evaluate RUN --store OTHER`` would show another set's images under the run's ids."""
    from pipeline.evaluation import evaluate_run

    with pytest.raises(StoreMismatchError, match="another set"):
        evaluate_run(run_dir, other_store, top_n=2)


def test_a_graded_run_is_not_rescored_from_another_store(run_dir, store, other_store, tmp_path):  # noqa: F811
    """Rescoring another set into a graded run (even with --overwrite) would move its grades onto
    that set's objects, which reuse the ids: refused before anything is discarded."""
    import shutil

    from pipeline.catalog import StoreMismatchError
    from pipeline.scoring.graded import check_grades_belong_to

    graded = tmp_path / "graded"
    shutil.copytree(run_dir, graded)
    shutil.rmtree(graded / "grades", ignore_errors=True)  # earlier tests graded the shared run
    check_grades_belong_to(graded, other_store)  # no grades yet: nothing to protect
    GradeLog(graded / "grades", "ann").append(int(read_catalog(graded)["object_id"].iloc[0]), "A")
    with pytest.raises(
        StoreMismatchError, match=r"holds visual grades .* made on the objects of another store"
    ) as refused:
        check_grades_belong_to(graded, other_store)
    assert str(refused.value).endswith("or score into another directory")  # no other command named (trial)
    check_grades_belong_to(graded, store)  # the store the grades were made on


def test_evaluate_finds_the_store_the_run_recorded(run_dir, store, tmp_path):  # noqa: F811
    """Trial: ``lenshunt evaluate`` required --store, although the run records it (inspect did not)."""
    import argparse
    import shutil

    from flows.evaluate import check
    from flows.preflight import PathCheckError

    args = argparse.Namespace(out=run_dir, store=None)
    check(args)
    assert args.store == store
    with pytest.raises(PathCheckError, match=r"has no catalog\.parquet: give the output directory"):
        check(argparse.Namespace(out=tmp_path, store=None))
    shutil.copytree(run_dir, tmp_path / "work" / "scores")  # a `lenshunt run` work directory given
    with pytest.raises(PathCheckError, match=r"work has no catalog\.parquet: give .*work/scores, the scores"):
        check(argparse.Namespace(out=tmp_path / "work", store=None))
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved, ignore=shutil.ignore_patterns("grades"))
    catalog = read_catalog(moved / "catalog.parquet")
    provenance = provenance_for(catalog, store).model_copy(update={"store": str(tmp_path / "gone.zarr")})
    write_catalog(catalog, moved, provenance, expected_n=len(catalog), hats=False)
    with pytest.raises(PathCheckError, match=r"gone\.zarr that .* scored is not there; give its new place"):
        check(argparse.Namespace(out=moved, store=None))


def test_inspect_refuses_a_folder_that_holds_no_score_run(run_dir, tmp_path, capsys):
    """Trial: ``inspect WORKDIR --export`` (a `lenshunt run` work directory, or a store) wrote empty
    grade tables into it and exited 0; ``--apply`` named a catalog to write with the score stage."""
    import shutil

    from flows.cli import main

    workdir = tmp_path / "work"
    shutil.copytree(run_dir, workdir / "scores", ignore=shutil.ignore_patterns("grades"))
    other = tmp_path / "other"
    other.mkdir()
    for folder, hint in (
        (workdir, f"give {workdir / 'scores'}, the scores of this `lenshunt run` work directory"),
        (other, "give the output directory of `lenshunt score`, or the scores/ folder of a `lenshunt run`"),
    ):
        for options in (["--export"], ["--apply"], ["--inspector", "ann", "--select", "3"]):
            assert main(["inspect", str(folder), *options]) == 1
            lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
            assert lines == [
                f"lenshunt inspect: error: score run directory {folder} holds no score run (no "
                f"catalog.parquet): {hint}"
            ]
    assert sorted(path.name for path in workdir.iterdir()) == ["scores"] and not any(other.iterdir())


def test_select_without_an_inspector_says_it_needs_one_and_why(run_dir, tmp_path):
    """Trial: ``--select 5`` with ``$USER`` unset said only "no inspector name", and the help did
    not say --select needs one (it leaves out what that inspector graded); --export needs none."""
    import shutil

    env = {key: value for key, value in os.environ.items() if key not in ("USER", "LOGNAME")}
    run = Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades")))

    def inspect(*options: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "flows.cli", "inspect", *options]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)

    selected = inspect(str(run), "--select", "5", "--order", "uncertainty")
    assert selected.returncode == 1, selected.stderr
    assert "give --inspector NAME (or set $USER): --select leaves out the objects that inspector graded" in (
        selected.stderr
    )
    assert not list(run.glob("grades/selection-*.csv"))
    assert inspect(str(run), "--export").returncode == 0  # needs no inspector
    helped = " ".join(inspect("--help").stdout.split())
    assert "objects of --order that --inspector (or $USER) has not graded" in helped, helped


def test_apply_without_grades_leaves_the_catalog_as_it_is(run_dir, tmp_path, capsys):
    """Trial: ``inspect --apply`` with no grade rewrote the catalog: "now has the grade consensus: 0
    objects graded"."""
    import shutil

    from flows.cli import main

    run = Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades")))
    log = GradeLog(run / "grades", "ann")
    log.append(read_catalog(run)["object_id"].iloc[0], "skip")  # a skip is no grade
    log.close()
    files = {path: path.stat().st_mtime_ns for path in run.rglob("catalog*") if path.is_file()}
    capsys.readouterr()
    assert main(["inspect", str(run), "--apply"]) == 0
    assert capsys.readouterr().out.strip().startswith(f"no grades yet: catalog {run} left as it is")
    assert {path: path.stat().st_mtime_ns for path in run.rglob("catalog*") if path.is_file()} == files
    assert "grade_n" not in read_catalog(run)


def test_the_report_cards_and_pages_show_the_applied_grade_consensus(run_dir, store, tmp_path):  # noqa: F811
    """Trial: after ``inspect --apply`` the consensus was only in the report's "Visual grades" table;
    no gallery card or candidate page showed an object's visual grade."""
    import shutil

    from flows.cli import main
    from pipeline.evaluation import evaluate_run

    run = Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades")))
    top, second = read_catalog(run).sort_values("rank")["object_id"].tolist()[:2]
    for inspector, grade in (("ann", "A"), ("bob", "B"), ("cy", "A")):
        log = GradeLog(run / "grades", inspector)
        log.append(top, grade)
        log.close()
    assert main(["inspect", str(run), "--apply"]) == 0
    evaluate_run(run, store, top_n=2)
    report = (run / "report" / "report.html").read_text()
    # trial: an A/X split read "A: sure lens": how many gave the modal grade is said where not all did
    assert report.count("graded <b>A</b>: sure lens (mean 2.7 of 3 inspectors; only 2 of 3 gave A)") == 1
    page = (run / "report" / "gallery" / f"{top}.html").read_text()
    assert (
        "<th>Visual grade (consensus)</th><td>A: sure lens (mean 2.7 of 3 inspectors; only 2 of 3 gave A)"
        "</td>" in page
    )
    assert "Visual grade" not in (run / "report" / "gallery" / f"{second}.html").read_text()


def test_the_first_line_counts_candidates_by_the_reports_threshold(run_dir, tmp_path):
    """Trial: after ``lenshunt evaluate RUN --threshold 0.4`` the report counted 4 candidates and
    ``lenshunt inspect`` said 0, by the score run's 0.5."""
    import shutil

    from flows.inspect import _queue_text
    from pipeline.inspection import InspectSession

    run = shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("grades"))
    catalog = read_catalog(run)
    scores = catalog["score"].dropna()
    low = float(scores.quantile(0.25))
    (run / "report").mkdir(exist_ok=True)
    (run / "report" / "evaluation.json").write_text(json.dumps({"threshold": low}))
    session = InspectSession.open(run, "ann")
    try:
        n = int((scores >= low).sum())
        assert _queue_text(session) == f"{len(scores)} objects to grade ({n} candidates, score >= {low:g})"
    finally:
        session.log.close()
