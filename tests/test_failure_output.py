"""A failure inside a flow is said once on the console, with either kind of Prefect server.

A deterministic failure (a :class:`pipeline.errors.LenshuntError`) found only once the flow runs
prints the CLI's one error line, no Prefect ERROR record repeating it and no traceback, exit 1
(trial: ``lenshunt train`` of a store with one class printed its message five times with a real
``prefect server start``); the server still records the run as Failed. An unexpected exception
(a bug) prints its traceback once. Each command runs as a real process, against the CLI's
temporary server and against a real one (:func:`test_schedule.prefect_server`, slow).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cutouts import write_set
from locks import lock_held_elsewhere
from test_schedule import prefect_server  # noqa: F401 (a fixture)

from pipeline import paths
from schemas.layout import load_layout

pytestmark = pytest.mark.prefect

EUCLID = load_layout("euclid-sglc2")
REPO = Path(__file__).resolve().parents[1]
IDS = list(range(400000, 400020))
BUSY = "is being written by another lenshunt process"

#: Each command with a user error that only its flow finds: (arguments, the error's text).
CASES = {
    "train": (("train", "{store}", "{tmp}/model", "--epochs", "1"), "both classes are needed"),
    "ingest": (("ingest", "{source}", "{store}", "--workers", "1"), BUSY),
    "run": (("run", "{source}", "{tmp}/work", "--workers", "1"), BUSY),
}

#: ``lenshunt`` whose one-line check of the store's writer lock passed before another process took it
#: (the race a flow run once lost: ``tests/test_store_busy.py`` has the check itself). ``ingest`` and ``run``
#: lose it at the store's lock they take before Prefect starts, with no flow run
#: (``tests/test_lock_from_start.py``).
LOST_RACE = (  # its checks passed, before Prefect (flows.busy) and after: the lock taken in between
    "import sys, flows.busy, flows.{module}\n"
    "flows.busy.refuse_if_busy = lambda command, words: None\n"
    "flows.{module}.check_store_not_busy = lambda store: None\n"
    "from flows.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

#: ``lenshunt`` with a bug planted in the training split (its tasks run in this process).
BUGGY = (
    "import sys, flows.train\n"
    "def split(*args, **kwargs):\n"
    "    raise RuntimeError('planted bug in the split')\n"
    "flows.train.load_split = split\n"
    "from flows.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture(scope="module")
def one_class(tmp_path_factory) -> tuple[Path, Path]:
    """A source of 20 non-lenses and its store (no lens: training refuses it, inside the flow)."""
    root = tmp_path_factory.mktemp("one-class")
    source = write_set(EUCLID, root / "src", IDS, dict.fromkeys(IDS, 0))
    store = root / "store.zarr"
    made = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(source), str(store), "--workers", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    return source, store


def _server_env(server: str, request) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if server == "real":
        return request.getfixturevalue("prefect_server")[1]
    return env


def _lenshunt(args: list[str], env: dict[str, str], code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "flows.cli"]
    return subprocess.run(command + args, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


SERVERS = ["temporary", pytest.param("real", marks=pytest.mark.slow)]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("command", sorted(CASES))
def test_a_user_error_found_in_a_flow_is_said_once(command, server, one_class, tmp_path, request):
    source, store = one_class
    env = _server_env(server, request)
    template, text = CASES[command]
    if command == "run":  # the work directory's store, which another process is writing
        shutil.copytree(store, tmp_path / "work" / "store.zarr")
        store = tmp_path / "work" / "store.zarr"
    args = [word.format(source=source, store=store, tmp=tmp_path) for word in template]
    code = LOST_RACE.format(module=command) if command in ("ingest", "run") else None
    with lock_held_elsewhere(paths.store_lock_file(store), "ingest"):
        result = _lenshunt(args, env, code)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count(text) == 1, output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert result.stderr.strip().splitlines()[-1].startswith(f"lenshunt {command}: error: "), output
    if command in ("ingest", "run"):  # refused at the lock held from its start, before Prefect: no flow run
        assert "flow run" not in output and "/runs/flow-run/" not in output, output
        return
    if server == "real":  # the server still records the run as Failed, with the message
        api = request.getfixturevalue("prefect_server")[0]
        run_id = re.search(r"/runs/flow-run/([0-9a-f-]{36})", output).group(1)
        state = api.call("GET", f"/flow_runs/{run_id}")["state"]
        assert state["type"] == "FAILED" and text in state["message"], state


@pytest.mark.parametrize("server", SERVERS)
def test_a_bug_in_a_flow_shows_its_traceback_once(server, one_class, tmp_path, request):
    source, store = one_class
    env = _server_env(server, request)
    result = _lenshunt(["train", str(store), str(tmp_path / "model"), "--epochs", "1"], env, code=BUGGY)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count("Traceback") == 1 and "\nRuntimeError: planted bug in the split\n" in output, output
    # the traceback's heading and last line, and the CLI's line: not again in Prefect's "Finished in
    # state Failed(...)" of the task and of the flow (a review)
    assert output.count("planted bug in the split") == 3 and "Finished in state Failed" not in output, output
    assert result.stderr.strip().splitlines()[-1] == (
        "lenshunt train: error: unexpected RuntimeError: planted bug in the split (a bug; its traceback "
        "is above)"
    ), output
