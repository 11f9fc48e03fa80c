"""A command holds the lock of the folder (or store) it writes from before Prefect starts.

Trial: ``lenshunt run SET W & sleep 1; lenshunt run SET W``: the second began a Prefect flow run
("Beginning flow run ...", a URL) before it was refused, as the first took the work directory's lock
only inside its flow; ``lenshunt train`` and ``lenshunt ingest`` did the same. Real FITS set and
store, the real CLI in subprocesses, real ``flock`` locks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cutouts import write_set
from test_cli_process import _lenshunt
from test_train_stop import QUICK
from test_training import store  # noqa: F401 - the labelled store of the training tests

from pipeline import paths
from pipeline.errors import OutputBusyError, StoreNotFoundError
from pipeline.locking import check_not_busy, lock_being_held, output_lock_from_start
from pipeline.store import read_attributes
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
        # trial: an ingest into the run's store was let in while the run started; the run then failed
        ingest, _ = _lenshunt("ingest", str(source), str(work / "store.zarr"))
        assert ingest.returncode == 1, ingest.stderr
        assert f"store {work / 'store.zarr'} is being written by another lenshunt process (run pid" in (
            ingest.stderr
        )
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
        (made / "scores").mkdir()  # lenshunt's own bookkeeping and empty folders only: removed
        (made / "scores" / ".lenshunt-score.lock").touch()
        (made / ".lenshunt-run.flow-run").write_text("{}")
    assert not (tmp_path / "new").exists()
    with output_lock_from_start(made, purpose="run", advice="wait"):
        (made / "store.zarr").mkdir()  # the command wrote something: kept
        (made / "store.zarr" / "zarr.json").write_text("{}")
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


DEAD_API = "http://127.0.0.1:9/api"
"""A Prefect API that answers nothing: a command given it fails as it reaches Prefect, after its lock."""


@contextlib.contextmanager
def _held_first(
    args: list[str], lock_path: Path, log: Path, api: str | None = None
) -> Iterator[subprocess.Popen]:
    """``lenshunt ARGS`` in a subprocess (given ``api`` as its PREFECT_API_URL, else its own temporary
    server), paused (SIGSTOP) the moment it holds ``lock_path``; killed (SIGKILL) at the end if alive."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with log.open("w") as out:
        first = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1", **({"PREFECT_API_URL": api} if api else {})},
        )
    try:
        deadline = time.monotonic() + 300
        while lock_being_held(lock_path) is None:
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)
        yield first
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()


def _failing_at_prefect(first: subprocess.Popen, log: Path, command: str) -> None:
    """Let the paused ``first`` (given :data:`DEAD_API`) go on: it fails in one line as it reaches
    Prefect, exit 1, after the lock it held from its start."""
    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 1, log.read_text()
    lines = log.read_text().strip().splitlines()
    assert lines[-1].startswith(f"lenshunt {command}: error: PREFECT_API_URL={DEAD_API} does not answer")
    assert "Traceback" not in log.read_text(), log.read_text()


def _refused(args: list[str], first: subprocess.Popen, log: Path) -> str:
    """``lenshunt ARGS`` while ``first`` holds its lock: refused in one line, no flow run (and, no
    flow run of the first having started yet, none that the second could be refused in); that line."""
    assert "Beginning flow run" not in log.read_text()  # the first holds its lock before Prefect
    env = {
        k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"
    }  # a temporary server, were it to start
    second = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    output = second.stdout + second.stderr
    assert second.returncode == 1, output
    assert second.stdout == "" and "flow run" not in output and "Traceback" not in output, output
    [line] = second.stderr.strip().splitlines()
    assert f"is being written by another lenshunt process ({args[0]} " in line, line
    assert f" pid {first.pid} on " in line, line
    return line


