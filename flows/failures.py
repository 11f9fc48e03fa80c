"""Which failures are deterministic (never retried, reported in one line) and how to say them.

A bad layout, catalog, store or path, a full or read-only disk, an unreachable Prefect API: the
same call fails the same way again, so the Prefect tasks do not retry them, the CLI prints one
line (what, why, how to fix) and Prefect's logs carry the message without the traceback.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import LenshuntError
from schemas.layout import LayoutError

#: OSError numbers that a retry cannot fix, with the fix to print.
OS_FIXES: dict[int, str] = {
    errno.ENOSPC: "free space on that disk, or write elsewhere",
    errno.EDQUOT: "free space in your quota, or write elsewhere",
    errno.EFBIG: "the file system takes no file that large (e.g. FAT32: 4 GiB); write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "you may not write there; choose a path you own or fix its permissions",
    errno.EPERM: "you may not write there; choose a path you own or fix its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a directory; choose another path",
    errno.EISDIR: "the path is a directory where a file was expected; choose another path",
    errno.EEXIST: "something is in the way there; choose a new path or remove it",  # trial: "exists" twice
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


class PrefectApiError(LenshuntError, ConnectionError):
    """The Prefect API that ``PREFECT_API_URL`` names does not answer."""


def is_deterministic(exc: BaseException) -> bool:
    """Whether running the same call again would fail the same way."""
    if isinstance(exc, LenshuntError | LayoutError | FileNotFoundError | FileExistsError):
        return True
    if isinstance(exc, NotADirectoryError | IsADirectoryError | PermissionError):
        return True
    return isinstance(exc, OSError) and exc.errno in OS_FIXES


def retry_unless_deterministic(task, task_run, state) -> bool:
    """``retry_condition_fn`` of the Prefect tasks: retry only failures that may pass next time."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the result could not be read: let Prefect retry as configured
        return True
    if isinstance(exc, BaseException) and is_deterministic(exc):
        if getattr(task_run, "id", None) is not None:  # no record of it carries the exception
            _FAILED_RUNS.add(str(task_run.id))
        return False
    return True


def one_line(exc: BaseException) -> str:
    """The message the CLI prints for a deterministic failure: what, why, how to fix."""
    if isinstance(exc, OSError) and not isinstance(exc, LenshuntError) and exc.errno in OS_FIXES:
        writing = getattr(exc, _WRITING, None)
        where = exc.filename if exc.filename is not None else f"writing in {writing}" if writing else "a file"
        also = f" -> {exc.filename2}" if exc.filename2 else ""  # a rename: source -> destination
        return f"{where}{also}: {exc.strerror or errno.errorcode.get(exc.errno)}; {OS_FIXES[exc.errno]}"
    return str(exc)


_WRITING = "lenshunt_writing_in"


@contextlib.contextmanager
def writing_to(folder: str | Path) -> Iterator[None]:
    """Note ``folder`` on a deterministic :class:`OSError` raised inside that names no file, for
    :func:`one_line` ("writing in FOLDER: No space left on device; ...").

    Trial: a full disk said "a file: No space left on device": a write (not an open) fails with no
    file name, in a Dask worker or a library's writer. A stage wraps what it writes (the store, the
    scores folder, the report folder); the innermost note stays. The note is an attribute of the
    exception, so it survives the pickling of an exception raised on a Dask worker.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno in OS_FIXES and not hasattr(exc, _WRITING):
            setattr(exc, _WRITING, str(folder))
        raise


_DETERMINISTIC = "lenshunt_deterministic_failure"
_FAILED_RUNS: set[str] = set()
"""Ids of the task and flow runs a deterministic failure ended (for :class:`DropExpectedFailures`)."""


class _DropExpectedTracebacks(logging.Filter):
    """Keep the message of a record about a deterministic failure, drop its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and is_deterministic(record.exc_info[1]):
            setattr(record, _DETERMINISTIC, True)  # for DropExpectedFailures, after another handler
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_expected_tracebacks() -> None:
    """Make every log handler drop tracebacks of deterministic failures (the CLI says them once), and
    the console handlers Prefect's records of a run stopped by a signal (the CLI says it stopped, and
    what was kept, in one line) or failed by a deterministic failure (the CLI's one error line says
    it); those records still reach Prefect's server, and the runs are Failed there."""
    log_filter = _DropExpectedTracebacks()
    for handler in log_handlers():
        if not any(isinstance(f, _DropExpectedTracebacks) for f in handler.filters):
            handler.addFilter(log_filter)
    add_console_filters(DropStopCrashes(), DropExpectedFailures())


def log_handlers() -> list[logging.Handler]:
    """The handlers of every logger of this process (the root's and each named one's)."""
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    return [handler for logger in loggers for handler in getattr(logger, "handlers", [])]


def add_console_filters(*filters: logging.Filter) -> None:
    """Add ``filters`` to each console handler (a stream handler but a file's) that has no filter of
    the first one's class yet (idempotent)."""
    for handler in log_handlers():
        if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
            continue
        if not any(isinstance(f, type(filters[0])) for f in handler.filters):
            for log_filter in filters:
                handler.addFilter(log_filter)


