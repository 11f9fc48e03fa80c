"""How ``lenshunt serve`` runs Prefect's :class:`prefect.runner.Runner` so that a stop is prompt.

Prefect 3's ``Flow.serve`` waited for a run in flight to finish on a Ctrl-C or SIGTERM (hours for a
large delivery), and on a SIGTERM printed ``coroutine 'Runner.astop' was never awaited`` and two
tracebacks (its SIGTERM handler calls the async-dispatched ``stop`` from inside the event loop).
Here the runner's event loop runs in a thread of its own, so the runner installs no signal
handler (it does only in the main thread) and the CLI's own handling stays: SIGINT raises
``KeyboardInterrupt`` and SIGTERM :class:`flows.cli.Stopped` in the main thread. On a stop,
:meth:`ServedRunner.serve` calls the runner's public ``astop`` in its loop: polling stops, and each
run in flight is cancelled as Prefect cancels one from the UI (SIGTERM to its subprocess, which
closes its Dask cluster; SIGKILL after 30 s; state Cancelled). A second Ctrl-C (or SIGTERM) while
that goes on kills the runs' process trees at once; whatever of them is left when the runner has
stopped is killed too, so no process outlives ``serve``.

A run started by ``serve`` ignores SIGINT (:func:`ignore_terminal_interrupt_if_served`): a Ctrl-C
in ``serve``'s terminal reaches the whole foreground process group, and the run would otherwise
crash on it (state Crashed, tracebacks of its Dask workers) instead of being cancelled by ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: Set by ``serve`` in its environment, which the runs it starts inherit.
SERVED_ENV = "LENSHUNT_SERVED_RUN"
#: The longest a stop waits for the runner (its cancel gives a run 30 s before a SIGKILL), seconds.
STOP_WAIT_S = 75.0
_BUSY = ["PENDING", "RUNNING", "CANCELLING"]
#: How often serve asks its Prefect server's health (s).
WATCH_S = 1.0
#: How long serve waits for a server that stopped answering to answer again before it ends (s): a
#: restart of the server is waited out (a review: serve ended 2 s into any outage); its value is
#: read from :data:`GRACE_ENV` where set.
SERVER_GRACE_S = 60.0
GRACE_ENV = "LENSHUNT_SERVE_SERVER_GRACE_S"


def server_grace_s() -> float:
    """:data:`SERVER_GRACE_S`, or ``$LENSHUNT_SERVE_SERVER_GRACE_S`` (seconds, >= 0) where set.

    Raises
    ------
    pipeline.errors.LenshuntError
        For a value that is not a number of seconds.
    """
    from pipeline.errors import LenshuntError

    value = os.environ.get(GRACE_ENV, "").strip()
    if not value:
        return SERVER_GRACE_S
    try:
        grace = float(value)
    except ValueError:
        grace = -1.0
    if not 0 <= grace < float("inf"):
        raise LenshuntError(f"{GRACE_ENV}={value!r} is not a number of seconds (>= 0); unset it for 60")
    return grace


def ignore_terminal_interrupt_if_served() -> None:
    """In a run that ``lenshunt serve`` started (``$LENSHUNT_SERVED_RUN``): ignore SIGINT, which a
    Ctrl-C in ``serve``'s terminal sends to the run too; ``serve`` cancels the run itself (SIGTERM).
    Processes the run starts from here on (its local Dask workers) inherit the setting.

    Its console (``serve``'s) also leaves out what Prefect logs of the cancel, which ``serve``'s
    stop line says: each task's "Crash detected! Execution was aborted by a termination signal." and
    "Finished in state Crashed(...)" at ERROR, and the flow's "Finished in state Running()" (a
    review; Prefect 3.4). Prefect's server keeps them, and the run is Cancelled there."""
    if not os.environ.get(SERVED_ENV):
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_cancel_on_console()


class _DropCancelledRunState(logging.Filter):
    """Drop Prefect's "Finished in state Running()", which a cancelled flow run logs on its way out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg == "Finished in state Running()")


def _quiet_cancel_on_console() -> None:
    from flows.failures import DropStopCrashes, add_console_filters

    add_console_filters(DropStopCrashes(), _DropCancelledRunState())


class DropServerGone(logging.Filter):
    """Drop console records whose exception is a failed connection to the Prefect server (Prefect's
    cancellation observer logs its websocket and polling failures with tracebacks, 150 lines in
    8 s): serve checks the server itself and ends with one line when it is gone. Other records, and
    those of other exceptions (bugs), are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not _connection_failure(exc)


