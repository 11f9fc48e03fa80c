"""Batch-system profiles (``deploy/jobqueue.yaml``) -> dask-jobqueue clusters and job scripts.

A *profile* describes one kind of batch job that hosts Dask workers: where it runs (queue or
partition, account), what it asks for (cores, memory, GPUs, walltime) and how the job prepares
its environment (``module load``, activating a virtual environment). Profiles are named
``<kind>:<name>`` with ``kind`` one of ``slurm`` or ``pbs``, e.g. ``slurm:gpu``; the CLI's
``--cluster slurm:gpu`` selects one (see :func:`pipeline.compute.cluster.connect`).

CPU profiles start ``dask worker`` with ``processes`` worker processes per job. GPU profiles
(``gpus_per_job > 0``) start dask-cuda's ``dask cuda worker``, which starts one worker per GPU of
the job (each confined to its own device); the job asks for the GPUs with ``--gres=gpu:N`` on
SLURM and ``ngpus=N`` in the PBS resource list. ``cores`` and ``memory`` are always per *job*;
each worker gets ``memory / workers`` as its memory limit.

Profiles are read from, in order: the ``path`` argument, ``$LENSHUNT_JOBQUEUE_CONFIG``, and
``deploy/jobqueue.yaml`` of the source tree.

Examples
--------
>>> from pipeline.compute.jobqueue import load_profile
>>> load_profile("slurm", "gpu").gpus_per_job  # doctest: +SKIP
4
>>> print(render_job_script("slurm", "cpu"))  # doctest: +SKIP
#!/usr/bin/env bash
#SBATCH -J lenshunt-worker
...
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ClusterError

if TYPE_CHECKING:
    from dask_jobqueue import JobQueueCluster
from pipeline.compute.profiles import (  # noqa: F401 - re-exported API
    CONFIG_ENV,
    CPU_WORKER_COMMAND,
    DEFAULT_CONFIG,
    GPU_WORKER_COMMAND,
    KINDS,
    PLACEHOLDER_SCHEDULER,
    REPO_ROOT,
    SUBMIT_COMMANDS,
    Profile,
    ProfileError,
    _expand,
    config_path,
    load_profile,
    load_profiles,
    make_log_directory,
)


def cluster_kwargs(profile: Profile) -> dict[str, Any]:
    """Keyword arguments of ``SLURMCluster`` / ``PBSCluster`` for ``profile`` (pure)."""
    n_workers = profile.n_workers_per_job
    threads = profile.worker_threads
    kwargs: dict[str, Any] = {
        "job_name": profile.job_name,
        "queue": profile.queue,
        "account": profile.account,
        # dask-jobqueue gives each worker cores / processes threads and memory / processes bytes.
        "cores": threads * n_workers,
        "memory": profile.memory,
        "processes": n_workers,
        "walltime": profile.walltime,
        "job_script_prologue": list(profile.job_script_prologue),
        "worker_command": profile.worker_command,
        "worker_extra_args": list(profile.worker_extra_args),
        "job_extra_directives": list(profile.job_extra_directives),
        "job_directives_skip": list(profile.job_directives_skip),
        "interface": profile.interface,
        "local_directory": profile.local_directory,
        "log_directory": _expand(profile.log_directory),
        "python": profile.python or sys.executable,
        "death_timeout": profile.death_timeout,
        "scheduler_options": {"dashboard_address": profile.dashboard_address},
    }
    if profile.kind == "slurm":
        kwargs["job_cpu"] = profile.cores
        kwargs["job_mem"] = _slurm_memory(profile.memory)
        if profile.uses_gpus and not _has_gpu_directive(profile.job_extra_directives):
            kwargs["job_extra_directives"].append(f"--gres=gpu:{profile.gpus_per_job}")
    else:
        kwargs["resource_spec"] = profile.resource_spec or pbs_resource_spec(profile)
    return kwargs


def pbs_resource_spec(profile: Profile) -> str:
    """PBS Pro ``select`` statement for one job of ``profile`` (one chunk = one node)."""
    from dask.utils import parse_bytes

    spec = f"select=1:ncpus={profile.cores}"
    if profile.uses_gpus:
        spec += f":ngpus={profile.gpus_per_job}"
    mib = -(-parse_bytes(profile.memory) // 2**20)
    return spec + (f":mem={mib // 1024}gb" if mib % 1024 == 0 else f":mem={mib}mb")


def render_job_script(
    kind: str, name: str, path: str | os.PathLike[str] | None = None, scheduler: str = PLACEHOLDER_SCHEDULER
) -> str:
    """The batch script one worker job of profile ``kind:name`` would submit (no scheduler is started).

    Parameters
    ----------
    kind, name
        The profile (see :func:`load_profile`).
    path
        Profiles file (default: see :func:`config_path`).
    scheduler
        Scheduler address written into the worker command.
    """
    profile = load_profile(kind, name, path)
    job_cls = _job_class(profile.kind)
    kwargs = cluster_kwargs(profile)
    kwargs.pop("scheduler_options")
    log_directory = kwargs.pop("log_directory")
    # dask-jobqueue creates the log directory when it builds a job: hand it an existing stand-in
    # so that rendering has no side effects, then put the real path in the script.
    with tempfile.TemporaryDirectory(prefix="lenshunt-render-") as stand_in:
        script = job_cls(
            scheduler=scheduler,
            name=profile.job_name,
            log_directory=stand_in if log_directory else None,
            **kwargs,
        ).job_script()
    return script.replace(stand_in, log_directory) if log_directory else script


def make_jobqueue_cluster(
    kind: str, name: str, n_workers: int | None = None, path: str | os.PathLike[str] | None = None
) -> JobQueueCluster:
    """Start a dask-jobqueue cluster for profile ``kind:name`` and submit its worker jobs.

    The scheduler runs in this process; each job is one ``dask worker`` (CPU profiles) or
    ``dask cuda worker`` (GPU profiles) that joins it. Close the cluster (or use it as a context
    manager) to cancel the jobs.

    Parameters
    ----------
    kind, name
        The profile (see :func:`load_profile`).
    n_workers
        Jobs to submit (default: the profile's ``jobs``). Each job starts
        ``profile.n_workers_per_job`` workers.
    path
        Profiles file (default: see :func:`config_path`).

    Raises
    ------
    ProfileError
        Unknown or invalid profile.
    ClusterError
        The batch system's submit command is not installed here, or it refused a worker job
        (see :func:`pipeline.compute.submit.submit_jobs`).
    """
    profile = load_profile(kind, name, path)
    require_submit_command(profile)
    make_log_directory(profile)
    cluster_cls = _cluster_class(profile.kind)
    try:
        cluster = cluster_cls(**cluster_kwargs(profile))
    except (ValueError, OSError) as exc:
        raise ClusterError(f"could not start a {profile.id} cluster: {exc}") from exc
    from pipeline.compute.submit import submit_jobs

    try:
        submit_jobs(cluster, profile, n_workers or profile.jobs, path)
    except BaseException:
        cluster.close()  # cancels the jobs that were queued
        raise
    return cluster


def require_submit_command(profile: Profile) -> None:
    """Raise :class:`ClusterError` unless the profile's submit command (sbatch, qsub) is on PATH."""
    submit = SUBMIT_COMMANDS[profile.kind]
    if shutil.which(submit) is None:
        raise ClusterError(
            f"--cluster {profile.id} submits jobs with {submit}, which is not on PATH here. Run lenshunt "
            f"on a login node of a {profile.kind.upper()} cluster, or use --cluster local."
        )


RUN_TEMPLATES = {
    "slurm": REPO_ROOT / "deploy" / "slurm" / "lenshunt-run.sbatch",
    "pbs": REPO_ROOT / "deploy" / "pbs" / "lenshunt-run.pbs",
}
_BLOCK = re.compile(
    r"^# >>> lenshunt directives.*?^# <<< lenshunt directives[^\n]*\n", re.MULTILINE | re.DOTALL
)


def render_run_script(
    kind: str,
    name: str,
    nodes: int | None = None,
    path: str | os.PathLike[str] | None = None,
    template: str | os.PathLike[str] | None = None,
    job_name: str = "lenshunt-run",
) -> str:
    """The whole-pipeline batch script (``deploy/<kind>/lenshunt-run.*``) set up for a profile.

    The template's block between ``# >>> lenshunt directives`` and ``# <<< lenshunt directives``
    is replaced by directives for ``nodes`` nodes of the profile's job shape (cores, memory,
    GPUs, walltime, queue, account, extra directives), the worker settings the script reads
    (``LENSHUNT_WORKER_KIND`` cuda or cpu, processes, threads, memory per worker, interface,
    dashboard, python) as overridable defaults, and the profile's prologue lines.

    Parameters
    ----------
    kind, name
        The profile (see :func:`load_profile`).
    nodes
        Nodes of the allocation (default: the profile's ``jobs``).
    path
        Profiles file (default: see :func:`config_path`).
    template
        The batch template (default: the one of ``kind`` in ``deploy/``).
    job_name
        Name of the batch job.
    """
    profile = load_profile(kind, name, path)
    source = Path(template) if template else RUN_TEMPLATES[profile.kind]
    text = source.read_text()
    if not _BLOCK.search(text):
        raise ProfileError(
            f"{source} has no '# >>> lenshunt directives' ... '# <<< lenshunt directives' block"
        )
    nodes = nodes or profile.jobs
    directives = (
        _slurm_run_directives(profile, nodes, job_name)
        if profile.kind == "slurm"
        else _pbs_run_directives(profile, nodes, job_name)
    )
    directives = [d for d in directives if not any(skip in d for skip in profile.job_directives_skip)]
    from dask.utils import format_bytes, parse_bytes

    workers = profile.n_workers_per_job
    settings = {
        "LENSHUNT_WORKER_KIND": "cuda" if profile.uses_gpus else "cpu",
        "LENSHUNT_WORKER_PROCESSES": str(profile.n_workers_per_job),
        "LENSHUNT_WORKER_THREADS": str(profile.worker_threads),
        "LENSHUNT_WORKER_MEMORY": format_bytes(run_worker_memory_bytes(profile)).replace(" ", ""),
        "LENSHUNT_INTERFACE": profile.interface or "",
        "LENSHUNT_DASHBOARD": profile.dashboard_address or "none",
        "LENSHUNT_PYTHON": profile.python or sys.executable,
    }
    if profile.local_directory:
        settings["LENSHUNT_LOCAL_DIR"] = profile.local_directory
    reserve = format_bytes(parse_bytes(profile.memory) - run_worker_memory_bytes(profile) * workers)
    lines = [
        f"# >>> lenshunt directives: rendered from profile {profile.id} for {nodes} node(s)",
        *directives,
        f"# Worker memory: the node's {profile.memory} less {reserve} for the Dask scheduler and lenshunt",
        "# on the first node, shared by its workers.",
    ]
    lines += [f': "${{{key}:={value}}}"' for key, value in settings.items()]
    lines += list(profile.job_script_prologue)
    lines.append("# <<< lenshunt directives")
    return _BLOCK.sub(lambda _: "\n".join(lines) + "\n", text, count=1)


RUN_RESERVE_BYTES = 2**30
"""Memory the whole-pipeline script leaves beside its workers (bytes), plus :data:`RUN_RESERVE_SHARE`."""

RUN_RESERVE_SHARE = 0.05
"""Share of the job's memory the whole-pipeline script leaves beside its workers, on top."""


def run_worker_memory_bytes(profile: Profile) -> int:
    """Memory limit of each worker of the whole-pipeline script: the job's memory less a reserve,
    shared by the job's workers.

    The script runs the Dask scheduler and lenshunt itself (the Prefect server, the flow, the
    catalog writer: about 1 GiB together) on the first node, beside that node's workers; a worker
    given the whole job's share could grow until the batch system killed the job (trial:
    ``slurm:localhost`` rendered ``--mem=2862M`` with 2.79 GiB for its one worker). The reserve,
    :data:`RUN_RESERVE_BYTES` plus :data:`RUN_RESERVE_SHARE` of the job's memory (for the system's
    own use and the memory of a worker that runs over its limit until its nanny stops it), is left
    on every node: the nodes share one setting.

    Raises
    ------
    ProfileError
        When the profile's memory leaves less than 512 MiB per worker beside the reserve.
    """
    from dask.utils import format_bytes, parse_bytes

    memory = parse_bytes(profile.memory)
    reserve = RUN_RESERVE_BYTES + int(RUN_RESERVE_SHARE * memory)
    per_worker = (memory - reserve) // profile.n_workers_per_job
    if per_worker < 2**29:
        raise ProfileError(
            f"profile {profile.id}: memory {profile.memory} leaves {format_bytes(max(per_worker, 0))} per "
            f"worker beside the {format_bytes(reserve)} the whole-pipeline script keeps for the Dask "
            "scheduler and lenshunt: raise `memory` (or lower `processes`) in the profile"
        )
    return per_worker


def _slurm_run_directives(profile: Profile, nodes: int, job_name: str) -> list[str]:
    log_dir = _expand(profile.log_directory)
    lines = [
        f"--job-name={job_name}",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={profile.cores}",
        f"--mem={_slurm_memory(profile.memory)}",
        f"--time={profile.walltime}",
        f"--output={log_dir + '/' if log_dir else ''}{job_name}-%j.log",
    ]
    if profile.queue:
        lines.append(f"--partition={profile.queue}")
    if profile.account:
        lines.append(f"--account={profile.account}")
    if profile.uses_gpus and not _has_gpu_directive(profile.job_extra_directives):
        lines.append(f"--gres=gpu:{profile.gpus_per_job}")
    lines += profile.job_extra_directives
    return [f"#SBATCH {line}" for line in lines]


def _pbs_run_directives(profile: Profile, nodes: int, job_name: str) -> list[str]:
    spec = profile.resource_spec or pbs_resource_spec(profile)
    # One chunk per node, one launcher (MPI rank) per chunk.
    spec = re.sub(r"^select=\d+", f"select={nodes}", spec)
    if "mpiprocs=" not in spec:
        spec = spec.replace(f"select={nodes}", f"select={nodes}:mpiprocs=1", 1)
    lines = [
        f"-N {job_name}",
        f"-l {spec}",
        "-l place=scatter:excl",
        f"-l walltime={profile.walltime}",
        "-j oe",
    ]
    if profile.queue:
        lines.append(f"-q {profile.queue}")
    if profile.account:
        lines.append(f"-A {profile.account}")
    log_dir = _expand(profile.log_directory)
    if log_dir:
        lines.append(f"-o {log_dir}/")
    lines += profile.job_extra_directives
    return [f"#PBS {line}" for line in lines]


def import_jobqueue():  # type: ignore[no-untyped-def]
    """``dask_jobqueue``, imported without the SIGINT handler its ``runner`` module sets (``sys.exit()``).

    Trial: a Ctrl-C of a ``--cluster slurm`` run exited 0 with no line, its flow Crashed by "a Python
    system exit call", instead of the CLI's ``stopped (SIGINT)`` and exit 130. Its first import must
    be in the main thread (:func:`~pipeline.compute.check_cluster` does it): elsewhere setting that
    handler raises ValueError.
    """
    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # no handler can be set here
        import dask_jobqueue

        return dask_jobqueue
    previous = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    finally:
        signal.signal(signal.SIGINT, previous)
    return dask_jobqueue


def _job_class(kind: str):
    import_jobqueue()
    from dask_jobqueue.pbs import PBSJob
    from dask_jobqueue.slurm import SLURMJob

    return SLURMJob if kind == "slurm" else PBSJob


def _cluster_class(kind: str):
    jobqueue = import_jobqueue()
    return jobqueue.SLURMCluster if kind == "slurm" else jobqueue.PBSCluster


def _has_gpu_directive(directives: list[str]) -> bool:
    return any(re.match(r"\s*(--(gres|gpus|gpus-per-node|gpus-per-task)\b|-G\b)", d) for d in directives)


def _slurm_memory(memory: str) -> str:
    """SLURM ``--mem`` for a Dask size: whole MiB, rounded up (SLURM's ``M`` is MiB)."""
    from dask.utils import parse_bytes

    return f"{-(-parse_bytes(memory) // 2**20)}M"


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.compute.jobqueue list | show KIND:NAME | run-script KIND:NAME [--nodes N]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.compute.jobqueue", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--config", default=None, help=f"profiles file (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list the profiles")
    show = sub.add_parser("show", help="print the worker job script of a profile")
    show.add_argument("profile", help="kind:name, e.g. slurm:gpu")
    run = sub.add_parser("run-script", help="print the whole-pipeline batch script for a profile")
    run.add_argument("profile", help="kind:name, e.g. slurm:gpu")
    run.add_argument(
        "--nodes", type=int, default=None, help="nodes of the allocation (default: the profile's jobs)"
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "list":
            for key, profile in load_profiles(args.config).items():
                if not key.endswith(":default"):
                    print(f"{key:<20} {profile.description}")
            return 0
        kind, _, name = args.profile.partition(":")
        if args.action == "show":
            print(render_job_script(kind, name, args.config), end="")
        else:
            print(render_run_script(kind, name, nodes=args.nodes, path=args.config), end="")
            # trial: SLURM failed the job whose --output folder was missing (JobLaunchFailure), no log
            if made := make_log_directory(load_profile(kind, name, args.config)):
                print(f"made {made}, the log folder the script's output directive names", file=sys.stderr)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