class DropSkippedFiringError(logging.Filter):
    """Drop Prefect's "Engine execution exited with unexpected exception" of a flow run that ended
    Cancelled on purpose (its exception a ``CancelledRun``): a skipped firing
    (:func:`flows.firing.busy_firing`). Trial: the firing ended Cancelled, as meant, and a work pool's
    worker logged an ERROR with a 30-line traceback for it; the server kept it among the run's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from prefect.exceptions import CancelledRun

        exc = record.exc_info[1] if record.exc_info else None
        return not (
            record.getMessage().startswith("Engine execution exited") and isinstance(exc, CancelledRun)
        )


def drop_skipped_firing_error() -> None:
    """Install :class:`DropSkippedFiringError` on Prefect's flow-run logger (every handler: the console
    and the server's log), once; for the process of a firing that is skipped."""
    logger = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, DropSkippedFiringError) for f in logger.filters):
        logger.addFilter(DropSkippedFiringError())


class DropExpectedFailures(logging.Filter):
    """Drop Prefect's console records of a task or flow run failed by a deterministic failure: "Task run
    failed with exception: ...", "Encountered exception during execution: ..." and that run's
    "Finished in state Failed(...)", each repeating the message the CLI then prints once. A task
    whose retry :func:`retry_unless_deterministic` refused logs no record with the exception: the
    refusal notes the run.

    Trial: a ``lenshunt train`` of a store with one class printed its message five times, with the
    user's Prefect server and with the CLI's temporary one. A run is known by the ``task_run_id`` (or
    ``flow_run_id``) Prefect's run loggers put on their records; other records are kept. An
    unexpected exception (a bug) keeps its traceback once: the first run record of it (where it
    happened); a later one of the same exception (its flow's) is dropped, and so are the "Finished in
    state Failed(...)" records of the task and flow runs it ended, which repeated its message twice
    before the CLI's line naming it (a review). Console handlers only: the
    records still reach Prefect's server (its UI shows the message and the Failed state).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        run = getattr(record, "task_run_id", None) or getattr(record, "flow_run_id", None)
        if run is None:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if getattr(record, _DETERMINISTIC, False) or (exc is not None and is_deterministic(exc)):
            _FAILED_RUNS.add(run)
            return False
        if exc is not None:  # a bug: its traceback once, where it happened (the flow's record repeats it)
            _FAILED_RUNS.add(run)  # ... and not again in the run's "Finished in state Failed(...)"
            if shown_on_console(exc):
                return False
            _SHOWN.append(exc)
        message = record.msg if isinstance(record.msg, str) else ""
        return not (run in _FAILED_RUNS and message.startswith("Finished in state Failed"))


class DropStopCrashes(logging.Filter):
    """Drop the records of a run crashed by a Ctrl-C or SIGTERM: Prefect's "Crash detected! Execution
    was aborted by an interrupt signal." (or "... a termination signal."; each task and flow run,
    at ERROR, and their "Finished in state Crashed(...)"), and the
    "... ended with CancelledError" warnings of Dask workers whose tasks the stop cancelled.

    Prefect 3.4 writes them for every run a stop ends, before the CLI's one line says it stopped
    (a stopped ``lenshunt score`` printed four). Also dropped: Dask's "Failed to remove" of its
    scratch space in the HATS writer's temporary folder, which the stopped writer has already
    removed (trial: an ERROR line after a SIGTERM while the HATS catalog was written).
    """

    PHRASES = (
        "Execution was aborted by an interrupt signal",
        "Execution was aborted by a termination signal",
        "Execution was cancelled by the runtime environment",
        "ended with CancelledError",
    )

    AFTER_STOP = (
        "Restarting worker",
        "caused the cluster to lose already computed task(s)",
        "Still processing items",
    )
    """Records that only follow a stop of the whole process group (:func:`note_stop`): the nanny's
    restart of a worker the SIGTERM killed, the scheduler's loss of its results, and Prefect's
    events worker flushing to the temporary server the signal stopped (trial). Kept otherwise: a
    worker restarted for its memory, say."""

    SCRATCH = re.compile(r"^Failed to remove '[^']*/\.[^/']+\.\d+\.tmp/dask/dask-scratch-space/")
    """The scratch space of :func:`pipeline.catalog.hats.write_hats`'s private cluster."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: not ours to judge
            return True
        if _STOPPING.is_set() and any(phrase in message for phrase in self.AFTER_STOP):
            return False
        return not any(phrase in message for phrase in self.PHRASES) and not self.SCRATCH.match(message)


class DropDeterministicComputeFailed(logging.Filter):
    """Drop a Dask worker's "Compute Failed" record (at ERROR, with the traceback as text) of a task
    whose exception is deterministic (:func:`is_deterministic`): the exception reaches the client,
    and the CLI says it in one line (trial: a full disk printed the worker's block, then the line).

    The record carries only the exception's text; the exception itself is found in the frame of the
    worker's ``execute`` that logs it (its local ``result["actual_exception"]``, distributed
    2026.7.1). Where it is not found, and for every other exception (a bug), the record is kept.
    tests/test_failure_output.py fails when that changes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith("Compute Failed")):
            return True
        frame = sys._getframe(1)
        for _ in range(24):  # logging's own frames, then the worker's execute
            if frame is None:
                return True
            if frame.f_code.co_name == "execute" and "distributed" in frame.f_code.co_filename:
                result = frame.f_locals.get("result")
                exc = result.get("actual_exception") if isinstance(result, dict) else None
                return not (isinstance(exc, BaseException) and is_deterministic(exc))
            frame = frame.f_back
        return True


_SHOWN: collections.deque[BaseException] = collections.deque(maxlen=8)
"""Unexpected exceptions whose traceback a Prefect run record put on the console (not weakly
referenceable: the last few are kept)."""


def shown_on_console(exc: BaseException) -> bool:
    """Whether a Prefect run record already put the traceback of ``exc`` on the console (the CLI then
    names it in one line instead of printing it again)."""
    return any(shown is exc for shown in _SHOWN)


_STOPPING = threading.Event()


def note_stop(stopped: bool = True) -> None:
    """Record that a stop signal (SIGINT, SIGTERM) reached the CLI: from now on the console leaves out
    what a stopped process group logs on its way down (:attr:`DropStopCrashes.AFTER_STOP`).
    ``False``: a new command starts (an earlier one in this process may have been stopped)."""
    if stopped:
        _STOPPING.set()
    else:
        _STOPPING.clear()


class _DropDistributedCancelRace(logging.Filter):
    """Drop tornado's traceback of a race in ``distributed.utils.sync`` that a Ctrl-C can hit.

    When the interrupt arrives after ``sync`` queued its coroutine but before the coroutine made its
    future, the ``cancel`` callback reads the unassigned variable and tornado logs a ``NameError``
    with a traceback (distributed 2026.7.1, ``distributed/utils.py``). Nothing is lost: the CLI
    closes the cluster and says what was kept. Only that record is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NameError) or exc.__traceback__ is None:
            return True
        last = exc.__traceback__
        while last.tb_next is not None:
            last = last.tb_next
        code = last.tb_frame.f_code
        return not (
            code.co_name == "cancel" and code.co_filename.endswith(os.path.join("distributed", "utils.py"))
        )


def quiet_distributed_cancel_race() -> None:
    """Install :class:`_DropDistributedCancelRace` on tornado's callback logger (idempotent)."""
    logger = logging.getLogger("tornado.application")
    if not any(isinstance(f, _DropDistributedCancelRace) for f in logger.filters):
        logger.addFilter(_DropDistributedCancelRace())


def keep_interrupts_out_of_gc_callbacks() -> None:
    """Stop distributed from timing garbage collections in this process, so a Ctrl-C is never lost.

    A scheduler or worker that starts in a process adds a callback to :data:`gc.callbacks`
    (``distributed.gc.GCDiagnosis``, which only logs how long full collections took). Python cannot
    raise out of a gc callback: a SIGINT whose handler runs inside it prints "Exception ignored in
    GCDiagnosis._gc_callback" and the command goes on as if no Ctrl-C came (a review saw this once
    in 11 stopped ingests). The CLI runs its local cluster's scheduler in its own process, so it swaps
    distributed's diagnosis for one that registers nothing (idempotent; worker processes keep theirs:
    their interrupts are the nanny's). Relies on ``distributed.gc._gc_diagnosis`` (2026.7.1);
    tests/test_cli_process.py fails when that changes.
    """
    import distributed.gc as distributed_gc

    current = distributed_gc._gc_diagnosis
    if isinstance(current, _NoGCDiagnosis) or current.enabled:
        return  # already swapped, or a scheduler already runs here: it removes its callback itself
    distributed_gc._gc_diagnosis = _NoGCDiagnosis()


class _NoGCDiagnosis:
    """What ``distributed.gc`` asks of its diagnosis object, with no gc callback behind it."""

    _fractional_timer = None  # distributed.gc.gc_collect_duration() then reports 0 s

    def __init__(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


RESOURCE_TRACKER_WARNING = "ignore:resource_tracker:UserWarning"
"""The ``-W`` option that silences the resource tracker's warning about semaphores it cleans up."""


def quiet_resource_tracker() -> None:
    """Keep Python's resource tracker from warning, after the CLI's last line, of semaphores it removes.

    A stop (SIGTERM, Ctrl-C) ends the local Dask cluster's processes while a semaphore of theirs
    exists; the tracker (one process for the command and its children) removes it at exit and
    prints "There appear to be 1 leaked semaphore objects to clean up at shutdown" (trial: after
    ``lenshunt run: stopped (SIGTERM)``). Nothing is left behind, so the warning is noise. The
    tracker is started with this process's ``-W`` options (``sys.warnoptions``), so the filter goes
    there, before any cluster starts the tracker (idempotent).
    """
    if RESOURCE_TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(RESOURCE_TRACKER_WARNING)
