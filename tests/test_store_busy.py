"""A command whose store another lenshunt process is writing is refused in one line before Prefect and
Dask start (trial: a nightly run that met a daytime ingest still writing its store ended Failed, two
tracebacks; by hand, the refusal came after Prefect's lines and the cluster's start). Real CLI
processes; the store's writer lock held by another real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from locks import lock_held_elsewhere
from test_failure_output import one_class  # noqa: F401 - its source and store fixture

from pipeline import paths
from pipeline.errors import StoreBusyError
from pipeline.store import check_store_not_busy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stored(one_class) -> tuple[Path, Path]:  # noqa: F811 - a source and its store, made by a real ingest
    return one_class


@pytest.mark.parametrize("command", ["ingest", "run"])
def test_a_command_on_a_store_being_written_is_refused_in_one_line_before_prefect(command, stored, tmp_path):
    source, store = stored
    if command == "run":  # the work directory's store
        shutil.copytree(store, tmp_path / "work" / "store.zarr")
        store = tmp_path / "work" / "store.zarr"
        args = ["run", str(source), str(tmp_path / "work"), "--workers", "1"]
    else:
        args = ["ingest", str(source), str(store), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with lock_held_elsewhere(paths.store_lock_file(store), f"ingest of {source}") as pid:
        result = subprocess.run(
            [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, cwd=REPO, env=env
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "", result.stdout  # nothing of Prefect's, no flow run
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        f"lenshunt {command}: error: store {store} is being written by another lenshunt process "
        f"(ingest of {source} pid {pid} on "
    ), line
    assert line.endswith("wait for it to finish and rerun (a rerun adds only what is still missing)"), line


def test_the_probe_names_the_writer_and_passes_once_it_is_gone(stored):
    _, store = stored
    with lock_held_elsewhere(paths.store_lock_file(store), "ingest of elsewhere") as pid:  # noqa: SIM117 (pid)
        with pytest.raises(StoreBusyError, match=rf"\(ingest of elsewhere pid {pid} on "):
            check_store_not_busy(store)
    check_store_not_busy(store)  # the kernel dropped the killed holder's lock
