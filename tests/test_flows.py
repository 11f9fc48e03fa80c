"""Real Prefect flow runs (a temporary Prefect API) of ingest, score and the end-to-end run."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundles import make_bundle
from cutouts import band_file, write_set

from flows.artifacts import folder_key
from flows.cli import COMMANDS
from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.store import open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("flows")
    ids = list(range(300000, 300030))
    source = write_set(EUCLID, root / "src", ids, {i: int(i % 2) for i in ids})
    band_file(EUCLID, source, 300004, "H").write_bytes(b"garbage" * 10)
    return root, source, ids


def test_ingest_then_score_flows(prefect_harness, labelled_set, tmp_path):
    from flows.ingest import ingest_flow
    from flows.score import score_flow

    _, source, ids = labelled_set
    store = tmp_path / "store.zarr"
    report = ingest_flow(str(source), str(store), layout="euclid-sglc2", n_workers=1, chunk_objects=16)
    assert report.n_added == len(ids) and report.reasons == {
        "H: not a FITS file (OSError: No SIMPLE card found)": 1
    }
    bundle = make_bundle(store, tmp_path / "bundle")
    result = score_flow(str(store), str(tmp_path / "out"), model=str(bundle), n_workers=1, batch_size=16)
    assert result.n_objects == len(ids) and result.n_scored == len(ids) - 1
    assert len(read_catalog(paths.catalog_fits(tmp_path / "out"))) == len(ids)

    # A graded run scored again (here from scratch) gets the grade consensus back into its catalogs.
    from pipeline.evaluation.grades import GradeLog

    GradeLog(tmp_path / "out" / "grades", "ann").append(ids[0], "A")
    out = str(tmp_path / "out")
    score_flow(str(store), out, model=str(bundle), n_workers=1, batch_size=16, overwrite=True)
    for catalog_path in (paths.catalog_fits(tmp_path / "out"), paths.catalog_parquet(tmp_path / "out")):
        catalog = read_catalog(catalog_path).set_index("object_id")
        assert len(catalog) == len(ids) and catalog.loc[ids[0], "grade_mean"] == 3.0
        assert (catalog["grade_n"] > 0).sum() == 1
    # Trial: a graded run's rerun with nothing new wrote every catalog twice (first without the grade
    # columns, then with them), with a new date; now it is written once, and again not at all.
    files = [paths.catalog_fits(out), paths.catalog_parquet(out), paths.catalog_votable(out)]
    before = [(path.stat().st_ino, path.stat().st_mtime_ns) for path in files]
    again = score_flow(str(store), out, model=str(bundle), n_workers=1, batch_size=16)
    assert [(path.stat().st_ino, path.stat().st_mtime_ns) for path in files] == before
    assert set(again.catalogs_kept) >= {"catalog.fits", "catalog.parquet", "catalog.vot"}, again
    assert read_catalog(paths.catalog_parquet(out)).set_index("object_id").loc[ids[0], "grade_mean"] == 3.0


def test_run_flow_end_to_end_and_incremental(prefect_harness, labelled_set, tmp_path):
    from flows.run import run_flow

    root, source, ids = labelled_set
    store_for_bundle = tmp_path / "bundle-store.zarr"
    from flows.ingest import ingest_flow

    ingest_flow(str(source), str(store_for_bundle), n_workers=1)
    bundle = make_bundle(store_for_bundle, tmp_path / "bundle")
    workdir = tmp_path / "work"
    state = run_flow(
        str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8,
        dashboard=True, return_state=True,
    )  # fmt: skip
    first = state.result()
    check_published_results(state.state_details.flow_run_id, workdir)
    assert (first.n_objects, first.n_new_objects, first.n_scored_new) == (30, 30, 30)
    assert first.metrics is not None and 0.0 <= first.metrics["auroc"] <= 1.0
    metrics = json.loads(paths.metrics_file(workdir / "scores").read_text())
    assert set(metrics) >= {"auroc", "average_precision", "precision", "recall", "f_beta", "tpr0", "tpr10"}
    html = (workdir / "scores" / "report" / "report.html").read_text()
    assert "300000" in html or "3000" in html
    catalog = read_catalog(paths.catalog_parquet(workdir / "scores"))
    written = catalog_files(workdir / "scores")

    # a second run into the work directory while one is going on is refused, naming it
    from locks import lock_held_elsewhere

    from pipeline.errors import OutputBusyError

    held = lock_held_elsewhere(paths.output_lock_file(workdir, "run"), "run")
    with held as pid, pytest.raises(OutputBusyError, match=rf"another lenshunt process \(run pid {pid} on "):
        run_flow(str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8)
    # and while `lenshunt evaluate` writes its scores folder, before it ingests anything (review)
    write_set(EUCLID, source, [300099])
    held = lock_held_elsewhere(paths.score_lock_file(workdir / "scores"), "evaluate")
    with held as pid, pytest.raises(OutputBusyError, match=rf"\(evaluate pid {pid} on "):
        run_flow(str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8)
    assert open_store(workdir / "store.zarr").sizes["object"] == 30
    for path in (source / "Public").rglob("*-300099.fits"):
        path.unlink()
    again = run_flow(str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8)
    assert (again.n_new_objects, again.n_scored_new, again.n_objects) == (0, 0, 30)
    assert read_catalog(paths.catalog_parquet(workdir / "scores")).equals(catalog)
    # nothing new: no catalog file written again (trial: minutes at 2M rows), and the summary says so;
    # the report links them from its files/ folder, the same files on disk (trial: copies of GBs)
    assert catalog_files(workdir / "scores") == written
    assert (
        "catalog unchanged: kept catalog.fits, catalog.parquet, catalog.vot, catalog_hats" in again.summary()
    )
    for name in ("catalog.fits", "catalog.parquet", "catalog.vot"):
        assert (workdir / "scores" / "report" / "files" / name).samefile(workdir / "scores" / name)

    write_set(EUCLID, source, range(300030, 300036))
    later = run_flow(str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8)
    assert (later.n_new_objects, later.n_scored_new, later.n_objects) == (6, 6, 36)
    assert all(catalog_files(workdir / "scores")[name] != state for name, state in written.items())
    assert "catalog unchanged" not in later.summary()
    grown = read_catalog(paths.catalog_parquet(workdir / "scores"))
    assert grown["object_id"].is_unique and sorted(grown["rank"]) == list(range(1, 37))
    assert np.array_equal(open_store(workdir / "store.zarr")["object_id"].values, grown["object_id"].values)
    # a report the run cannot replace (an immutable page): one error naming it, with the catalog
    # written and the way to finish (trial: a stale-report warning, then a bare disk error)
    from flows.run import EvaluationWriteError

    page = workdir / "scores" / "report" / paths.REPORT_FILE
    write_set(EUCLID, source, range(300036, 300038))
    pictures = {path: path.stat().st_mtime_ns for path in page.parent.rglob("*.png")}
    with immutable(page):
        # the command refuses before it ingests anything, in one line (trial: three Prefect errors after
        # the scoring)
        from flows.preflight import PathCheckError, evaluation_writable

        cannot = rf"^{re.escape(str(page))} cannot be written \(Operation not permitted\)"
        with pytest.raises(PathCheckError, match=cannot):
            evaluation_writable(workdir / "scores", "rerun this command")
        with pytest.raises(EvaluationWriteError) as refused:  # the flow itself, past that check
            run_flow(str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8)
    with immutable(paths.catalog_fits(workdir / "scores")):  # trial: found after the ingest and scoring
        from flows.preflight import catalog_writable

        with pytest.raises(PathCheckError, match=r"catalog\.fits cannot be written \(Operation not"):
            catalog_writable(workdir / "scores", "rerun this command")
    # nothing of the evaluation was written (trial: new gallery pictures stood beside the old page)
    assert pictures and {path: path.stat().st_mtime_ns for path in page.parent.rglob("*.png")} == pictures
    catalog_fits = paths.catalog_fits(workdir / "scores")
    assert str(refused.value).startswith(
        f"the catalog is written ({catalog_fits}), but its evaluation could not be written in full: "
    )
    assert not list(page.parent.glob(".*.tmp"))  # the failed write left no temporary (trial)
    assert f"in full: {page}: Operation not permitted; make that writable (e.g. chmod u+w, chattr -i)" in str(
        refused.value
    )
    assert str(refused.value).endswith(
        f"then `lenshunt evaluate {workdir / 'scores'} --store {workdir / 'store.zarr'}` makes it (or rerun "
        "this command)"
    )
    assert len(read_catalog(catalog_fits)) == 38
    finished = run_flow(str(source), str(workdir), model=str(bundle), n_workers=1, batch_size=16, top_n=8)
    assert finished.n_objects == 38 and finished.n_scored_new == 0 and page.is_file()


@contextlib.contextmanager
def immutable(path: Path):
    """``path`` made immutable (``chattr +i``: not even root may replace or delete it) meanwhile."""
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"chattr +i is not available here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def check_published_results(flow_run_id, workdir):
    """The run's artifacts and log lines, read back from the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send the queued log lines before reading them back
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    folder = folder_key(workdir / "scores")  # keys of this work directory (trial: two mixed in one)
    assert folder == f"{workdir.name.lower()}-{folder[-6:]}"
    names = {
        f"lenshunt-metrics-{folder}": "lenshunt-metrics", f"lenshunt-outputs-{folder}": "lenshunt-outputs",
        f"lenshunt-outputs-{folder}-files": "lenshunt-outputs-files",
        f"lenshunt-top-candidates-{folder}": "lenshunt-top-candidates",
        f"lenshunt-flag-counts-{folder}": "lenshunt-flag-counts",
    }  # fmt: skip
    artifacts = {names[a.key]: a for a in found if a.key in names}
    assert len(artifacts) == len(names), sorted(a.key for a in found)
    metrics = {row["metric"]: row["value"] for row in json.loads(artifacts["lenshunt-metrics"].data)}
    reference = json.loads(paths.metrics_file(workdir / "scores").read_text())
    assert metrics["auroc"] == pytest.approx(reference["auroc"], abs=1e-4)
    assert len(f"{metrics['auroc']}".split(".")[-1]) <= 4
    report = (workdir / "scores" / "report" / "report.html").resolve()
    assert (
        artifacts["lenshunt-outputs"].data.startswith("[")
        and report.as_uri() in artifacts["lenshunt-outputs"].data
    )
    files = artifacts["lenshunt-outputs-files"].data
    assert "catalog.fits" in files and "catalog.parquet" in files and "metrics.json" in files
    top = json.loads(artifacts["lenshunt-top-candidates"].data)
    catalog = read_catalog(paths.catalog_parquet(workdir / "scores")).sort_values("rank")
    assert [row["object_id"] for row in top] == catalog["object_id"].head(10).tolist()
    assert [row["rank"] for row in top] == list(range(1, 11))
    flags = {row["flag"]: row["objects"] for row in json.loads(artifacts["lenshunt-flag-counts"].data)}
    assert flags["UNREADABLE"] == 1 and flags["NOT_SCORED"] == 1 and flags["none"] == 29
    dashboard = [log.message for log in logs if "Dask dashboard: http://127.0.0.1:" in log.message]
    assert dashboard, "the Dask dashboard URL is not in the run's Prefect log"


