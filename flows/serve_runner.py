"""How ``lenshunt serve`` runs Prefect's :class:`prefect.runner.Runner` so that a stop is prompt.

Prefect 3's ``Flow.serve`` waited for a run in flight to finish on a Ctrl-C or SIGTERM (hours for a
large delivery), and on a SIGTERM printed ``coroutine 'Runner.astop' was never awaited`` and two
tracebacks (its SIGTERM handler calls the async-dispatched ``stop`` from inside the event loop).
Here the runner's event loop runs in a thread of its own, so the runner installs no signal
handler (it does only in the main thread) and the CLI's own handling stays: SIGINT raises
``KeyboardInterrupt`` and SIGTERM :class:`flows.stops.Stopped` in the main thread. On a stop,
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
import warnings
from collections.abc import Callable
from typing import Any

from flows.serve_backlog import AtCapacityOnce
from flows.serve_exits import KilledFirings
from flows.serve_killed import KilledRuns, flow_run_ids, killed_message
from flows.serve_parent import SERVE_PID_ENV, stop_with_serve
from flows.serve_states import restore_completed
from flows.server_health import timed_out, waited_for
from flows.stops import stop_of

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
#: Where set, how long a server that does not answer in time (not one that refuses: it is gone) may
#: stay silent before serve kills the run in flight (s); see :func:`slow_server_s` for the default.
SLOW_ENV = "LENSHUNT_SERVE_SLOW_SERVER_S"


def server_grace_s() -> float:
    """:data:`SERVER_GRACE_S`, or ``$LENSHUNT_SERVE_SERVER_GRACE_S`` (seconds, >= 0) where set.

    Raises
    ------
    pipeline.errors.LenshuntError
        For a value that is not a number of seconds.
    """
    return env_seconds(GRACE_ENV, SERVER_GRACE_S)


def slow_server_s() -> float:
    """How long serve lets a run in flight wait on a Prefect server whose health check times out or
    answers busy (:func:`waited_for`; s): ``$LENSHUNT_SERVE_SLOW_SERVER_S`` where set, else
    ``PREFECT_API_REQUEST_TIMEOUT`` x (``PREFECT_CLIENT_MAX_RETRIES`` + 1), 360 s by default. A slow
    server (a long database operation, a paused machine) is not gone: the run's own Prefect client
    waits that long on each attempt of a request and retries that many times, so before then no
    request of the run can have failed for good (a review: serve killed it 3-5 s into any silence). A
    server that refuses connections is gone: its run is killed at once. Serve ends after
    :func:`server_grace_s` of a server gone, after the longer of the two of one slow or busy.

    Raises
    ------
    pipeline.errors.LenshuntError
        For a value of ``$LENSHUNT_SERVE_SLOW_SERVER_S`` that is not a number of seconds.
    """
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES

    default = PREFECT_API_REQUEST_TIMEOUT.value() * (PREFECT_CLIENT_MAX_RETRIES.value() + 1)
    return env_seconds(SLOW_ENV, default)


def env_seconds(name: str, default: float) -> float:
    """The number of seconds (>= 0, finite) in environment variable ``name``; ``default`` where unset.

    Raises
    ------
    pipeline.errors.LenshuntError
        For a value that is not a number of seconds.
    """
    import math

    from pipeline.errors import LenshuntError

    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise LenshuntError(f"{name}={value!r} is not a number of seconds (>= 0); unset it for {default:g}")
    return seconds


def ignore_terminal_interrupt_if_served() -> None:
    """In a run that ``lenshunt serve`` started (``$LENSHUNT_SERVED_RUN``): ignore SIGINT, which a
    Ctrl-C in ``serve``'s terminal sends to the run too; ``serve`` cancels the run itself (SIGTERM).
    Processes the run starts from here on (its local Dask workers) inherit the setting. Called as
    :mod:`flows.run` is imported, which Prefect's engine does before it proposes Running and starts
    its observers, and again as the flow's body starts (idempotent).

    Its console (``serve``'s) also leaves out what Prefect logs of the cancel, which ``serve``'s
    stop line says: each task's "Crash detected! Execution was aborted by a termination signal." and
    "Finished in state Crashed(...)" at ERROR, and the flow's "Finished in state Running()" (a
    review; Prefect 3.4). Prefect's server keeps them, and the run is Cancelled there. So are the
    tracebacks of its failed connections to a server that went away (:class:`DropServerGone`; trial:
    a 30-line one of Prefect's FlowRunSuspendingObserver), which ``serve`` says in its own lines."""
    if not os.environ.get(SERVED_ENV):
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_cancel_on_console()
    stop_with_serve()  # a serve killed (SIGKILL) cannot cancel it: it stops by itself


class _DropCancelledRunState(logging.Filter):
    """Drop Prefect's "Finished in state Running()", which a cancelled flow run logs on its way out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg == "Finished in state Running()")


def _quiet_cancel_on_console() -> None:
    from flows.failures import DropStopCrashes, add_console_filters, quiet_resource_tracker

    add_console_filters(DropStopCrashes(), _DropCancelledRunState(), DropServerGone())
    quiet_resource_tracker()  # its Dask cluster's semaphores: no warning where its process is killed


_SERVER_DOWN = threading.Event()
"""Set while serve finds its Prefect server not answering (:meth:`ServedRunner.serve`)."""


class DropServerGone(logging.Filter):
    """Drop console records whose exception is a failed connection to the Prefect server (Prefect's
    cancellation observer logs its websocket and polling failures with tracebacks, 150 lines in
    8 s), and, while serve finds the server not answering, every record of Prefect's own loggers
    (its events worker's "Failed the last 3 attempts" with tracebacks as text, the runner's note
    on the run serve killed; trial): serve says it in its own lines. Other records, and those of
    other exceptions (bugs), are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SERVER_DOWN.is_set() and (record.name.startswith("prefect") or _prefect_callback(record)):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError) and _prefect_callback(record):
            return False  # a Prefect observer's polling task cancelled by serve's stop (fresh-clone run)
        if isinstance(exc, RuntimeError) and str(exc) == "Service exceeded error threshold.":
            return False  # its polling gave up while the server was away, said at serve's stop (slow test)
        return exc is None or not _connection_failure(exc)


