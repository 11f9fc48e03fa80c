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
    """While a cluster is closed on purpose, log the nanny's kill of a slow worker at DEBUG."""
    nanny = logging.getLogger("distributed.nanny")
    quiet = _NannyKillAtShutdown()
    nanny.addFilter(quiet)
    try:
        yield
    finally:
        nanny.removeFilter(quiet)


CLOSE_TIMEOUT_S = 60.0
"""How long closing a Dask cluster may take (s) before the worker processes it started here are killed.

User report: a worker that did not exit (one the nanny was restarting, stuck in its start; a busy
machine) made the close at the end of a good run wait without end, or end in a TimeoutError
traceback. Distributed's own close has no bound (``Cluster.__exit__`` closes with no timeout).
"""


@contextlib.contextmanager
def closed_tolerantly(resource, what: str) -> Iterator:  # type: ignore[no-untyped-def]
    """``with resource as value``, except that closing it is bounded and a failure closing it after the
    body finished is logged as a one-line warning, not raised: the run's work is done and written by
    then (new-user trial: on a loaded machine ``make demo`` failed after scoring every object, while
    a slow worker was stopped). A Dask cluster is closed within :data:`CLOSE_TIMEOUT_S`; its worker
    processes still running then are killed (:func:`_closing_failed`). An error of the body is raised
    as usual (not a failure closing after it), with the resource closed as its context manager does.
    """
    value = resource.__enter__()
    try:
        yield value
    except BaseException as error:
        try:
            suppressed = _close(resource, error)
        except (TimeoutError, OSError) as exc:  # the body's error says more than a failure closing after it
            _closing_failed(resource, what, exc, "after an error")
            suppressed = False
        if not suppressed:
            raise
    else:
        try:
            _close(resource, None)
        except (TimeoutError, OSError) as exc:  # OSError: distributed's CommClosedError, a refused comm
            _closing_failed(resource, what, exc, "after the work was done")


def _close(resource, error: BaseException | None) -> bool:  # type: ignore[no-untyped-def]
    """Close ``resource`` as its ``__exit__`` does, a Dask cluster within :data:`CLOSE_TIMEOUT_S`
    (``distributed``'s TimeoutError after it); whether ``error`` (of the body) is suppressed."""
    from distributed.deploy.cluster import Cluster

    if isinstance(resource, Cluster):
        resource.close(timeout=CLOSE_TIMEOUT_S)
        return False
    if error is None:
        return bool(resource.__exit__(None, None, None))
    return bool(resource.__exit__(type(error), error, error.__traceback__))


def _closing_failed(resource, what: str, exc: BaseException, when: str) -> None:  # type: ignore[no-untyped-def]
    """Kill the worker processes of ``resource`` (a local cluster's) that did not exit, and warn in one
    line what happened."""
    from distributed.deploy.cluster import Cluster

    killed = _kill_local_workers(resource) if isinstance(resource, Cluster) else 0
    if killed:
        _abandon(resource)
        after = f"; its {killed} worker process(es) still running were killed"
    elif isinstance(resource, Cluster):
        after = (
            "; a local cluster's workers stop when this process exits, a batch cluster's jobs by their "
            "own timeout (check the queue)"
        )
    else:
        after = ""
    verb = "timed out" if isinstance(exc, TimeoutError) else "failed"
    logging.getLogger("lenshunt").warning(
        "closing %s %s %s (%s)%s",
        what,
        verb,
        when,
        str(exc) or type(exc).__name__,  # review: a bare TimeoutError() printed "()"
        after,
    )


def _abandon(cluster) -> None:  # type: ignore[no-untyped-def]
    """Close the scheduler of ``cluster`` (in this process) within seconds and mark the cluster closed:
    else distributed's exit handler waits 10 s more for the close that timed out (``close_clusters``)."""
    from distributed.core import Status

    scheduler = getattr(cluster, "scheduler", None)
    if scheduler is not None and hasattr(scheduler, "close"):
        with contextlib.suppress(Exception):
            cluster.sync(scheduler.close, callback_timeout=5)
    cluster.status = Status.closed


def _kill_local_workers(cluster) -> int:  # type: ignore[no-untyped-def]
    """SIGKILL the worker processes (and theirs) of ``cluster``'s nannies that are this process's
    children and still run; how many workers. A batch cluster's jobs (no local process) are left to
    their scheduler."""
    import psutil

    killed = 0
    for worker in list(getattr(cluster, "workers", {}).values()):
        # Nanny -> WorkerProcess -> AsyncProcess (distributed 2026.7.1); anything else: not local
        pid = getattr(getattr(getattr(worker, "process", None), "process", None), "pid", None)
        if not isinstance(pid, int):
            continue
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if process.ppid() != os.getpid() or not process.is_running():
                continue
            for child in [*process.children(recursive=True), process]:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            killed += 1
    return killed


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