def catalog_files(scores: Path) -> dict[str, tuple[int, int]]:
    """(inode, modification time in ns) of the run's catalog files and its HATS catalog's properties."""
    names = ("catalog.fits", "catalog.parquet", "catalog.vot", "catalog_hats/collection.properties")
    return {name: ((scores / name).stat().st_ino, (scores / name).stat().st_mtime_ns) for name in names}


def test_cli_help_for_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert name in result.stdout
        sub = subprocess.run(
            [sys.executable, "-m", "flows.cli", name, "--help"], capture_output=True, text=True, check=True
        )
        assert "usage: lenshunt" in sub.stdout and "--help" in sub.stdout


def test_cli_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "info", str(tmp_path / "nope.zarr")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "error: no store at" in result.stderr and "Traceback" not in result.stderr


def test_deterministic_failure_in_a_flow_runs_once_and_logs_no_traceback(
    prefect_harness, labelled_set, tmp_path
):
    """A store of another set: refused by the task once (no retry), logged without a traceback."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.failures import quiet_expected_tracebacks
    from flows.ingest import ingest_flow
    from pipeline.errors import SourceMismatchError

    root, source, ids = labelled_set
    other = write_set(EUCLID, tmp_path / "other", ids[:4])
    store = tmp_path / "store.zarr"
    ingest_flow(str(other), str(store), n_workers=1)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(logging.Formatter().format(record))  # with any traceback
    logging.getLogger("prefect").addHandler(handler)
    quiet_expected_tracebacks()
    try:
        state = ingest_flow(str(source), str(store), n_workers=1, return_state=True)
    finally:
        logging.getLogger("prefect").removeHandler(handler)
    assert state.is_failed()
    with pytest.raises(SourceMismatchError, match="holds the objects of"):
        state.result()
    with get_client(sync_client=True) as client:
        flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        task_runs = client.read_task_runs(flow_run_filter=flow_filter)
    assert [run.run_count for run in task_runs] == [1]
    logged = "\n".join(lines)
    assert "SourceMismatchError" in logged and "Traceback" not in logged


def test_the_run_summary_says_how_many_objects_have_a_score():
    """Review: the run's summary said "40 scored now" where 3 of the 40 were NOT_SCORED (37/40)."""
    from flows.run import RunSummary

    summary = RunSummary(
        store="s.zarr", n_objects=40, n_new_objects=40, n_scored_new=40, n_scored=37, n_reread=2,
        n_rewritten=1, catalog_fits="c.fits", catalog_parquet="c.parquet", report="r.html", metrics=None,
    ).summary()  # fmt: skip
    assert summary.splitlines()[0] == (
        "objects: 40 (40 new, 2 re-read as their files changed (1 rewritten), 40 processed by the model now; "
        "37 with a score in all)"
    )