def _prefect_callback(record: logging.LogRecord) -> bool:
    """Whether ``record`` is asyncio's "Exception in callback" of a Prefect object (the runner's
    cancellation observer's, once its polling gave up on the gone server: trial)."""
    import traceback

    if record.name != "asyncio" or not record.exc_info or record.exc_info[2] is None:
        return False
    return any("prefect" in frame.filename for frame in traceback.extract_tb(record.exc_info[2]))


def _print_unless_server_down(*args: Any, **kwargs: Any) -> None:
    if not _SERVER_DOWN.is_set():
        print(*args, **kwargs)


def _quiet_service_loop_printer() -> None:
    """Make Prefect's ``critical_service_loop`` (its cancellation observers' polling) print its
    "Failed the last 3 attempts ... Traceback" summary only while the server answers: it prints with
    ``print``, not a logger, 30 lines into serve's output when the server went away (trial).
    Relies on its ``printer`` default (Prefect 3.8); tests/test_serve_errors.py fails if it changes."""
    from prefect.utilities import services

    loop = services.critical_service_loop
    defaults = loop.__defaults__ or ()
    if print in defaults:
        loop.__defaults__ = tuple(_print_unless_server_down if d is print else d for d in defaults)


def _connection_failure(exc: BaseException) -> bool:
    import httpx
    import websockets.exceptions

    seen = 0
    while exc is not None and seen < 8:  # the exception, its cause or context: a refused connection
        if isinstance(exc, httpx.TransportError | ConnectionError):
            return True
        # a websocket handshake cut by the server's end (a fresh clone's run: InvalidMessage from an
        # EOFError, logged by Prefect's FlowRunCancellingObserver with its traceback)
        if isinstance(exc, websockets.exceptions.InvalidHandshake | websockets.exceptions.ConnectionClosed):
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
        self.killed_runs = KilledRuns()  # their state is set once the server answers again
        self._others: frozenset[Any] = frozenset()  # children from before serving: never killed

    def serve(self) -> str:
        """Serve until stopped. Returns what the stop did (one clause, e.g. "flow run 'x' was
        cancelled") and re-raises the ``KeyboardInterrupt`` that stopped it; a runner that ends by
        itself raises its error; a server that stops answering (``health``) ends it with a
        :class:`~flows.failures.PrefectApiError` (its processes killed: they cannot report to it)."""
        from flows.failures import PrefectApiError, add_console_filters

        grace, slow = server_grace_s(), slow_server_s()
        self._others = frozenset(_children())
        self.stopping = False  # from the start of a stop on, the runs killed are serve's (flows.serve_exits)
        os.environ[SERVED_ENV] = "1"
        os.environ[SERVE_PID_ENV] = str(os.getpid())  # the runs stop with serve (flows.serve_parent)
        add_console_filters(DropServerGone())
        add_console_filters(AtCapacityOnce())  # trial: "skipped (at capacity)" every 8-12 s
        KilledFirings(self, lambda: flow_run_ids(_descendants(self._others))).start(self.runner)  # per kill
        _quiet_service_loop_printer()
        # the coroutine of that dropped callback, reported at exit (trial, with a server gone)
        warnings.filterwarnings("ignore", r"coroutine 'Runner\._handle_cancellation_observer_failure'")
        thread = threading.Thread(target=self._thread_main, name="lenshunt-serve-runner", daemon=True)
        thread.start()
        down_since: float | None = None
        killed = 0
        try:
            while not self._done.wait(WATCH_S):
                asked = time.monotonic()  # a timed-out check took its timeout: the silence began here
                why = self.health() if self.health is not None else ""
                if not why:
                    if down_since is not None:
                        print("lenshunt serve: the Prefect server answers again; serving on", file=sys.stderr)
                    down_since, killed = None, 0
                    _SERVER_DOWN.clear()
                    if self.killed_runs:  # their state says why (trial: "SIGKILL ... memory limits")
                        with contextlib.suppress(Exception):  # the server failing again: the next time
                            self.killed_runs.restate()
                    continue
                if down_since is None:
                    down_since = asked
                    _SERVER_DOWN.set()
                    print(_down_warning(why, grace, slow), file=sys.stderr, flush=True)
                    continue
                # a second failure: a run in flight cannot report to a server that is gone; one that
                # is slow it waits for, as its Prefect client does (slow_server_s)
                if not killed and (not waited_for(why) or time.monotonic() - down_since >= slow):
                    tree = _descendants(self._others)
                    runs = flow_run_ids(tree)
                    killed = _kill(tree) or -1  # trial: its Prefect clients' tracebacks
                    if killed > 0:
                        self.killed_runs.add(runs, killed_message(killed, why))
                        print(
                            f"lenshunt serve: the run in flight cannot report to the server: its {killed} "
                            "process(es) killed (the next firing resumes its work)",
                            file=sys.stderr,
                            flush=True,
                        )
                if time.monotonic() - down_since >= (max(grace, slow) if waited_for(why) else grace):
                    left = _kill(_descendants(self._others)) + max(killed, 0)
                    self.stop_report = (
                        f"{left} process(es) of the runs in flight killed" if left else "no run was in flight"
                    )
                    raise PrefectApiError(why)
        except BaseException as exc:  # a stop, also one that anyio or Prefect wrapped (flows.stops.stop_of)
            if stop_of(exc) is None:
                raise
            self.stop_report = self._stop()
            raise
        finally:
            self.stopping = True  # serve ends: its watch of killed firings too
            os.environ.pop(SERVED_ENV, None)
            os.environ.pop(SERVE_PID_ENV, None)
            _SERVER_DOWN.clear()
        if self._error is not None:
            if _connection_failure(self._error):  # the server went away while the runner started (a
                # fresh-clone run: "Runner failed to start: event_emitter" and a 90-line traceback)
                why = (self.health() if self.health is not None else "") or type(self._error).__name__
                self.stop_report = "no run was in flight"
                raise PrefectApiError(why) from None
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
        self.stopping = True
        started = time.monotonic()
        busy = self._runs(_BUSY)
        tree = _descendants(self._others)
        self._ready.wait(5)
        if self._loop is not None and not self._done.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                if self.runner.started:
                    asyncio.run_coroutine_threadsafe(self.runner.astop(), self._loop)
                elif self._task is not None:
                    self._loop.call_soon_threadsafe(self._task.cancel)
        hard = False
        while not self._done.is_set() and time.monotonic() - started < STOP_WAIT_S:
            tree += [p for p in _descendants(self._others) if p not in tree]  # workers that started meanwhile
            try:
                self._done.wait(0.5)
            except KeyboardInterrupt:  # a second Ctrl-C: no grace for the runs
                if not hard:
                    print("lenshunt serve: stopping now: killing the runs in flight", file=sys.stderr)
                hard = True
                _kill(tree)
        left = _kill(tree)  # a run's Dask workers, if its SIGTERM did not close them in time
        restore_completed([run.id for run in busy])  # finished as serve stopped: Completed, not Cancelled
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


