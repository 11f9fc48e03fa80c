"""Waiting on a stage's Dask tasks while watching the workers that run them.

Two trials ended badly while a stage waited on its tasks. A worker that ran over its memory limit
was restarted by its nanny, Dask tried the task on four workers and gave up with ``KilledWorker``,
which the CLI printed as a bug with its traceback; and a cluster whose every worker was killed left
the command waiting silently for good. :func:`results_as_completed` turns the first into a
:class:`pipeline.errors.WorkersLostError` that says what died, why it may have and what to change,
and watches the second: it warns once when the cluster has had no worker for
:data:`NO_WORKER_WARN_S` seconds while work is pending, and gives up after
:data:`pipeline.compute.cluster.WORKER_WAIT_S` (the wait at start) with the same kind of error.
On a batch cluster (dask-jobqueue) it also has the jobs whose workers left replaced while the
others go on (:class:`pipeline.compute.lostjobs.LostJobWatch`).

Neither is retried by the Prefect tasks (:func:`flows.failures.is_deterministic`): Dask already ran
a killed task on ``distributed.scheduler.allowed-failures`` + 1 workers, and a retry with the same
batch size on the same workers dies the same way, after minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pipeline.compute import cluster as _cluster
from pipeline.compute.lostjobs import LostJobWatch
from pipeline.errors import WorkersLostError

if TYPE_CHECKING:
    from distributed import Client, Future

NO_WORKER_WARN_S = 10.0
"""How long a cluster may have no worker, while work is pending, before a run warns (s)."""

POLL_S = 2.0
"""How often a waiting run looks at the cluster's workers (s)."""


def results_as_completed(
    client: Client, futures: Iterable[Future], what: str, *, advice: str = ""
) -> Iterator[tuple[Future, Any]]:
    """Yield ``(future, result)`` of each of ``futures`` as it finishes, watching the workers.

    Parameters
    ----------
    client
        The client the futures were submitted with.
    futures
        The stage's futures.
    what
        The stage, as the messages name it (``"score regions"``).
    advice
        The stage's own fix for a task whose workers died, put first (``"lower --batch-size (now
        256)"``); the memory setting of the cluster's kind and where its worker logs are follow.

    Raises
    ------
    WorkersLostError
        When Dask gave up on a task because the workers running it died (``KilledWorker``), or
        when the cluster had no worker for :data:`pipeline.compute.cluster.WORKER_WAIT_S` seconds
        while work was pending.
    """
    from distributed import wait
    from distributed.scheduler import KilledWorker

    pending = set(futures)
    since = time.time()  # the nanny's memory restarts of this wait (scheduler events carry wall times)
    watch = _NoWorkerWatch(client, what)
    while pending:
        try:
            done, pending = wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            watch.check(len(pending))
            continue
        for future in done:
            try:
                result = future.result()
            except KilledWorker as exc:
                raise workers_died(client, exc, what, advice, since=since) from None
            yield future, result
        if pending:
            watch.check(len(pending))


def workers_died(
    client: Client, exc: BaseException, what: str, advice: str = "", *, since: float | None = None
) -> WorkersLostError:
    """The one-line error for a ``KilledWorker``: what died, why, what to change.

    Why is read from the scheduler's ``worker-restart-memory`` events, which a nanny logs when it
    restarts its worker over ``distributed.worker.memory.terminate`` of its limit
    (``distributed.worker_memory.NannyMemoryManager``): with such an event since ``since`` (a
    ``time.time()``; all events where None), the memory limit killed them; without one, the workers
    died some other way (the system's out-of-memory killer, a signal, a crash in native code), and
    the message says so (trial: any death was said to be "over their memory limit, say").
    """
    import dask
    from dask.utils import format_bytes, key_split

    task = getattr(exc, "task", None)
    kind = key_split(task) if task is not None else "a task"
    tries = getattr(exc, "allowed_failures", 0) + 1
    times = "once" if tries == 1 else f"{tries} times"
    limit = getattr(getattr(exc, "last_worker", None), "memory_limit", None)
    restarts = memory_restarts(client, since)
    terminate = dask.config.get("distributed.worker.memory.terminate")
    if restarts:
        rss = max(int(event.get("rss", 0)) for event in restarts)
        at = f" at {terminate:.0%} of it" if terminate else ""
        why = (
            f"over their memory limit{f' of {format_bytes(limit)} per worker' if limit else ''}: their "
            f"nannies restarted {len(restarts)} worker(s){at}, using up to {format_bytes(rss)}"
        )
    elif limit:
        why = (
            f"not by their memory limit of {format_bytes(limit)} per worker: no nanny restarted one for "
            "memory, so something else killed them: the system's out-of-memory killer when the "
            "machine's memory ran short, a signal, or a crash in native code"
        )
    else:
        why = (
            "they had no memory limit: the system's out-of-memory killer when the machine's memory ran "
            "short, say, a signal, or a crash in native code"
        )
    kind_of = _kind_of(client)
    memory = f"give each worker more memory ({kind_of.memory})"
    fixes = f"{advice}, or {memory}" if advice else memory
    return WorkersLostError(
        f"{what}: the Dask workers running its task {kind} died {times} ({why}), so Dask gave up "
        f"on it; {fixes}; the worker logs say why they died ({kind_of.logs})"
    )