def test_checking_that_a_file_can_be_replaced_changes_nothing(tmp_path):
    """The probe before an evaluation writes (pipeline.atomic.check_replaceable): the same bytes, inode,
    mode and times after it, a link still a link, no temporary left; an immutable file or a folder that
    takes no new file fails as the real write would."""
    import os

    from pipeline.atomic import check_replaceable

    page = tmp_path / "report" / "report.html"
    page.parent.mkdir()
    page.write_text("<html>old</html>")
    page.chmod(0o444)
    os.utime(page, ns=(10**18, 10**18))
    inode = page.stat().st_ino
    check_replaceable(page)
    assert page.read_text() == "<html>old</html>" and page.stat().st_mtime_ns == 10**18
    assert page.stat().st_ino == inode and page.stat().st_nlink == 1  # not copied over itself (trial)
    assert oct(page.stat().st_mode & 0o777) == "0o444"
    link = tmp_path / "metrics.json"
    link.symlink_to(page)
    check_replaceable(link)
    assert link.is_symlink()
    check_replaceable(tmp_path / "new" / "deeper" / "metrics.json")  # made later under tmp_path
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["metrics.json", "report", "report.html"]
    with immutable(page), pytest.raises(PermissionError) as refused:
        check_replaceable(page)
    assert refused.value.filename == str(page) and not list(page.parent.glob(".*"))
    with immutable(page.parent), pytest.raises(PermissionError) as refused:  # a folder that takes no file
        check_replaceable(page)
    assert refused.value.filename == str(page.parent)  # named, not a temporary (trial)
    if os.geteuid() != 0:  # root writes anywhere
        page.parent.chmod(0o555)
        with pytest.raises(PermissionError) as refused:
            check_replaceable(page.parent / "other.html")
        assert refused.value.filename == str(page.parent)
        page.parent.chmod(0o755)
