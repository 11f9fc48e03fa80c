"""A firing of ``lenshunt serve`` whose process is killed from outside is one line on serve's console.

The kernel's out-of-memory killer (SIGKILL) or an operator's ``kill`` of a served run's process left
serve's console with Prefect's runner records only ("Process exited with status code: -9. Process
exited due to a SIGKILL signal. Typically caused by ... memory limits ..."), or, for a SIGTERM, with
nothing. The slow test serves on a real ``prefect server start`` and kills the processes of two real
firings (SIGKILL, then SIGTERM) and cancels a third through the server as ``prefect flow-run cancel``
does; the fast one runs the filter and the watch's verdict on real records and real flow runs.
"""

from __future__ import annotations

import io
import logging
import signal
import time
import uuid

import psutil
import pytest
from test_schedule import small_bundle, started_prefect_server, terminate  # noqa: F401
from test_serve_errors import _serve_a_run, _wait_for_line
from waiting import wait_for

from flows.serve_exits import FIRING, KilledFirings, killed_by
from flows.serve_killed import KilledRuns

pytestmark = pytest.mark.prefect

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def _run_process(serve_pid: int, run_id: str) -> psutil.Process | None:
    """The process of flow run ``run_id`` that serve started (its child; its Dask workers are below it)."""
    for child in psutil.Process(serve_pid).children():
        try:
            if child.environ().get("PREFECT__FLOW_RUN_ID") == run_id:
                return child
        except psutil.Error:
            continue
    return None


def _next_run(api, serve, log_path, after: set[str]) -> dict:
    """The first run of deployment 'killed' Running that is none of ``after``."""

    def running():
        assert serve.poll() is None, log_path.read_text()
        return [r for r in api.flow_runs("killed") if r["state_type"] == "RUNNING" and r["id"] not in after]

    return wait_for("a run in flight", running, 300, log_path.read_text, interval=0.25)[0]


def _final(api, run_id: str, log_path) -> dict:
    def final():
        state = api.call("GET", f"/flow_runs/{run_id}")["state"]
        return state if state["type"] in FINAL else None

    return wait_for("the run's final state", final, 120, log_path.read_text, interval=0.5)


