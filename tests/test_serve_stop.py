"""How ``lenshunt serve`` stops, on a real ``prefect server start``: what its stop line says to run
resumes its schedule as printed, and a ``serve`` killed with SIGKILL takes its run in flight with it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_schedule import Api, small_bundle, started_prefect_server, terminate  # noqa: F401
from test_serve_errors import _a_run_in_flight, _serve, _serve_a_run, _wait_for_line, _wait_until_polled
from waiting import wait_for

from flows.serve_parent import serve_gone_message
from pipeline.locking import check_not_busy

pytestmark = pytest.mark.prefect


def _fires(api: Api, deployment: str) -> bool:
    """Whether the deployment's schedule would fire: not paused, and a schedule active."""
    found = api.call("GET", f"/deployments/{deployment}")
    schedules = found["schedules"]
    return not found["paused"] and any(s["active"] for s in schedules)


@pytest.mark.slow
def test_the_command_a_stopped_serve_prints_resumes_its_schedule(tmp_path):
    """Trial: a stopped serve said "the schedule of lenshunt-run/opA is paused (serve again or resume
    it)", but it had paused the deployment (``paused``), a switch Prefect 3.8's CLI has no command for:
    ``prefect deployment schedule ls`` showed the schedule active, and ``schedule resume`` answered
    "already active", the deployment still paused. Now serve pauses the schedule, and the command its
    stop line prints, run as printed, resumes it."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, _):
        serve = _serve(tmp_path, env, "opA", 60, log_path)
        try:
            _wait_for_line(log_path, "waiting for scheduled runs", serve)
            deployment = _wait_until_polled(api.url, "opA", serve, log_path)
            assert _fires(api, deployment)
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=90)
        finally:
            terminate(serve, timeout=30)
        text = log_path.read_text()
        [line] = [line for line in text.splitlines() if line.startswith("lenshunt serve: stopped")]
        assert "the schedule of lenshunt-run/opA is paused (serve again, or `prefect deployment" in line, text
        assert not _fires(api, deployment)
        commands = re.findall(r"`(prefect deployment schedule resume [^`]+)`", line)
        assert commands, line
        prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
        for command in commands:
            argv = shlex.split(command)
            resumed = subprocess.run(
                [prefect, *argv[1:]], env=env, capture_output=True, text=True, timeout=120
            )
            assert resumed.returncode == 0, resumed.stdout + resumed.stderr
            assert "already active" not in resumed.stdout + resumed.stderr
        assert _fires(api, deployment), api.call("GET", f"/deployments/{deployment}")


@pytest.mark.slow
def test_a_run_in_flight_stops_with_a_serve_killed_with_sigkill(small_bundle, tmp_path):  # noqa: F811
    """Trial: after a SIGKILL of serve, its run's process (re-parented to PID 1) went on scoring for
    about 25 s holding the work directory's lock, then died writing to serve's gone stdout (Crashed,
    "Execution was aborted by Python system exit call"). Now it stops within seconds as a cancel
    stops it: no process of it left, the lock free, and its state says serve was gone."""
    import psutil

    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, _):
        serve = _serve_a_run(tmp_path, env, "killed", small_bundle, log_path)
        try:
            run = _a_run_in_flight(api, "killed", serve, log_path)
            time.sleep(1.0)  # its Dask cluster starting
            processes = psutil.Process(serve.pid).children(recursive=True)
            processes += [p for q in processes for p in _children(q) if p not in processes]
            os.kill(serve.pid, signal.SIGKILL)
            serve.wait(timeout=30)

            def all_gone():
                return not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

            wait_for("the run's processes to end", all_gone, 60, log_path.read_text)

            def ended():
                state = api.call("GET", f"/flow_runs/{run['id']}")["state"]
                return state if state["type"] not in {"RUNNING", "PENDING", "CANCELLING"} else None

            state = wait_for("the run's last state", ended, 60, log_path.read_text)
        finally:
            terminate(serve, timeout=30)
    assert state["type"] == "CRASHED", state
    assert state["message"] == serve_gone_message(serve.pid), state
    check_not_busy(tmp_path / "work", lock="run", advice="")  # its work directory's lock let go


def _children(process) -> list:
    import psutil

    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []
