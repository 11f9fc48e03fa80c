"""Replace the batch jobs of a dask-jobqueue cluster whose workers joined and then left.

dask-jobqueue keeps a job whose workers died (cancelled with ``scancel``/``qdel``, killed by the
scheduler, out of time) in its plan and never submits another. Trials: a scancelled worker job left
the run waiting while the warning said new jobs were asked for; and while other jobs still ran, a
lost job was not replaced at all (the run only acted once no worker was left), so the run went on
with fewer workers than the profile asked for.

:class:`LostJobWatch`, polled by :func:`pipeline.compute.workers.results_as_completed` while a stage
waits, notices a job whose workers have all been gone for :data:`LOST_JOB_GRACE_S` seconds (at
once when no worker at all is left), logs which batch job was lost, cancels what is left of it and
asks the batch system for a new job under the same name, keeping the cluster's number of jobs. The
tasks that ran on the lost workers are rescheduled by Dask (``distributed.scheduler.allowed-failures``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

LOST_JOB_GRACE_S = 15.0
"""How long all workers of a job that had joined must be gone before the job counts as lost (s).

A nanny restarting its worker (over its memory limit, say) leaves the scheduler for a few seconds;
its job is not replaced. dask-jobqueue itself waits ``distributed.deploy.lost-worker-timeout``
(15 s by default) before it forgets a worker's job."""


def job_members(name: object, job: dict) -> set[str]:
    """The Dask worker names of a job of the cluster's ``worker_spec`` (one per worker process)."""
    return {str(name) + suffix for suffix in job.get("group") or [""]}


class LostJobWatch:
    """Notice the lost jobs of a dask-jobqueue cluster and ask for new ones in their place.

    Parameters
    ----------
    dask_cluster
        The cluster (``SLURMCluster``, ``PBSCluster``).
    what
        The stage, as the messages name it (``"score regions"``).
    """

    def __init__(self, dask_cluster: Any, what: str) -> None:
        self.cluster = dask_cluster
        self.what = what
        self.joined: dict[str, str | None] = {}  # jobs whose workers joined: name -> batch job id
        self.gone_since: dict[str, float] = {}  # jobs whose workers are all gone: name -> since
        self.see()

    def see(self) -> set[str]:
        """The names of the cluster's workers now; the jobs they belong to are noted as joined."""
        with contextlib.suppress(Exception):  # the cluster's own copy of the scheduler's workers
            present = {str(w.get("name")) for w in self.cluster.scheduler_info["workers"].values()}
            for name, job in list(self.cluster.worker_spec.items()):
                if job_members(name, job) & present:
                    batch_job = self.cluster.workers.get(name)
                    self.joined[str(name)] = getattr(batch_job, "job_id", None) or self.joined.get(str(name))
            return present
        return set()

    def check(self, *, at_once: bool = False) -> int:
        """Replace the jobs lost so far; return how many were asked for anew.

        Parameters
        ----------
        at_once
            Count a job lost as soon as its workers are gone (no worker at all is left).
        """
        present = self.see()
        now = time.monotonic()
        spec = {str(name): (name, job) for name, job in self.cluster.worker_spec.items()}
        lost = []
        for name in list(self.joined):
            if name not in spec:  # scaled down: not ours to replace
                self.joined.pop(name)
                self.gone_since.pop(name, None)
                continue
            if job_members(*spec[name]) & present:
                self.gone_since.pop(name, None)
                continue
            since = self.gone_since.setdefault(name, now)
            if at_once or now - since >= LOST_JOB_GRACE_S:
                lost.append(name)
        for name in lost:
            self._replace(spec[name][0], now - self.gone_since.pop(name))
        if lost:
            self.cluster.scale(jobs=len(self.cluster.worker_spec))
        return len(lost)

    def _replace(self, name: object, gone_s: float) -> None:
        job_id = self.joined.pop(str(name), None)
        batch_job = self.cluster.workers.pop(name, None)  # opened again by the cluster under this name
        if batch_job is not None:  # cancel what may be left of it (a job that ended: nothing to do)
            with contextlib.suppress(Exception):
                self.cluster.loop.add_callback(batch_job.close)
        logging.getLogger("lenshunt").warning(
            "%s: batch job %s (Dask worker %s) was lost: its workers left %.0f s ago; asked the batch "
            "system for a new job in its place (%d job(s) in all); the others go on, and Dask runs the "
            "lost workers' tasks again (the job's log file in the profile's `log_directory` says why it "
            "ended)",
            self.what,
            job_id or "(id unknown)",
            name,
            gone_s,
            len(self.cluster.worker_spec),
        )
