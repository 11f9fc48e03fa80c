"""A firing of ``lenshunt serve`` that fails is one line on serve's console, and serve goes on serving.

User report: a scheduled firing that failed (its source directory gone, a broken layout, a store that
cannot be written, a damaged model bundle) put three copies of a 40-line traceback on serve's console.
The slow test serves on a real ``prefect server start`` and makes two firings fail for two reasons;
the fast one runs a real Prefect flow with a bug under the same wrapper as a served run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from test_cli_process import _default_sigint
from test_schedule import EUCLID, FIRST, LABELS, started_prefect_server, terminate, write_set
from waiting import wait_for

from flows.firing_failed import FAILED
from flows.serve_runner import SERVED_ENV

pytestmark = pytest.mark.prefect

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@pytest.mark.slow
def test_a_failed_firing_is_one_line_on_the_console_and_serve_serves_the_next(tmp_path):
    """Two firings fail, the first as its source directory vanished, the second as a file stands in
    its place: each is one line naming the deployment, the flow run, the lenshunt message and where the
    full log is; no traceback reaches the console (the server keeps it), and serve still runs."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    source = write_set(EUCLID, tmp_path / "incoming", FIRST[:4], {i: LABELS[i] for i in FIRST[:4]})
    command = [
        sys.executable, "-m", "flows.cli", "serve", "--source", str(source),
        "--workdir", str(tmp_path / "work"), "--interval", "3600", "--name", "failing", "--workers", "1",
    ]  # fmt: skip
    runs = []
    with started_prefect_server(home) as (api, env, _):
        with log_path.open("w") as log:
            serve = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_default_sigint,
            )  # fmt: skip
        try:
            wait_for(
                "serve", lambda: "waiting for scheduled runs" in log_path.read_text(), 180, log_path.read_text
            )
            deployment = api.deployment_id("failing")
            shutil.rmtree(source)  # the source directory vanished
            for broken in ("vanished", "a file"):
                if broken == "a file":
                    source.write_text("not a directory\n")
                run = api.call("POST", f"/deployments/{deployment}/create_flow_run", {})

                def final(run_id=run["id"]):
                    assert serve.poll() is None, log_path.read_text()
                    state = api.call("GET", f"/flow_runs/{run_id}")["state"]
                    return state if state["type"] in FINAL else None

                state = wait_for("the firing to end", final, 240, log_path.read_text, interval=1)
                runs.append((run, state))
            time.sleep(3)  # the last run's logs reach the server, and serve's console
            logs = api.call("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0][0]["id"]]}}})
            assert serve.poll() is None, log_path.read_text()  # still serving
        finally:
            terminate(serve, timeout=60)
    text = log_path.read_text()
    assert [state["type"] for _, state in runs] == ["FAILED", "FAILED"], (runs, text)
    assert "Traceback" not in text, text
    assert "Engine execution exited" not in text and "Finished in state Failed" not in text, text
    lines = [line for line in text.splitlines() if line.startswith(FAILED)]
    assert len(lines) == 2, text
    whys = (f"cutout directory {source} does not exist", str(source))
    for line, (run, _), why in zip(lines, runs, whys, strict=True):
        head = f"{FAILED} '{run['name']}' (flow run {run['id']}) of lenshunt-run/failing failed: "
        assert line.startswith(head), line
        assert why in line and "unexpected" not in line, line
        assert f"serving on (its full log: `prefect flow-run logs {run['id']}`, " in line, line
        assert line.endswith(f"/runs/flow-run/{run['id']})"), line
    # the full log is where the line says: the server keeps the traceback
    assert any("Traceback" in log["message"] and log["level"] >= 40 for log in logs), logs


BUGGY_FLOW = """
from prefect import flow

from flows.firing_failed import said_if_firing_fails


@flow(name="lenshunt-bug")
@said_if_firing_fails
def flow_with_a_bug(divisor: int) -> float:
    return 1 / divisor


flow_with_a_bug(0)
"""


def test_a_served_run_says_a_bug_in_its_line_before_its_traceback(prefect_harness, tmp_path):
    """A genuine bug (not a lenshunt error) in a served run: its line comes first, naming the exception
    as a bug, then its traceback once; Prefect's own records of it are left off the console. Outside
    serve the same flow fails as before (Prefect prints its records). Each runs a real flow in a
    process of its own, with its own console, as serve's runs do."""
    from prefect.settings import PREFECT_API_URL

    script = tmp_path / "buggy.py"
    script.write_text(BUGGY_FLOW)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    env.pop(SERVED_ENV, None)
    outside = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    served = subprocess.run(
        [sys.executable, str(script)], env={**env, SERVED_ENV: "1"}, capture_output=True, text=True
    )
    assert outside.returncode == served.returncode == 1, (outside, served)
    assert FAILED not in outside.stdout + outside.stderr, outside
    assert "Encountered exception during execution" in outside.stdout + outside.stderr, outside
    text = served.stdout + served.stderr
    lines = text.splitlines()
    said = [i for i, line in enumerate(lines) if line.startswith(FAILED)]
    assert len(said) == 1, text
    line = lines[said[0]]
    assert " of flow lenshunt-bug failed: unexpected ZeroDivisionError: division by zero (a bug; its " in line
    assert "`prefect flow-run logs " in line, line
    assert lines[said[0] + 1] == "Traceback (most recent call last):", text
    # once here; then Python's own report of the exception the script did not catch
    assert text.count("Traceback (most recent call last):") == 2, text
    assert "Encountered exception during execution" not in text, text
    assert "Finished in state Failed" not in text, text