@pytest.mark.slow
def test_a_firing_killed_from_outside_is_one_line_and_serve_serves_on(small_bundle, tmp_path):  # noqa: F811
    """The first firing's process is SIGKILLed in its score stage (as the out-of-memory killer does), the
    second's SIGTERMed (an operator's ``kill``): each is one lenshunt line (which firing, of which
    deployment, which signal, work kept, serving on, where its log is), Prefect's runner records of
    the exit are left off, and the run is Crashed on the server. The second firing resumes the first's
    work (its ingest adds nothing: the 20 cutouts are in the store). A third, cancelled through the
    server, ends Cancelled and gets no such line. serve serves on throughout."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    killed, left = {}, []
    with started_prefect_server(home) as (api, env, _):
        serve = _serve_a_run(tmp_path, env, "killed", small_bundle, log_path)
        try:
            for signum in (signal.SIGKILL, signal.SIGTERM):
                run = _next_run(api, serve, log_path, set(killed))
                seen = log_path.read_text().count("score regions: 0/")
                wait_for(
                    "its score stage",
                    lambda seen=seen: log_path.read_text().count("score regions: 0/") > seen,
                    240,
                    log_path.read_text,
                    interval=0.25,
                )
                process = wait_for(
                    "its process", lambda run=run: _run_process(serve.pid, run["id"]), 60, log_path.read_text
                )
                below = process.children(recursive=True)
                process.send_signal(signum)  # that process only: not serve, not its Dask workers
                _wait_for_line(log_path, f"{FIRING} '{run['name']}'", serve)
                killed[run["id"]] = (run, _final(api, run["id"], log_path))
                left += below
            cancelled = _next_run(api, serve, log_path, set(killed))
            time.sleep(5)  # in its body
            body = {
                "state": {"type": "CANCELLING", "name": "Cancelling"}
            }  # what `prefect flow-run cancel` sets
            api.call("POST", f"/flow_runs/{cancelled['id']}/set_state", body)
            cancel_state = _final(api, cancelled["id"], log_path)
            time.sleep(8)  # serve's watch has read it (1 s) and would have said it
            alive = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            assert serve.poll() is None, log_path.read_text()  # still serving
            text = log_path.read_text()  # (serve's stop then cancels a run in flight, its own lines)
        finally:
            terminate(serve, timeout=60)
    said = [line for line in text.splitlines() if line.startswith(FIRING)]
    assert len(said) == 2, text
    for line, (run_id, (run, state)), how in zip(
        said, killed.items(), ("was killed by SIGKILL (exit -9): ", "was killed by SIGTERM"), strict=True
    ):
        assert state["type"] == "CRASHED", (state, text)
        assert line.startswith(
            f"{FIRING} '{run['name']}' (flow run {run_id}) of lenshunt-run/killed {how}"
        ), line
        assert "its finished work is kept, and the next firing resumes it; serving on (its full log: " in line
        assert line.endswith(
            f"`prefect flow-run logs {run_id}`, {api.url.removesuffix('/api')}/runs/flow-run/{run_id})"
        )
    assert cancel_state["type"] == "CANCELLED", (cancel_state, text)
    assert f"'{cancelled['name']}' (flow run" not in text, text
    assert "exited with status code" not in text and "Reported flow run" not in text, text
    assert "Traceback" not in text and "leaked semaphore" not in text, text
    # the second firing resumed the first's work: its ingest found the 20 cutouts in the store
    assert "discovered 20, already in store 20, added 0" in text, text
    assert alive == [], alive  # the killed runs' Dask workers did not outlive them


def _record(logger: str, msg: str, args: tuple = (), **extra) -> logging.LogRecord:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


class _Served:
    """What the watch reads of serve's :class:`~flows.serve_runner.ServedRunner`."""

    def __init__(self) -> None:
        self.stopping = False
        self.killed_runs = KilledRuns()


def test_prefects_exit_records_are_held_until_the_runs_state_is_read(prefect_harness):
    """Real flow runs on a real Prefect API, and the runner's records of their process's exit as Prefect
    3.8 writes them: a run Crashed by a SIGKILL gets serve's line and its records stay off the console;
    a Cancelled one (a cancel's SIGKILL after its grace) gets no line and its records are put back; the
    exit records of a run serve stops itself are left off (its stop line says it: ops trial, "Reported
    flow run ... as crashed" then "Cancelled"); other records pass."""
    import contextlib

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Cancelled, Crashed

    @flow(name="lenshunt-exits")
    def nothing() -> None:
        pass

    exit_message = (
        "Process exited with status code: -9. Process exited due to a SIGKILL signal. Typically caused by "
        "the operating system terminating the process for exceeding memory limits, or by manual cancellation."
    )
    runs = {}
    with get_client(sync_client=True) as client:
        for name, state in (
            ("oom", Crashed(message=exit_message)),
            ("cancel", Cancelled(message="cancelled")),
        ):
            made = client.create_flow_run(nothing, name=f"{name}-{uuid.uuid4().hex[:6]}")
            client.set_flow_run_state(made.id, state, force=True)
            runs[name] = made
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    logger = logging.getLogger("lenshunt-test-exits")
    logger.addHandler(handler)
    served = _Served()
    watch = KilledFirings(served, in_flight=set)
    handler.addFilter(watch)
    stdout = io.StringIO()
    try:
        executor = "prefect.runner.flow_run_executor"
        for run in runs.values():
            for msg in (exit_message, "Check whether the flow run exceeded its memory allocation."):
                handler.handle(_record(executor, msg, flow_run_id=run.id))
        handler.handle(_record("prefect.runner", "something else"))
        assert console.getvalue() == "something else\n"
        with contextlib.redirect_stderr(stdout):
            watch.settle(str(runs["oom"].id))
            watch.settle(str(runs["cancel"].id))
        reported = _record(
            "prefect.runner.state_proposer",
            "Reported flow run '%s' as crashed: %s",
            (runs["oom"].id, exit_message),
        )
        handler.handle(reported)
        served.stopping = True  # serve's stop line says its runs' end: their exit records are left off
        stopped = uuid.uuid4()
        handler.handle(_record(executor, exit_message, flow_run_id=stopped))
        handler.handle(_record("prefect.runner.state_proposer", reported.msg, (stopped, exit_message)))
        handler.handle(_record("prefect.runner", "Cancelled flow run 'x'", flow_run_id=stopped))
    finally:
        logger.removeHandler(handler)
    oom = runs["oom"]
    ui = PREFECT_API_URL.value().removesuffix("/api")
    assert stdout.getvalue().splitlines() == [
        f"{FIRING} {oom.name!r} (flow run {oom.id}) of flow lenshunt-exits was killed by SIGKILL (exit -9): "
        "the system's out-of-memory killer (`dmesg` names it) or a `kill -9`, from outside serve (not a "
        "cancel: that ends a firing Cancelled); its finished work is kept, and the next firing resumes it; "
        f"serving on (its full log: `prefect flow-run logs {oom.id}`, {ui}/runs/flow-run/{oom.id})"
    ], stdout.getvalue()
    lines = console.getvalue().splitlines()
    assert lines == [
        "something else",
        exit_message,
        "Check whether the flow run exceeded its memory allocation.",
        "Cancelled flow run 'x'",
    ], lines


