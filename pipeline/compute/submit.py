"""Submitting a dask-jobqueue cluster's worker jobs, with the batch system's refusal as one line.

dask-jobqueue's ``cluster.scale`` submits the jobs in the background: a job that ``sbatch`` or
``qsub`` refused ended in "Task exception was never retrieved" tracebacks, was submitted again and
again, and the run then waited 10 minutes for a worker of a job that was never queued (trial: the
shipped ``slurm:cpu`` on a SLURM without a ``cpu`` partition). :func:`submit_jobs` submits them and
waits for the submit command's answer, so a refusal is a :class:`~pipeline.errors.ClusterError`
naming the batch system's own reason and the profile's setting to change, before any work starts.

Submitting (rather than a dry run such as ``sbatch --test-only`` before the cluster starts) checks
exactly what the run submits, for every batch system (PBS's ``qsub`` has no dry run) and every
reason the submission can fail, those a dry run passes included (a per-user job limit, say).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from pipeline.compute.profiles import SUBMIT_COMMANDS, Profile, config_path
from pipeline.errors import ClusterError

if TYPE_CHECKING:
    from dask_jobqueue import JobQueueCluster

_FAILED_COMMAND = "Command exited with non-zero exit code"
"""How dask-jobqueue's ``Job._call`` starts the error of a submit command that failed."""

# What a refusal's reason names -> the profile setting to edit (first match wins).
_SETTINGS = (
    (("partition",), {"slurm": "partition", "pbs": "queue"}),
    (("queue",), {"slurm": "partition", "pbs": "queue"}),
    (("account", "project"), "account"),
    (("qos",), "job_extra_directives (--qos)"),
    (("time limit", "walltime"), "walltime"),
    (("gres", "gpu"), "gpus_per_job"),
    (("memory", "mem="), "memory"),
    (("node configuration", "cpu", "ncpus"), "cores"),
)


def submit_jobs(
    cluster: JobQueueCluster, profile: Profile, n_jobs: int, path: str | os.PathLike[str] | None = None
) -> None:
    """Ask ``cluster`` for ``n_jobs`` worker jobs and wait until the submit command has answered each.

    Raises
    ------
    ClusterError
        When the batch system refused a job; the jobs it had queued are cancelled (the cluster
        is left to the caller to close).
    """

    async def submit() -> None:
        # What ``cluster.scale(jobs=n_jobs)`` does, but awaited here: ``scale`` submits in a
        # callback whose error only the event loop logs (a traceback per job).
        while len(cluster.worker_spec) < n_jobs:  # one entry per job (its workers are a group)
            cluster.worker_spec.update(cluster.new_worker_spec())
        try:
            await cluster._correct_state()
        except RuntimeError:
            from distributed.core import Status

            # The run stops here: cancel the jobs that were queued, mark every job closed (the
            # cluster asserts so when it closes; dask-jobqueue's Job.close leaves its status) and
            # drop them all from the spec, so that nothing submits them again.
            for name, job in list(cluster.workers.items()):
                if getattr(job, "job_id", None) is not None:
                    await job.close()
                job.status = Status.closed
                cluster.workers.pop(name, None)
                cluster.worker_spec.pop(name, None)
            raise

    try:
        cluster.sync(submit)
    except RuntimeError as exc:
        if _FAILED_COMMAND not in str(exc):
            raise
        raise submit_refused(profile, str(exc), path) from None


def submit_refused(
    profile: Profile, message: str, path: str | os.PathLike[str] | None = None
) -> ClusterError:
    """The one-line error for a worker job the batch system refused (``message``: dask-jobqueue's).

    >>> from pipeline.compute.profiles import load_profile
    >>> print(submit_refused(load_profile("slurm", "cpu"), "Command exited with non-zero exit code."
    ...     "\\nstderr:\\nsbatch: error: invalid partition specified: cpu\\n"
    ...     "sbatch: error: Batch job submission failed: Invalid partition name specified\\n"))
    ... # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    sbatch refused the worker job of --cluster slurm:cpu: invalid partition specified: cpu (edit
    `partition` of profile cpu in .../deploy/jobqueue.yaml, or choose another profile)
    """
    submit = SUBMIT_COMMANDS[profile.kind]
    reason = refusal_reason(message, submit)
    lowered = reason.lower()
    setting = next(
        (
            choice if isinstance(choice, str) else choice[profile.kind]
            for words, choice in _SETTINGS
            if any(word in lowered for word in words)
        ),
        None,
    )
    what = f"`{setting}` of profile {profile.name}" if setting else f"profile {profile.name}"
    return ClusterError(
        f"{submit} refused the worker job of --cluster {profile.id}: {reason} (edit {what} in "
        f"{config_path(path)}, or choose another profile)"
    )


def refusal_reason(message: str, submit: str) -> str:
    """The submit command's own reason in dask-jobqueue's error ``message``: its first error line.

    >>> refusal_reason("...\\nstderr:\\nqsub: Unknown queue\\n", "qsub")
    'Unknown queue'
    """
    stderr = message.split("stderr:", 1)[1] if "stderr:" in message else message
    prefix = re.compile(rf"^\s*{re.escape(submit)}(:\s*error)?:\s*", re.IGNORECASE)
    lines = [prefix.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    # sbatch says why first, then "Batch job submission failed: <the same, in other words>"
    specific = [line for line in lines if not line.startswith("Batch job submission failed")]
    if specific or lines:
        return (specific or lines)[0]
    stdout = message.split("stdout:", 1)[1].split("stderr:", 1)[0] if "stdout:" in message else ""
    return stdout.strip().splitlines()[0] if stdout.strip() else "it gave no reason"
