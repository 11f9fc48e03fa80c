"""A ``lenshunt run`` (``score``) killed by SIGKILL stayed Running on the Prefect server for good
(trial: nine such runs in the UI); the next run of the same folder sets it Crashed.

A real Prefect API (the test harness's server, and a ``prefect server start`` for the end-to-end
kill), real flow runs and a real ``lenshunt run`` process killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cutouts import write_set
from test_cli_process import _default_sigint
from test_schedule import EUCLID, FIRST, LABELS, Api, small_bundle, started_prefect_server, terminate  # noqa: F401

from flows.left_runs import crash_left_run, record_path, server_identity

pytestmark = pytest.mark.prefect


@pytest.mark.parametrize("purpose", ["run", "score"])
def test_the_next_run_of_a_folder_sets_the_run_left_running_crashed(prefect_harness, tmp_path, purpose):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running

    @flow(name=f"lenshunt-{purpose}")
    def holder(folder: str) -> str | None:
        return crash_left_run(folder, purpose)

    with get_client(sync_client=True) as client:
        killed = client.create_flow_run(holder, name="killed-one", state=Running())
        other = client.create_flow_run(holder, name="other-one", state=Running())
    record = record_path(tmp_path, purpose)
    record.write_text(json.dumps({"flow_run_id": str(killed.id), "server": server_identity()}))

    said = holder(str(tmp_path))
    assert said == (
        f"flow run 'killed-one' of an earlier lenshunt {purpose} in {tmp_path} was still Running on the "
        "server though its process had ended (killed?): set Crashed; its finished work is kept"
    )
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(killed.id).state
        assert (
            state.type.value == "CRASHED" and "found it Running with the folder's lock free" in state.message
        )
        assert client.read_flow_run(other.id).state.type.value == "RUNNING"  # another folder's: left alone
        mine = json.loads(record.read_text())["flow_run_id"]
        assert client.read_flow_run(mine).state.type.value == "COMPLETED"  # the record names the last run
        assert holder(str(tmp_path)) is None  # which finished: nothing to say
        # another server's run (same id by chance, or a record of before) is not touched
        client.set_flow_run_state(other.id, Running(), force=True)
        record.write_text(json.dumps({"flow_run_id": str(other.id), "server": "http://elsewhere/api"}))
        assert holder(str(tmp_path)) is None
        assert client.read_flow_run(other.id).state.type.value == "RUNNING"
        client.set_flow_run_state(other.id, Completed(), force=True)
    record.write_text("{not json")  # a damaged record: said, replaced, the run goes on
    assert holder(str(tmp_path)).startswith("earlier runs left Running on the server were not checked (")
    assert json.loads(record.read_text())["server"] == server_identity()


@pytest.mark.slow
def test_a_killed_lenshunt_run_is_set_crashed_by_the_next_one(small_bundle, tmp_path):  # noqa: F811
    home = tmp_path / "prefect-home"
    home.mkdir()
    source = write_set(EUCLID, tmp_path / "incoming", FIRST, {i: LABELS[i] for i in FIRST})
    workdir = tmp_path / "work"
    command = [sys.executable, "-m", "flows.cli", "run", str(source), str(workdir),
               "--model", str(small_bundle), "--workers", "1"]  # fmt: skip
    with started_prefect_server(home) as (api, env, _):
        log = (tmp_path / "first.log").open("w")
        first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, preexec_fn=_default_sigint)  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while not record_path(workdir, "run").is_file():  # the run holds its folder and recorded itself
                assert first.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "first.log"
                ).read_text()
                time.sleep(0.2)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            terminate(first, timeout=10)
        killed = json.loads(record_path(workdir, "run").read_text())["flow_run_id"]
        assert Api(api.url).call("GET", f"/flow_runs/{killed}")["state"]["type"] == "RUNNING"  # left so
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
        state = Api(api.url).call("GET", f"/flow_runs/{killed}")["state"]
    assert again.returncode == 0, again.stdout + again.stderr
    assert state["type"] == "CRASHED", state
    assert f"the next lenshunt run in {workdir} found it Running" in state["message"], state
    assert (
        "was still Running on the server though its process had ended (killed?)"
        in again.stdout + again.stderr
    )


@pytest.mark.slow
def test_a_killed_lenshunt_run_on_the_cli_s_temporary_server_is_set_crashed_by_the_next_one(
    small_bundle,  # noqa: F811
    tmp_path,
):
    """Trial: without PREFECT_API_URL each command's temporary server had a new port, which the record
    held, so the next run never matched it and the killed run stayed Running in PREFECT_HOME's database."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    source = write_set(EUCLID, tmp_path / "incoming", FIRST, {i: LABELS[i] for i in FIRST})
    workdir = tmp_path / "work"
    command = [sys.executable, "-m", "flows.cli", "run", str(source), str(workdir),
               "--model", str(small_bundle), "--workers", "1"]  # fmt: skip
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=_default_sigint)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not record_path(workdir, "run").is_file():
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        terminate(first, timeout=10)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "was still Running on the server though its process had ended (killed?): set Crashed" in said, said
