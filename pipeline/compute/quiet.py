"""Keep TensorFlow's start-up noise off the terminal, in the CLI process and in Dask workers.

TensorFlow 2.21 writes, straight to file descriptor 2 while it loads, absl lines that no
environment variable turns off (``WARNING: All log messages before absl::InitializeLog() ...``,
``I0000 ... port.cc:153] oneDNN custom operations are on ...``); ``TF_CPP_MIN_LOG_LEVEL=2`` silences
the later INFO and WARNING lines (``cpu_feature_guard`` and the like). :func:`quiet_tensorflow`
sets that variable (unless the user set it) and installs an import hook that loads
``tensorflow`` with fd 2 captured, then writes back every captured line except the known noise, so
real errors still show. :class:`QuietTensorFlow` does the same in each Dask worker.

Shutdown noise of Dask is filtered the same narrow way: a worker that has begun closing does not
log a traceback when its last heartbeat finds the scheduler gone, nor does a worker of a cluster
whose scheduler runs in the lenshunt process when its heartbeat's connection is closed under it
(:class:`ClosingHeartbeatFilter`),
and the nanny's "Worker process still alive after 4.0 seconds, killing" while a cluster is closed
on purpose (a worker that loaded TensorFlow takes that long to exit on a busy machine; all its
results are in by then) is logged at DEBUG (:func:`quiet_cluster_shutdown`).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from distributed.diagnostics.plugin import WorkerPlugin

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\]"
    rb"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    rb"|To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`)"
)
"""Start-up lines of TensorFlow's native code that say nothing about the run."""


@contextlib.contextmanager
def native_stderr_filtered(noise: re.Pattern[bytes] = NOISE) -> Iterator[None]:
    """Capture file descriptor 2 (Python and native writes) and write back all but ``noise`` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True) if not noise.match(line)]
            if kept:
                os.write(2, b"".join(kept))


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with native_stderr_filtered():
            self._loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with a loader that filters its start-up noise."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL=2`` (unless set) and filter the noise of a later TF import.

    Does nothing more when TensorFlow is already imported or the hook is already installed.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowFinder())


class ClosingHeartbeatFilter(logging.Filter):
    """Drops the heartbeat failure of a worker whose scheduler has closed.

    Dropped: distributed's "Failed to communicate with scheduler during heartbeat." (at ERROR, with
    its traceback) while the worker is closing; and, for a worker of a cluster whose scheduler runs
    in the lenshunt process (``scheduler_is_ours``: the local and CUDA clusters), also when the
    heartbeat's connection was closed under it (``CommClosedError``). The scheduler's close sends
    each worker a close message and closes its connections at once; a heartbeat in flight then
    fails before the worker has read that message (a race of distributed 2026.7.1's
    ``Scheduler.close``; CI: a traceback on ``serve``'s console after a SIGTERM cancelled its run).
    The lenshunt process says why it closed its cluster, so the record adds nothing. Kept: a
    heartbeat that timed out or could not connect, and every failure of a batch job's worker.
    """

    def __init__(self, worker, scheduler_is_ours: bool = False) -> None:
        super().__init__()
        self.worker = worker
        self.scheduler_is_ours = scheduler_is_ours

    def filter(self, record: logging.LogRecord) -> bool:
        from distributed.comm.core import CommClosedError
        from distributed.core import Status

        if not record.getMessage().startswith("Failed to communicate with scheduler"):
            return True
        if self.worker.status in {Status.closing, Status.closed, Status.closing_gracefully}:
            return False
        closed_under_it = record.exc_info is not None and isinstance(record.exc_info[1], CommClosedError)
        return not (self.scheduler_is_ours and closed_under_it)


class _NannyKillAtShutdown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Worker process still alive after"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


@contextlib.contextmanager
def quiet_cluster_shutdown() -> Iterator[None]:
    """While a cluster is closed on purpose, log the nanny's kill of a slow worker at DEBUG; leave off
    tornado's record of the cluster's state task timed out at its close (:func:`quiet_closing_callbacks`)."""
    quiet_closing_callbacks()
    nanny = logging.getLogger("distributed.nanny")
    quiet = _NannyKillAtShutdown()
    nanny.addFilter(quiet)
    try:
        yield
    finally:
        nanny.removeFilter(quiet)


class _ClosingCallbackFilter(logging.Filter):
    """Drops tornado's "Exception in callback" record of a Dask cluster's own state task
    (``SpecCluster._correct_state_internal``) that timed out or was cancelled: the cluster's close
    cancels it, and on a busy machine tornado logs the discarded result at ERROR with two tracebacks
    before lenshunt's one warning (fresh-user trials: 20 lines on ``serve``'s console after a firing
    that completed; after ``lenshunt run: stopped (SIGTERM)``). Any other callback error is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        import asyncio

        error = record.exc_info[1] if record.exc_info else None
        ours = "_correct_state" in record.getMessage()
        return not (ours and isinstance(error, TimeoutError | asyncio.CancelledError))


_CLOSING_CALLBACKS = _ClosingCallbackFilter()


def quiet_closing_callbacks() -> None:
    """Install :class:`_ClosingCallbackFilter` on tornado's application logger (once; it stays, as the
    record may come after the close returned)."""
    tornado = logging.getLogger("tornado.application")
    if _CLOSING_CALLBACKS not in tornado.filters:
        tornado.addFilter(_CLOSING_CALLBACKS)


@contextlib.contextmanager
def closed_tolerantly(resource, what: str) -> Iterator:  # type: ignore[no-untyped-def]
    """``with resource as value``, except that a timeout while closing it after the body finished is
    logged as a warning, not raised: the run's work is done and written by then (new-user trial: on a
    loaded machine ``make demo`` failed after scoring every object, while a slow worker was stopped).
    An error of the body is raised as usual (not a timeout closing after it), with the resource closed
    as its context manager does.
    """
    value = resource.__enter__()
    try:
        yield value
    except BaseException as error:
        try:
            suppressed = resource.__exit__(type(error), error, error.__traceback__)
        except TimeoutError as exc:  # the body's error says more than the timeout closing after it
            _closing_timed_out(what, exc, "after an error")
            suppressed = False
        if not suppressed:
            raise
    else:
        try:
            resource.__exit__(None, None, None)
        except TimeoutError as exc:
            _closing_timed_out(what, exc, "after the work was done")


def _closing_timed_out(what: str, exc: TimeoutError, when: str) -> None:
    logging.getLogger("lenshunt").warning(
        "closing %s timed out %s (%s); a local cluster's workers stop when this process exits, a batch "
        "cluster's jobs by their own timeout (check the queue)",
        what,
        when,
        str(exc) or type(exc).__name__,  # review: a bare TimeoutError() printed "()"
    )


class QuietTensorFlow(WorkerPlugin):
    """Worker plugin: :func:`quiet_tensorflow` in every worker process before its first task, and
    no heartbeat traceback when the scheduler closes (:class:`ClosingHeartbeatFilter`;
    ``scheduler_is_ours`` where the scheduler runs in the lenshunt process)."""

    name = "lenshunt-quiet-tensorflow"

    def __init__(self, scheduler_is_ours: bool = False) -> None:
        self.scheduler_is_ours = scheduler_is_ours

    def setup(self, worker) -> None:
        quiet_tensorflow()
        # Kept for the process's life: the heartbeat that fails comes after plugin teardown.
        heartbeat = ClosingHeartbeatFilter(worker, scheduler_is_ours=self.scheduler_is_ours)
        logging.getLogger("distributed.worker").addFilter(heartbeat)