def test_a_second_train_is_refused_before_its_flow_starts(store, tmp_path):  # noqa: F811
    out, log = tmp_path / "new" / "model", tmp_path / "first.log"
    args = ["train", str(store), str(out), *QUICK, "--epochs", "1"]
    lock = paths.output_lock_file(out, "train")
    with _held_first(args, lock, log, DEAD_API) as first:
        line = _refused(args, first, log)
        assert line.startswith(f"lenshunt train: error: {out} is being written by another lenshunt process")
        assert line.endswith("; wait for it to finish, or train into another directory"), line
        _failing_at_prefect(first, log, "train")
    assert not (tmp_path / "new").exists()  # the folders it made for its lock, removed again
    with _held_first(args, lock, log) as first:
        first.kill()  # SIGKILL: its lock file stays, and the kernel has dropped its lock
    assert sorted(path.name for path in out.iterdir()) == [lock.name]
    again, _ = _lenshunt(*args, timeout=300)  # the stale lock taken over
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "card.json").is_file() and not lock.exists()


def test_a_second_ingest_is_refused_before_its_flow_starts(tmp_path):
    source = write_set(EUCLID, tmp_path / "set", range(100000, 100004), {100000: 1, 100001: 0})
    new, log = tmp_path / "new" / "s.zarr", tmp_path / "first.log"
    args = ["ingest", str(source), str(new), "--workers", "1"]  # no in-process ingest before the flow
    lock = paths.store_lock_file(new)
    with _held_first(args, lock, log, DEAD_API) as first:
        line = _refused(args, first, log)
        assert line.startswith(
            f"lenshunt ingest: error: store {new} is being written by another lenshunt process (ingest "
            f"of {source} pid {first.pid} on "
        ), line
        assert line.endswith("wait for it to finish and rerun (a rerun adds only what is still missing)")
        _failing_at_prefect(first, log, "ingest")
    assert not (tmp_path / "new").exists()  # the folders made for its lock, removed again
    with _held_first(args, lock, log) as first:
        first.kill()  # SIGKILL before the store was made: a folder holding only the lock file is left
    assert [path.relative_to(new).as_posix() for path in sorted(new.rglob("*"))] == [
        "_lenshunt",
        "_lenshunt/writer.lock",
    ]
    with pytest.raises(StoreNotFoundError) as absent:
        read_attributes(new)  # no store yet, as before the lock was made, and why the folder is there
    assert str(absent.value) == (
        f"no store at {new}; create one with `lenshunt ingest` (it holds only the writer lock of an ingest "
        "stopped before it made the store: rerun it)"
    )
    again, _ = _lenshunt(*args, timeout=300)  # the stale lock taken over, its folder made the store
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_attributes(new).n_objects == 4


TAKER = (
    "import sys\n"
    "from pipeline.store.lock import store_writer_lock\n"
    "try:\n"
    "    with store_writer_lock(sys.argv[1]):\n"
    "        print('taken')\n"
    "except Exception as exc:\n"
    "    print(type(exc).__name__, exc)\n"
)