def _down_warning(why: str, grace: float, slow: float) -> str:
    """serve's warning line on its first failed health check (``why``), saying which case it is."""
    limit = max(grace, slow) if waited_for(why) else grace
    if waited_for(why):
        case = (
            f"it is {'slow' if timed_out(why) else 'busy'}, not gone: a run in flight is waited for up to "
            f"{slow:g} s ({SLOW_ENV}), as its Prefect client waits and retries"
        )
    else:
        case = "it refused or failed the request, so it is taken for gone: a run in flight is killed"
    return (
        f"lenshunt serve: warning: the Prefect server does not answer ({why}); {case}; serve ends "
        f"unless it answers within {limit:g} s ({GRACE_ENV}{f', {SLOW_ENV}' if limit > grace else ''})"
    )


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


def _children() -> list[Any]:
    """This process's children (:class:`psutil.Process`: equal only for the same pid and start)."""
    import psutil

    return psutil.Process().children()


def _descendants(others: frozenset[Any] = frozenset()) -> list[Any]:
    """This process's descendants but its own multiprocessing resource tracker (it ends with us) and
    ``others`` with all of theirs: the children it had before serving, which serve did not start (a
    Prefect server or Dask cluster of the caller's; CI: a test session's Prefect server killed by an
    in-process serve's stop). A run's tracker is one of them (left, it warned of the killed run's
    semaphores; trial)."""
    import psutil

    found = []
    for child in _children():
        if child in others:
            continue
        with contextlib.suppress(psutil.Error):
            tracker = any(arg.startswith("from multiprocessing.resource_tracker") for arg in child.cmdline())
            found += ([] if tracker else [child]) + child.children(recursive=True)
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