def memory_restarts(client: Client, since: float | None = None, wait_s: float = 1.0) -> list[dict]:
    """The scheduler's ``worker-restart-memory`` events (``{"worker", "pid", "rss"}``) since ``since``.

    A nanny logs the event just before it terminates its worker, so it may reach the scheduler a
    little after the worker's loss: an empty answer is asked again for up to ``wait_s`` seconds.
    A scheduler that cannot answer gives an empty list.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            events = client.get_events("worker-restart-memory")
        except Exception:  # the scheduler is gone: nothing is known
            return []
        found = [msg for stamp, msg in events if since is None or stamp >= since]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


class _NoWorkerWatch:
    """Warn once when the cluster has had no worker for a while with work pending; give up later."""

    def __init__(self, client: Client, what: str) -> None:
        self.client = client
        self.what = what
        self.since: float | None = None
        self.warned = False
        jobqueue = _cluster_of(client)
        # a batch cluster's lost jobs are replaced while the others go on (and at once when none is left)
        self.lost = LostJobWatch(jobqueue, what) if _is_jobqueue(jobqueue) else None

    def check(self, n_pending: int) -> None:
        try:
            n_workers = self.client.scheduler_info(n_workers=0).get("n_workers", 0)
        except Exception:  # the scheduler itself is gone: the futures will say so
            return
        now = time.monotonic()
        if self.lost is not None:
            self.lost.check()
        if n_workers:
            if self.warned:
                logging.getLogger("lenshunt").info("%s: a worker joined again; going on", self.what)
            self.since, self.warned = None, False
            return
        self.since = now if self.since is None else self.since
        kind_of = _kind_of(self.client)
        waited = now - self.since
        if waited >= _cluster.WORKER_WAIT_S:
            raise WorkersLostError(
                f"{self.what}: no worker was left in {kind_of.where} for {_cluster.WORKER_WAIT_S:g} s "
                f"with {n_pending} task(s) pending, so the run gave up; {kind_of.start}, then rerun; "
                f"the worker logs say why they left ({kind_of.logs})"
            )
        if waited >= NO_WORKER_WARN_S and not self.warned:
            self.warned = True
            if self.lost is not None:  # its lost jobs replaced, as the warning says
                self.lost.check(at_once=True)
            logging.getLogger("lenshunt").warning(
                "%s: no worker is left in %s (for %.0f s) with %d task(s) pending: waiting up to %g min "
                "for one (%s; the worker logs say why they left: %s)",
                self.what,
                kind_of.where,
                waited,
                n_pending,
                _cluster.WORKER_WAIT_S / 60,
                kind_of.start,
                kind_of.logs,
            )


class _KindOf:
    """What the messages say of a cluster of one kind: where, how to start a worker, memory, logs."""

    def __init__(self, where: str, start: str, memory: str, logs: str) -> None:
        self.where, self.start, self.memory, self.logs = where, start, memory, logs


def _cluster_of(client: Client) -> Any:
    """The Dask cluster this process started for ``client``: its own, or the one a stage joined by
    address (``lenshunt run``); None for a scheduler started elsewhere."""
    dask_cluster = getattr(client, "cluster", None)
    if dask_cluster is None:
        with contextlib.suppress(Exception):  # a client whose scheduler is gone
            dask_cluster = _cluster.owned_cluster(client.scheduler.address)
    return dask_cluster


def _is_jobqueue(dask_cluster: Any) -> bool:
    return type(dask_cluster).__module__.startswith("dask_jobqueue")


def _profiles_file() -> str:
    """The jobqueue profiles file in use (trial: the hint named deploy/jobqueue.yaml whatever
    ``$LENSHUNT_JOBQUEUE_CONFIG`` named)."""
    from pipeline.compute.profiles import CONFIG_ENV, config_path

    try:
        return str(config_path())
    except Exception:  # gone since the cluster started: the variable names it still
        return os.environ.get(CONFIG_ENV) or "deploy/jobqueue.yaml"


def _kind_of(client: Client) -> _KindOf:
    dask_cluster = _cluster_of(client)
    if dask_cluster is None:  # a scheduler lenshunt joined (--scheduler, the batch scripts of deploy/)
        address = client.scheduler.address
        return _KindOf(
            f"the Dask scheduler at {address}",
            f"start one (`dask worker {address}`)",
            "`dask worker --memory-limit`; the batch scripts of deploy/ take LENSHUNT_WORKER_MEMORY",
            "the output of the `dask worker` processes; the batch scripts of deploy/ write "
            "LENSHUNT_DASK_DIR/workers-*.log",
        )
    if _is_jobqueue(dask_cluster):
        return _KindOf(
            "the batch jobs of the cluster",
            "the run asks the batch system for new jobs in place of those whose workers left; check "
            "the queue (squeue, qstat)",
            f"raise the profile's `memory` in {_profiles_file()}, shared by its `processes`",
            "the jobs' log files, in the profile's `log_directory`",
        )
    return _KindOf(
        "the local Dask cluster",
        "the system may have killed its worker processes (its out-of-memory killer, say): stop with "
        "Ctrl-C and rerun with fewer --workers",
        "fewer --workers: a local worker's limit is the machine's memory over the workers",
        "the worker lines above, on this console",
    )