class _Runner:
    """A stand-in for :class:`prefect.runner.Runner`'s method that runs a firing's process to its end."""

    async def _submit_run_and_capture_errors(self, flow_run, task_status=None, **kwargs) -> int:
        return -15


def test_a_firing_killed_before_the_watch_looked_is_said_once_as_the_runner_tells_it(prefect_harness):
    """Trial: a firing SIGTERMed within the watch's first second (never among serve's processes at a
    look, and no runner record of its exit to hold) was said by nobody. The runner's word that the
    process ended settles it: one line, once; a Completed firing gets none."""
    import asyncio
    import contextlib
    import inspect

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.runner import Runner
    from prefect.states import Completed, Crashed

    # the method followed is Prefect's, with the firing first (guards an upgrade of the pinned Prefect)
    assert list(inspect.signature(Runner._submit_run_and_capture_errors).parameters)[:2] == [
        "self",
        "flow_run",
    ]

    @flow(name="lenshunt-exits")
    def nothing() -> None:
        pass

    runs = {}
    with get_client(sync_client=True) as client:
        for name, state in (
            ("early", Crashed(message="Execution was aborted by a termination signal.")),
            ("done", Completed()),
        ):
            made = client.create_flow_run(nothing, name=f"{name}-{uuid.uuid4().hex[:6]}")
            client.set_flow_run_state(made.id, state, force=True)
            runs[name] = made
    watch, runner = KilledFirings(_Served(), in_flight=set), _Runner()
    watch.follow(runner)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        for run in runs.values():
            assert asyncio.run(runner._submit_run_and_capture_errors(run)) == -15
        watch.look()
        asyncio.run(runner._submit_run_and_capture_errors(runs["early"]))  # told again: said once
        watch.look()
    early = runs["early"]
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"{FIRING} {early.name!r} (flow run {early.id}) of flow lenshunt-exits was killed by SIGTERM: "
    ), lines


@pytest.mark.parametrize(
    ("message", "said"),
    [
        (
            "Process exited with status code: -9. Process exited due to a SIGKILL signal.",
            "SIGKILL (exit -9): ",
        ),
        ("Flow run process exited with non-zero status code -15.", "SIGTERM (exit -15): a `kill` of"),
        ("Execution was aborted by a termination signal.", "SIGTERM: a `kill` of its process"),
        ("Process exited with status code: -11. Process exited with an unexpected status code.", "SIGSEGV"),
        ("Process exited with status code: 1. Process exited with a general error.", None),
        ("lenshunt serve killed its 3 process(es): the Prefect server did not answer", None),
        ("Execution was aborted by an interrupt signal.", None),
    ],
)
def test_which_crashes_are_kills(message, said):
    how = killed_by(message)
    assert (how is None) if said is None else (how is not None and said in how), how
