"""Waiting on a stage's Dask tasks while watching the workers that run them.

Two trials ended badly while a stage waited on its tasks. A worker that ran over its memory limit
was restarted by its nanny, Dask tried the task on four workers and gave up with ``KilledWorker``,
which the CLI printed as a bug with its traceback; and a cluster whose every worker was killed left
the command waiting silently for good. :func:`results_as_completed` turns the first into a
:class:`pipeline.errors.WorkersLostError` that says what died, why it may have and what to change,
and watches the second: it warns once when the cluster has had no worker for
:data:`NO_WORKER_WARN_S` seconds while work is pending, and gives up after
:data:`pipeline.compute.cluster.WORKER_WAIT_S` (the wait at start) with the same kind of error.

Neither is retried by the Prefect tasks (:func:`flows.failures.is_deterministic`): Dask already ran
a killed task on ``distributed.scheduler.allowed-failures`` + 1 workers, and a retry with the same
batch size on the same workers dies the same way, after minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pipeline.compute import cluster as _cluster
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
                raise workers_died(client, exc, what, advice) from None
            yield future, result
        if pending:
            watch.check(len(pending))


def workers_died(client: Client, exc: BaseException, what: str, advice: str = "") -> WorkersLostError:
    """The one-line error for a ``KilledWorker``: what died, the likely why, what to change."""
    from dask.utils import format_bytes, key_split

    task = getattr(exc, "task", None)
    kind = key_split(task) if task is not None else "a task"
    tries = getattr(exc, "allowed_failures", 0) + 1
    times = "once" if tries == 1 else f"{tries} times"
    limit = getattr(getattr(exc, "last_worker", None), "memory_limit", None)
    why = (
        f"over their memory limit of {format_bytes(limit)} per worker, say: a nanny restarts its "
        "worker at 95% of it"
        if limit
        else "over their memory, say (they had no memory limit, so the system may have killed them)"
    )
    kind_of = _kind_of(client)
    memory = f"give each worker more memory ({kind_of.memory})"
    fixes = f"{advice}, or {memory}" if advice else memory
    return WorkersLostError(
        f"{what}: the Dask workers running its task {kind} died {times} ({why}), so Dask gave up "
        f"on it; {fixes}; the worker logs say why they died ({kind_of.logs})"
    )


class _NoWorkerWatch:
    """Warn once when the cluster has had no worker for a while with work pending; give up later."""

    def __init__(self, client: Client, what: str) -> None:
        self.client = client
        self.what = what
        self.since: float | None = None
        self.warned = False

    def check(self, n_pending: int) -> None:
        try:
            n_workers = self.client.scheduler_info(n_workers=0).get("n_workers", 0)
        except Exception:  # the scheduler itself is gone: the futures will say so
            return
        now = time.monotonic()
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


def _kind_of(client: Client) -> _KindOf:
    dask_cluster = getattr(client, "cluster", None)
    if dask_cluster is None:  # a scheduler lenshunt joined (--scheduler, the batch scripts of deploy/)
        address = client.scheduler.address
        return _KindOf(
            f"the Dask scheduler at {address}",
            f"start one (`dask worker {address}`)",
            "`dask worker --memory-limit`; the batch scripts of deploy/ take LENSHUNT_WORKER_MEMORY",
            "the output of the `dask worker` processes; the batch scripts of deploy/ write "
            "LENSHUNT_DASK_DIR/workers-*.log",
        )
    if type(dask_cluster).__module__.startswith("dask_jobqueue"):
        return _KindOf(
            "the batch jobs of the cluster",
            "check the queue (squeue, qstat): the cluster asks for new jobs",
            "raise the profile's `memory` in deploy/jobqueue.yaml, shared by its `processes`",
            "the jobs' log files, in the profile's `log_directory`",
        )
    return _KindOf(
        "the local Dask cluster",
        "the system may have killed its worker processes (its out-of-memory killer, say): stop with "
        "Ctrl-C and rerun with fewer --workers",
        "fewer --workers: a local worker's limit is the machine's memory over the workers",
        "the worker lines above, on this console",
    )
