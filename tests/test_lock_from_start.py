"""A command holds the lock of the folder it writes from before Prefect starts.

Trial: ``lenshunt run SET W & sleep 1; lenshunt run SET W``: the second began a Prefect flow run
("Beginning flow run ...", a URL) before it was refused, as the first took the work directory's lock
only inside its flow. Real FITS set, the real CLI in subprocesses, real ``flock`` locks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cutouts import write_set
from test_cli_process import _lenshunt

from pipeline import paths
from pipeline.errors import OutputBusyError
from pipeline.locking import check_not_busy, lock_being_held, output_lock_from_start
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
REPO = Path(__file__).resolve().parents[1]


def test_a_second_run_is_refused_before_its_flow_starts(tmp_path):
    source = write_set(EUCLID, tmp_path / "set", range(100000, 100004), {100000: 1, 100001: 0})
    work, log = tmp_path / "work", tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", str(source), str(work)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 300
        while lock_being_held(paths.output_lock_file(work, "run")) is None:
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert "Beginning flow run" not in log.read_text()  # held before Prefect started
        second, _ = _lenshunt("run", str(source), str(work))
        assert second.returncode == 1
        assert "is being written by another lenshunt process (run pid" in second.stderr
        assert "Beginning flow run" not in second.stdout + second.stderr
        assert first.wait(timeout=600) == 0, log.read_text()
    finally:
        first.kill()


def test_a_folder_made_for_the_lock_alone_is_removed_again(tmp_path):
    made = tmp_path / "new" / "work"

    def refused_inside_the_flow() -> None:
        with output_lock_from_start(made, purpose="run", advice="wait"):
            assert lock_being_held(paths.output_lock_file(made, "run")).startswith("run pid")
            check_not_busy(made, lock="run", advice="wait")  # this process's own: not busy for its flow
            raise RuntimeError("refused inside the flow")

    with pytest.raises(RuntimeError):
        refused_inside_the_flow()
    assert not (tmp_path / "new").exists()
    with output_lock_from_start(made, purpose="run", advice="wait"):
        (made / "store.zarr").mkdir()  # the command wrote something: kept
    assert sorted(path.name for path in made.iterdir()) == [".lenshunt-run.lock", "store.zarr"]
    kept = tmp_path / "kept"
    kept.mkdir()
    with output_lock_from_start(kept, purpose="run", advice="wait"):
        pass
    assert kept.is_dir()  # not made by it
    held = subprocess.Popen(  # another process holding it: refused, naming it
        [
            sys.executable,
            "-c",
            "import sys, time; from pipeline.locking import output_lock\n"
            "with output_lock(sys.argv[1], purpose='run', advice='wait'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(kept),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.stdout.readline() == "held\n"
        with (
            pytest.raises(
                OutputBusyError, match=r"kept is being written by another lenshunt process \(run pid"
            ),
            output_lock_from_start(kept, purpose="run", advice="wait"),
        ):
            pass
    finally:
        held.kill()
