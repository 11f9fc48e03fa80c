"""A store an ingest is still writing is not one an interrupted ingest left: commands that report the
ingest's uncommitted plan name the running ingest (its pid, since when) and say the counts are partial.

New-user trial: while ``lenshunt ingest SRC STORE`` ran, ``lenshunt info STORE`` and ``lenshunt score``
said "an interrupted ingest planned 1000 more objects ... rerun `lenshunt ingest ...` to finish it"
(a second ingest at that moment rightly said the store "is being written by another lenshunt process").
Real CLI processes and real Zarr stores; the writer lock held by another real process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from cutouts import write_set
from locks import lock_held_elsewhere
from test_pending_ingest import EUCLID, IDS, _killed_before_a_region, interrupt_ingest

from pipeline import paths
from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.store.ingestion import ingest, start_plan
from pipeline.store.zarr_store import create_store

REPO = Path(__file__).resolve().parents[1]
SINCE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
"""The holder's start time, as :func:`pipeline.locking.lock_holder` writes it."""


def _lenshunt(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"  # info and a refused score never reach Prefect
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=180,
    )


def _line(out: str, head: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith(head)]
    return line


def test_info_of_a_store_being_written_names_the_ingest_and_says_the_counts_are_partial(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    store = tmp_path / "s.zarr"
    create_store(store, EUCLID, source=str(source))
    with lock_held_elsewhere(paths.store_lock_file(store), f"ingest of {source}") as pid:
        result = _lenshunt("info", str(store))  # the ingest has not planned its objects yet
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(
            rf"writing    an ingest is still writing {re.escape(str(store))} \(ingest of "
            rf"{re.escape(str(source))} pid {pid} on \S+ since {SINCE}\): the counts are partial until "
            "it finishes",
            _line(result.stdout, "writing"),
        ), result.stdout
        start_plan(store, np.arange(100000, 100007), source=str(source))  # its plan, nothing committed
        result = _lenshunt("info", str(store))
    assert result.returncode == 0, result.stderr
    assert "interrupted" not in result.stdout and "\nwriting " not in result.stdout, result.stdout
    assert re.fullmatch(
        rf"pending    an ingest is still writing {re.escape(str(store))} "
        rf"\(ingest of {re.escape(str(source))} pid {pid} on \S+ since {SINCE}\): "
        "it planned 7 more objects, not committed yet, left out by score, train and cutout; "
        "the counts are partial until it finishes",
        _line(result.stdout, "pending"),
    ), result.stdout
    result = _lenshunt("info", str(store))  # the ingest killed: interrupted now, as before
    assert _line(result.stdout, "pending") == (
        "pending    an interrupted ingest planned 7 more objects, not committed yet, left out by score, "
        f"train and cutout: rerun `lenshunt ingest {source} {store}` to finish it"
    ), result.stdout


def test_score_of_a_store_being_written_with_nothing_committed_says_to_wait_in_one_line(tmp_path):
    store, interrupted = _killed_before_a_region(tmp_path, "nothing to score")
    source = tmp_path / "src"
    with lock_held_elsewhere(paths.store_lock_file(store), f"ingest of {source}") as pid:
        result = _lenshunt("score", str(store), "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and result.stdout == "", result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"lenshunt score: error: {re.escape(str(store))} holds no committed object yet \(an ingest is "
        rf"still writing it, ingest of {re.escape(str(source))} pid {pid} on \S+ since {SINCE}, and "
        r"planned 6 objects: wait for it to finish and rerun\): nothing to score",
        line,
    ), line
    assert not (tmp_path / "o").exists()
    result = _lenshunt("score", str(store), "--out", str(tmp_path / "o"))  # killed: interrupted, as before
    assert result.returncode == 1 and result.stderr.strip() == f"lenshunt score: error: {interrupted}"


def test_score_and_cutout_of_a_store_being_written_name_the_running_ingest(tmp_path, dask_client):
    """Scoring a store being written keeps to its committed rows (README; as a second ingest's refusal
    is the writer lock's): it goes on, and says which ingest is still adding the rest."""
    source = write_set(EUCLID, tmp_path / "src", IDS[:4])
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=4)
    write_set(EUCLID, source, IDS[4:])
    interrupt_ingest(EUCLID, source, store, 4, 8)  # as a running ingest has it: a region written
    with lock_held_elsewhere(paths.store_lock_file(store), f"ingest of {source}") as pid:
        result = score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
        cutout = _lenshunt("cutout", str(store), str(IDS[5]), "--out", str(tmp_path / "cut"))
    assert (result.n_scored, result.n_objects) == (4, 4)
    [warning] = [line for line in result.summary().splitlines() if "ingest" in line]
    assert re.fullmatch(
        rf"  WARNING: an ingest is still writing {re.escape(str(store))} "
        rf"\(ingest of {re.escape(str(source))} pid {pid} on \S+ since {SINCE}\): "
        "it planned 8 more objects, not committed yet, which this run does not score; "
        "the counts are partial until it finishes, then score again",
        warning,
    ), warning
    assert "interrupted" not in result.summary()
    [line] = cutout.stderr.strip().splitlines()
    assert line.startswith(
        f"lenshunt cutout: error: object {IDS[5]} is not in {store} yet: an ingest is still writing "
        f"{store} (ingest of {source} pid {pid} on "
    ) and line.endswith(
        f"it planned 8 more objects, not committed yet, among them {IDS[5]}; the counts are partial until "
        "it finishes, then write its cutouts again"
    ), line
