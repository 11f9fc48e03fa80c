"""A stop that library code wrapped (anyio's exception groups, Prefect's sync-over-async calls) is the
stop: ``lenshunt serve`` cancels its runs in flight and says so in its one line, as for a bare Ctrl-C
(trial: a Ctrl-C that reached serve inside an exception group printed a traceback, and its runner
was not stopped). The serving loop runs on a real thread and event loop; serve's Prefect server
address answers nothing, as after a server is gone."""

from __future__ import annotations

import asyncio
import signal

import pytest
from test_serve_errors import no_server  # noqa: F401 - PREFECT_API_URL where nothing listens

import flows.serve
from flows.cli import main
from flows.stops import Stopped, stop_of

pytestmark = pytest.mark.prefect


def _wrapped(stop: KeyboardInterrupt) -> BaseExceptionGroup:
    return BaseExceptionGroup("unhandled errors in a TaskGroup", [stop])


def test_a_stop_wrapped_in_a_group_or_chained_is_the_stop():
    assert stop_of(_wrapped(KeyboardInterrupt())) == signal.SIGINT
    assert stop_of(_wrapped(Stopped(signal.SIGTERM))) == signal.SIGTERM
    nested = BaseExceptionGroup("outer", [ValueError("other"), _wrapped(Stopped(signal.SIGTERM))])
    assert stop_of(nested) == signal.SIGTERM
    chained = RuntimeError("a library's own error")
    chained.__cause__ = Stopped(signal.SIGTERM)
    assert stop_of(chained) == signal.SIGTERM
    assert stop_of(BaseExceptionGroup("no stop", [ValueError("a bug")])) is None
    assert stop_of(asyncio.CancelledError()) is None  # no signal came: not a stop
    from prefect.exceptions import TerminationSignal

    def create_task_run() -> None:  # Prefect's SIGTERM handler's, turned into another error by its engine
        try:
            raise TerminationSignal(signal=signal.SIGTERM)
        except TerminationSignal:
            raise ValueError("Task run is not set")  # noqa: B904 - as Prefect's task engine raises it

    with pytest.raises(ValueError, match="Task run is not set") as raised:
        create_task_run()
    assert stop_of(raised.value) == signal.SIGTERM


class _Runner:
    """A runner that serves until its ``astop`` (what :class:`prefect.runner.Runner` offers serve)."""

    def __init__(self) -> None:
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self.started = True
        await self._stop.wait()

    async def astop(self) -> None:
        self.stopped = True
        self._stop.set()


def test_a_wrapped_stop_while_serving_stops_the_runner_and_is_raised(no_server):  # noqa: F811
    from flows.serve_runner import ServedRunner

    asked = []

    def health() -> str:  # its request to the server met the Ctrl-C inside anyio
        asked.append(1)
        if len(asked) > 1:
            raise _wrapped(KeyboardInterrupt())
        return ""

    runner = _Runner()
    served = ServedRunner(runner, deployment_id=None, health=health)
    with pytest.raises(BaseExceptionGroup):
        served.serve()
    assert runner.stopped, "the runner was not stopped: its runs in flight would go on"
    assert served.stop_report == "no run was in flight"


def test_serve_stopped_by_a_wrapped_stop_says_so_in_one_line(tmp_path, no_server, capsys, monkeypatch):  # noqa: F811
    def serving(*args, **kwargs):
        raise _wrapped(KeyboardInterrupt())

    monkeypatch.setattr(flows.serve, "serve_run_flow", serving)
    source = tmp_path / "incoming"
    source.mkdir()
    argv = ["serve", "--source", str(source), "--workdir", str(tmp_path / "work"), "--interval", "60"]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err == "lenshunt serve: stopped (SIGINT); no run was in flight\n", captured.err


def test_a_stop_kills_the_processes_serve_started_and_no_other(no_server):  # noqa: F811
    """CI: an in-process serve's stop killed every child of the test session, its Prefect server
    among them (later tests: "Connection refused"). Serve kills what its runner started, with their
    children; a child the process had before serving (a caller's server or cluster) is left alone."""
    import subprocess
    import sys

    from flows.serve_runner import ServedRunner

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    before = subprocess.Popen(sleeper)  # the caller's (as the session's Prefect server)
    started: list[subprocess.Popen] = []

    class Starting(_Runner):
        async def start(self) -> None:
            started.append(subprocess.Popen(sleeper))  # a run in flight
            await super().start()

    asked = []

    def health() -> str:
        asked.append(1)
        if len(asked) > 1 and started:
            raise KeyboardInterrupt
        return ""

    try:
        served = ServedRunner(Starting(), deployment_id=None, health=health)
        with pytest.raises(KeyboardInterrupt):
            served.serve()
        assert started and started[0].wait(10) == -signal.SIGKILL  # serve's: killed at the stop
        assert before.poll() is None, "a process serve did not start was killed"
    finally:
        for process in [before, *started]:
            process.kill()
            process.wait()