def _taken_elsewhere(path: Path) -> str:
    """What another process's :func:`store_writer_lock` of the store ``path`` meets now."""
    return subprocess.run(
        [sys.executable, "-c", TAKER, str(path)], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.strip()


def test_the_ingest_joins_the_store_lock_its_command_holds(tmp_path, dask_client):
    """The library's ingest, in a process holding the store's lock from its start, joins that hold (no
    deadlock, no refusal of its own process); the store is made around the held lock file, so another
    process is refused all along; a hold that made no store removes what it made for its lock."""
    from pipeline.store import check_store_not_busy, ingest, store_lock_from_start

    source = write_set(EUCLID, tmp_path / "set", range(100000, 100004), {100000: 1, 100001: 0})
    target = tmp_path / "new" / "s.zarr"
    lock = paths.store_lock_file(target)
    with store_lock_from_start(target, purpose=f"ingest of {source}"):
        inode = lock.stat().st_ino
        check_store_not_busy(target)  # its own hold: not busy for the flow it runs
        assert _taken_elsewhere(target).startswith(
            f"StoreBusyError store {target} is being written by another"
        )
        assert ingest(EUCLID, source, target, dask_client).n_after == 4  # joined, not refused
        assert lock.stat().st_ino == inode  # the store was put in place around the held lock file
        assert _taken_elsewhere(target).startswith("StoreBusyError")
    assert _taken_elsewhere(target) == "taken"  # released at the end
    assert read_attributes(target).n_objects == 4
    for folder in (tmp_path / "empty", tmp_path / "new2" / "s.zarr"):  # held, no store made
        if folder.name == "empty":
            folder.mkdir()
        with store_lock_from_start(folder, purpose="ingest"):
            assert lock_being_held(paths.store_lock_file(folder)).startswith("ingest pid")
    assert list((tmp_path / "empty").iterdir()) == [] and not (tmp_path / "new2").exists()


def test_a_store_made_without_an_exchange_rename_keeps_the_held_lock(tmp_path, monkeypatch):
    """Where ``renameat2`` cannot exchange, the lock-only folder is renamed aside, the store put in its
    place with the lock file's second name, and the folder aside removed."""
    import pipeline.store.zarr_store
    from pipeline.store import create_store
    from pipeline.store.lock import store_writer_lock

    monkeypatch.setattr(pipeline.store.zarr_store, "exchange", lambda first, second: False)
    target = tmp_path / "s.zarr"
    with store_writer_lock(target, purpose="maker"):
        inode = paths.store_lock_file(target).stat().st_ino
        create_store(target, EUCLID, source=str(tmp_path / "src"))
        assert paths.store_lock_file(target).stat().st_ino == inode
        assert _taken_elsewhere(target).startswith("StoreBusyError")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.zarr"]  # nothing left beside it
    assert read_attributes(target).n_objects == 0


def test_a_bundle_replaced_under_the_train_lock_keeps_it(tmp_path):
    """``--overwrite`` exchanges the new bundle with OUT: the lock file the command holds goes with it
    (review: after the exchange, to the end of the command, OUT had no lock a second train met)."""
    from pipeline.locking import output_lock
    from pipeline.training import replacing

    out = tmp_path / "model"
    out.mkdir()
    (out / "card.json").write_text("old")
    lock = paths.output_lock_file(out, "train")
    with output_lock(out, purpose="train", advice="wait", remove=True):
        with replacing(out, overwrite=True) as work:
            (work / "card.json").write_text("new")
        assert (out / "card.json").read_text() == "new"
        assert lock_being_held(lock) is not None  # still held, at OUT's path
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
    assert sorted(path.name for path in out.iterdir()) == ["card.json"]  # removed as it was released


def test_a_run_refused_inside_its_flow_leaves_no_folder_it_made(tmp_path):
    """Fresh-user trial: ``lenshunt run EMPTY W`` was refused (no cutout), but left ``W`` with
    ``.lenshunt-run.lock``, ``.lenshunt-run.flow-run`` and ``scores/.lenshunt-score.lock``: nothing
    but lenshunt's own bookkeeping. A folder the command made and filled with those alone goes."""
    for band in EUCLID.band_names:  # the layout's band folders, empty
        (tmp_path / "empty" / "Public" / f"EUC_{band}").mkdir(parents=True)
    work = tmp_path / "new" / "work"
    result, _ = _lenshunt("run", str(tmp_path / "empty"), str(work), timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "no cutout of layout 'euclid-sglc2'" in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "new").exists(), sorted(str(p) for p in (tmp_path / "new").rglob("*"))
    kept = tmp_path / "kept"  # a folder it did not make stays, and so does anything not lenshunt's
    (kept / "mine").mkdir(parents=True)
    result, _ = _lenshunt("run", str(tmp_path / "empty"), str(kept), timeout=600)
    assert result.returncode == 1
    assert (kept / "mine").is_dir()
