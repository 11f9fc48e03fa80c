"""A firing of ``lenshunt serve`` whose process was killed from outside is one line on serve's console.

A firing that fails in Python says so in one line (:mod:`flows.firing_failed`). One whose process is
killed (the kernel's out-of-memory killer's SIGKILL, an operator's ``kill -9`` or ``kill``) said
nothing of lenshunt's: a SIGKILL left serve's console with Prefect's runner records ("Process exited
with status code: -9. Process exited due to a SIGKILL signal. Typically caused by ... memory limits,
or by manual cancellation.", its resolution, "Reported flow run ... as crashed: ..."), a SIGTERM
with nothing at all (the run's engine reports itself Crashed, "Execution was aborted by a termination
signal.", and its console leaves that record out, as for a cancel). Prefect's runner sets such a run
Crashed on the server, with that reason as the state's message.

Here serve watches its firings' processes (their ``PREFECT__FLOW_RUN_ID``), and hears from its Prefect
runner of each firing whose process has exited (also one killed before the watch's next look, within
:data:`WATCH_S` of its start: missed before); once one is gone, it reads the run's final state and,
for a Crashed one whose message is a signal's, says it in one line (:func:`killed_firing_line`):
which firing, of which deployment, killed by which signal, that its finished work is kept and the
next firing resumes it (ingest takes up an interrupted ingest's regions, scoring writes the score
parts not written yet), and where its full log is. Prefect's
records of that exit are held back from serve's console until the state is read: left off where
the line says it (the server keeps the state and its message), put back otherwise.

A cancel (UI, ``prefect flow-run cancel``) is no such kill: it sets the run Cancelling, in which the
server refuses Crashed (Prefect's ``EnforceCancellingToCancelledTransition``), and ends it Cancelled,
also when the runner's SIGTERM needed a SIGKILL after its 30 s grace; a Cancelled run gets no line.
Nor does a run that serve killed itself (its stop, a second Ctrl-C, a Prefect server gone:
:class:`flows.serve_killed.KilledRuns`): serve's own lines say those. From serve's stop on, Prefect's
records of its runs' exit ("Process ... exited with status code: -15", "Reported flow run ... as
crashed") are left off the console: the stop line says what became of them (ops trial: a run stopped
while it joined its Dask scheduler was said crashed, then cancelled).
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

#: The prefix of serve's line for a killed firing (as for a failed one).
FIRING = "lenshunt serve: firing"
#: How often serve looks for firings whose process is gone, and how long it waits for such a run's
#: state to be final (the runner reports it at once; a cancel's SIGKILL comes after 30 s), seconds.
WATCH_S = 1.0
SETTLE_S = 60.0
_RELEASED = "lenshunt_released"
_EXIT = re.compile(r"exited with (?:non-zero )?status code:? (-?\d+)")
"""Prefect's runner on a run's exit code: its record and its Crashed state's message (3.8's executor:
"Process exited with status code: -9. ..."; its older path: "... non-zero status code -9.")."""
_TERMINATED = "Execution was aborted by a termination signal."
"""The Crashed state's message of a run whose engine handled a SIGTERM that was no cancel."""
_REPORTED = "Reported flow run '%s' as crashed: %s"
"""The runner's state proposer's record once it set such a run Crashed."""
_WHO = {
    signal.SIGKILL: "the system's out-of-memory killer (`dmesg` names it) or a `kill -9`",
    signal.SIGTERM: "a `kill` of its process",
}


class Serving(Protocol):
    """What :class:`KilledFirings` asks of :class:`flows.serve_runner.ServedRunner`."""

    stopping: bool
    killed_runs: Any


def killed_by(message: str | None) -> str | None:
    """What killed a firing, from the message of its Crashed state; None where no signal did.

    >>> killed_by("Process exited with status code: -9. Process exited due to a SIGKILL signal.")
    "killed by SIGKILL (exit -9): the system's out-of-memory killer (`dmesg` names it) or a `kill -9`"
    >>> killed_by("Execution was aborted by a termination signal.")
    'killed by SIGTERM: a `kill` of its process'
    >>> killed_by("Process exited with status code: 1. Process exited with a general error.") is None
    True
    """
    if message is None:
        return None
    if message.strip() == _TERMINATED:
        return f"killed by SIGTERM: {_WHO[signal.SIGTERM]}"
    found = _EXIT.search(message)
    if found is None or int(found.group(1)) >= 0:
        return None
    code = int(found.group(1))
    try:
        signum = signal.Signals(-code)
    except ValueError:
        return f"killed by signal {-code} (exit {code})"
    who = _WHO.get(signum, f"a `kill -{-code}`, or a fault of its own")
    return f"killed by {signum.name} (exit {code}): {who}"


def killed_firing_line(name: str, run_id: str, deployment: str, how: str, url: str = "") -> str:
    """``lenshunt serve: firing 'NAME' (flow run ID) of FLOW/DEPLOYMENT was killed by ...``.

    >>> killed_firing_line("calm-owl", "0a1b", "lenshunt-run/nightly", "killed by SIGTERM: a `kill`", "")
    ... # doctest: +NORMALIZE_WHITESPACE
    "lenshunt serve: firing 'calm-owl' (flow run 0a1b) of lenshunt-run/nightly was killed by SIGTERM: a
     `kill`, from outside serve (not a cancel: that ends a firing Cancelled); its finished work is kept,
     and the next firing resumes it; serving on (its full log: `prefect flow-run logs 0a1b`)"
    """
    return (
        f"{FIRING} {name!r} (flow run {run_id}) of {deployment} was {how}, from outside serve (not a "
        "cancel: that ends a firing Cancelled); its finished work is kept, and the next firing resumes "
        f"it; serving on (its full log: `prefect flow-run logs {run_id}`{', ' + url if url else ''})"
    )