def _connection_failure(exc: BaseException) -> bool:
    import httpx

    seen = 0
    while exc is not None and seen < 8:  # the exception, its cause or context: a refused connection
        if isinstance(exc, httpx.TransportError | ConnectionError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class ServedRunner:
    """A started-on-demand :class:`prefect.runner.Runner` whose stop cancels the runs in flight."""

    def __init__(self, runner: Any, deployment_id: Any, health: Callable[[], str] | None = None) -> None:
        self.runner = runner
        self.deployment_id = deployment_id
        self.health = health  # "" while the server answers, else why not (flows.prefect_api.unanswered)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        self._done = threading.Event()  # not Thread.join: a Ctrl-C in it can make is_alive() False
        self._error: BaseException | None = None
        self.stop_report = ""

    def serve(self) -> str:
        """Serve until stopped. Returns what the stop did (one clause, e.g. "flow run 'x' was
        cancelled") and re-raises the ``KeyboardInterrupt`` that stopped it; a runner that ends by
        itself raises its error; a server that stops answering (``health``) ends it with a
        :class:`~flows.failures.PrefectApiError` (its processes killed: they cannot report to it)."""
        from flows.failures import PrefectApiError, add_console_filters

        grace = server_grace_s()
        os.environ[SERVED_ENV] = "1"
        add_console_filters(DropServerGone())
        thread = threading.Thread(target=self._thread_main, name="lenshunt-serve-runner", daemon=True)
        thread.start()
        down_since: float | None = None
        try:
            while not self._done.wait(WATCH_S):
                why = self.health() if self.health is not None else ""
                if not why:
                    if down_since is not None:
                        print("lenshunt serve: the Prefect server answers again; serving on", file=sys.stderr)
                    down_since = None
                    continue
                if down_since is None:
                    down_since = time.monotonic()
                    print(
                        f"lenshunt serve: warning: the Prefect server does not answer ({why}); serve ends "
                        f"unless it answers within {grace:g} s ({GRACE_ENV})",
                        file=sys.stderr,
                        flush=True,
                    )
                if time.monotonic() - down_since >= grace:
                    left = _kill(_descendants())
                    self.stop_report = (
                        f"{left} process(es) of the runs in flight killed"
                        if left
                        else ("no run was in flight")
                    )
                    raise PrefectApiError(why)
        except KeyboardInterrupt:
            self.stop_report = self._stop()
            raise
        finally:
            os.environ.pop(SERVED_ENV, None)
        if self._error is not None:
            raise self._error
        return "the runner ended"

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._start())
        except BaseException as exc:  # handed to the main thread
            self._error = exc
        finally:
            self._ready.set()
            self._done.set()

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):  # a stop before the runner had started
            await self.runner.start()

    def _stop(self) -> str:
        """Stop polling, cancel the runs in flight, wait for the runner; returns what happened."""
        started = time.monotonic()
        busy = self._runs(_BUSY)
        tree = _descendants()
        self._ready.wait(5)
        if self._loop is not None and not self._done.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                if self.runner.started:
                    asyncio.run_coroutine_threadsafe(self.runner.astop(), self._loop)
                elif self._task is not None:
                    self._loop.call_soon_threadsafe(self._task.cancel)
        hard = False
        while not self._done.is_set() and time.monotonic() - started < STOP_WAIT_S:
            tree += [p for p in _descendants() if p not in tree]  # workers that started meanwhile
            try:
                self._done.wait(0.5)
            except KeyboardInterrupt:  # a second Ctrl-C: no grace for the runs
                if not hard:
                    print("lenshunt serve: stopping now: killing the runs in flight", file=sys.stderr)
                hard = True
                _kill(tree)
        left = _kill(tree)  # a run's Dask workers, if its SIGTERM did not close them in time
        return _describe_stop(busy, self._runs(None, [r.id for r in busy]) if busy else [], left)

    def _runs(self, states: list[str] | None, ids: list[Any] | None = None) -> list[Any]:
        """Flow runs of this deployment in ``states`` (or those of ``ids``); [] if the server fails."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )

        if ids is not None:
            flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=ids))
        else:
            flow_runs = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)))
        try:
            with get_client(sync_client=True) as client:
                return client.read_flow_runs(
                    flow_run_filter=flow_runs,
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self.deployment_id])),
                )
        except Exception:  # the server gone: the stop goes on, and says less
            return []


def _describe_stop(busy: list[Any], after: list[Any], left: int) -> str:
    if not busy:
        return "no run was in flight"
    states = {run.id: run.state for run in after}
    clauses = []
    for run in busy:
        state = states.get(run.id)
        if state is not None and state.is_cancelled():
            clauses.append(f"flow run '{run.name}' was cancelled")
        else:
            clauses.append(f"flow run '{run.name}' ended {state.name if state else 'in an unknown state'}")
    killed = f" ({left} of its processes killed)" if left else ""
    return "; ".join(clauses) + killed


def _descendants() -> list[Any]:
    """This process's descendants but multiprocessing's resource tracker (it ends with us)."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if not any(part.startswith("from multiprocessing.resource_tracker") for part in child.cmdline()):
                found.append(child)
    return found


def _kill(processes: list[Any]) -> int:
    """SIGKILL those of ``processes`` still running (psutil checks a pid was not reused); how many."""
    import psutil

    killed = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                process.kill()
                killed += 1
    return killed
