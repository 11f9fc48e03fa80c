"""A SIGTERM or Ctrl-C while the CLI starts its temporary Prefect server: the usual one stop line.

Trial: ``lenshunt run`` (and ``score``) signalled as its folder's lock file appeared ended, in 4 of 6
tries, in a traceback, ``PydanticSerializationError: Error calling function `_ser_model`: Stopped:
SIGTERM``, exit 1: the signal's exception was raised inside Prefect's settings serializer (the
server's environment), and pydantic turned it into an error of its own. The line then said
"everything finished so far is kept in WORKDIR" of a work directory removed again as empty.

The real CLI runs in a subprocess on a small set of real FITS cutouts, and a real signal stops it:
sent from inside pydantic's serializer at the two moments of the server's start where Prefect
serializes its settings (deterministic), and from outside the moment the lock file appears.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cutouts import write_set
from test_cli_process import _tagged_processes

from schemas.layout import load_layout

REPO = Path(__file__).resolve().parents[1]

#: Run the CLI, and send this process ``SIGNAL`` once, from inside Prefect's settings serializer
#: (``_ser_model``, a pydantic wrap serializer) called ``DEPTH`` deep (2: pydantic wraps the error
#: twice, and the second drops its cause) under ``WHERE`` (a function name), while the CLI starts
#: its temporary server (``prefect_api``). The marker file says that it was sent.
PROBE = """
import os, signal, sys
import prefect.settings.base as base

signum, where, depth, marker = getattr(signal, sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
dump = base.PrefectBaseSettings.model_dump


def model_dump(self, *args, **kwargs):
    names, frame = [], sys._getframe(1)
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    inside = names.count("_ser_model") >= depth and where in names and "prefect_api" in names
    if inside and not os.path.exists(marker):
        open(marker, "w").write("sent")
        os.kill(os.getpid(), signum)  # its handler runs here, inside pydantic's serializer
    return dump(self, *args, **kwargs)


base.PrefectBaseSettings.model_dump = model_dump
from flows.cli import main

sys.exit(main(sys.argv[5:]))
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return write_set(
        load_layout("euclid-sglc2"), tmp_path_factory.mktemp("stop") / "src", range(100000, 100004)
    )


def _environment(tag: str) -> dict[str, str]:
    env = {**os.environ, "LENSHUNT_TEST_TAG": tag}
    env.pop("PREFECT_API_URL", None)  # the CLI starts its own temporary server
    return env


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a terminal's job (pytest may run with it ignored)


def _assert_stopped_in_one_line(result_rc: int, stderr: str, how: str, workdir: Path, tag: str) -> None:
    """Exit 128 + the signal, one line that names no work directory as kept, nothing left behind."""
    time.sleep(1.0)
    leftovers = _tagged_processes(tag)
    for pid in leftovers:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert result_rc == 128 + getattr(signal, how), (result_rc, stderr[-3000:])
    assert stderr.strip().splitlines() == [
        f"lenshunt run: stopped ({how}); nothing was written yet ({workdir} is not left: it was not "
        "created, or was removed again as empty); rerun the same command to start"
    ], stderr[-3000:]
    assert not workdir.exists()
    assert leftovers == [], f"processes left behind after {how}: {leftovers}"


@pytest.mark.parametrize(
    ("how", "where", "depth"),
    [
        ("SIGTERM", "to_environment_variables", 2),  # the server's environment, before it starts
        ("SIGINT", "copy_with_update", 1),  # its URL made the API's (temporary_settings), once it answers
        pytest.param("SIGINT", "to_environment_variables", 1, marks=pytest.mark.slow),
        pytest.param("SIGTERM", "copy_with_update", 2, marks=pytest.mark.slow),
    ],
)
def test_a_stop_inside_prefects_settings_serializer_is_the_stop_line(tmp_path, source, how, where, depth):
    workdir = tmp_path / "work"
    marker = tmp_path / "signal-sent"
    tag = uuid.uuid4().hex
    probe = [sys.executable, "-c", PROBE, how, where, str(depth), str(marker)]
    result = subprocess.run(
        [*probe, "run", str(source), str(workdir), "--workers", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_environment(tag),
        preexec_fn=_default_sigint,
        timeout=300,
    )
    assert marker.exists(), f"no signal was sent under {where}: {result.stderr[-3000:]}"
    _assert_stopped_in_one_line(result.returncode, result.stderr, how, workdir, tag)


@pytest.mark.parametrize("how", ["SIGTERM", pytest.param("SIGINT", marks=pytest.mark.slow)])
def test_a_stop_as_the_lock_file_appears_is_the_stop_line(tmp_path, source, how):
    """The trial's moment: a signal from outside as soon as the work directory's lock file appears
    (then the CLI starts Prefect's server); SIGINT to the process group, as a terminal's Ctrl-C."""
    workdir = tmp_path / "work"
    tag = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(source), str(workdir), "--workers", "1"],
        cwd=REPO,
        env=_environment(tag),
        start_new_session=True,
        preexec_fn=_default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while (
        not list(workdir.glob(".lenshunt-*.lock")) and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before its lock file appeared"
    if how == "SIGINT":
        os.killpg(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    _assert_stopped_in_one_line(process.returncode, stderr, how, workdir, tag)