class KilledFirings(logging.Filter):
    """serve's watch of its firings' processes (:meth:`start`), and the console filter that holds
    Prefect's records of a firing's exit until the watch has read the run's final state."""

    def __init__(self, served: Serving, in_flight: Callable[[], set[str]]) -> None:
        super().__init__()
        self.served = served
        self.in_flight = in_flight  # the flow run ids of serve's descendants (flows.serve_killed)
        self._lock = threading.Lock()
        self._held: dict[str, list[logging.LogRecord]] = {}
        self._said: set[str] = set()
        self._ended: set[str] = set()  # the runner's firings whose process has exited (follow)
        self._watched: set[str] = set()

    def start(self, runner: Any = None) -> None:
        """Add the filter to serve's console (instead of an earlier serve's), follow ``runner``'s firings
        (:meth:`follow`, where given) and start the watch (a daemon thread, until serve stops)."""
        from flows.failures import add_console_filters, log_handlers

        if runner is not None:
            self.follow(runner)
        for handler in log_handlers():
            for earlier in [f for f in handler.filters if isinstance(f, KilledFirings)]:
                handler.removeFilter(earlier)
        add_console_filters(self)
        threading.Thread(target=self._watch, name="lenshunt-serve-exits", daemon=True).start()

    def own(self, run_id: str) -> bool:
        """Whether serve stops, or killed, flow run ``run_id`` itself (its own line says it)."""
        return self.served.stopping or run_id in self.served.killed_runs

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _RELEASED, False):
            return True
        run_id, exit_record = _exit_of(record)
        if run_id is None:
            return True
        with self._lock:
            if run_id in self._said:
                return False
            if self.served.stopping and (exit_record or record.msg == _REPORTED):
                return False  # serve's stop line says their end (ops trial: "... as crashed", then Cancelled)
            if self.own(run_id) or not (exit_record or run_id in self._held):
                return True
            self._held.setdefault(run_id, []).append(record)
        return False

    def follow(self, runner: Any) -> None:
        """Hear from a :class:`prefect.runner.Runner` of each firing whose process has exited (its
        ``_submit_run_and_capture_errors``, which runs a firing's process to its end, wrapped on the
        instance): :meth:`look` settles it even where its process never met a look (trial: a SIGTERM
        in a firing's first second was said by nobody)."""
        submit = getattr(runner, "_submit_run_and_capture_errors", None)
        if submit is None:  # a runner of another shape (a stand-in): the watch's looks alone
            return

        async def submit_and_tell(flow_run: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await submit(flow_run, *args, **kwargs)
            finally:
                with self._lock:
                    self._ended.add(str(flow_run.id))

        runner._submit_run_and_capture_errors = submit_and_tell

    def look(self) -> None:
        """One look: settle (:meth:`settle`) each firing whose process is gone since the last look, ended
        as the runner said (:meth:`follow`), or whose exit records are held."""
        now = self.in_flight()
        with self._lock:
            gone = (self._watched | set(self._held) | self._ended) - now
            self._ended -= gone
        self._watched = now
        for run_id in sorted(gone):
            self.settle(run_id)

    def _watch(self) -> None:
        while not self.served.stopping:
            time.sleep(WATCH_S)
            with contextlib.suppress(Exception):  # the watch goes on whatever one look met
                self.look()
        with self._lock:  # serve stops: its own line says its runs
            left, self._held = list(self._held.values()), {}
        for records in left:
            _release(self, records)

    def settle(self, run_id: str) -> None:
        """With flow run ``run_id``'s process gone: wait for its final state; say a kill in one line and
        leave Prefect's held records of it off the console, or put them back."""
        if run_id in self._said:  # said already (its process gone, then the runner's word of it)
            return
        flow_run, deadline = None, time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not self.own(run_id):
            with contextlib.suppress(Exception):  # the server busy or away: asked again
                flow_run = _read(run_id)
            if flow_run is not None and flow_run.state is not None and flow_run.state.is_final():
                break
            time.sleep(0.5)
        state = flow_run.state if flow_run is not None else None
        how = killed_by(state.message) if state is not None and state.is_crashed() else None
        line = _line(flow_run, how) if how else ""
        with self._lock:
            records = self._held.pop(run_id, [])
            if line and not self.own(run_id) and run_id not in self._said:
                self._said.add(run_id)
                records = []
            else:
                line = ""
        if line:
            print(line, file=sys.stderr, flush=True)
        _release(self, records)


def _exit_of(record: logging.LogRecord) -> tuple[str | None, bool]:
    """The flow run a record of Prefect's runner about a run's exit is of (else None), and whether it
    is the exit's record itself (not its resolution, or the state proposer's "Reported ... crashed")."""
    if record.msg == _REPORTED and isinstance(record.args, tuple) and len(record.args) == 2:
        return str(record.args[0]), False
    run_id = getattr(record, "flow_run_id", None)
    if run_id is None or not record.name.startswith(("prefect.runner", "prefect.flow_runs.runner")):
        return None, False
    message = record.msg if isinstance(record.msg, str) else ""
    return str(run_id), message.startswith("Process") and _EXIT.search(message) is not None


def _read(run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def _line(flow_run: Any, how: str) -> str:
    from flows.firing_failed import deployment_name, url_of

    deployment = deployment_name(flow_run)
    return killed_firing_line(flow_run.name, str(flow_run.id), deployment, how, url_of(flow_run))


def _release(log_filter: logging.Filter, records: list[logging.LogRecord]) -> None:
    """Put ``records`` back on the console handlers that ``log_filter`` held them from."""
    from flows.failures import log_handlers

    for record in records:
        setattr(record, _RELEASED, True)
        for handler in log_handlers():
            if log_filter in handler.filters:
                handler.handle(record)
