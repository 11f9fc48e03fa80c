"""The one module that creates Dask clusters and clients.

Every stage takes a ``distributed.Client``; this module decides where its workers come from:

``local``
    a ``LocalCluster`` of processes on this machine (the embedded default);
``cuda``
    dask-cuda's ``LocalCUDACluster``: one worker per GPU, each confined to its own device;
``slurm:<profile>`` / ``pbs:<profile>``
    dask-jobqueue clusters from a named profile in ``deploy/jobqueue.yaml``
    (see :mod:`pipeline.compute.jobqueue`);
an address (``tcp://host:8786``) or ``scheduler=...``
    join an existing scheduler.

:func:`in_process_client` is a private cluster of threads for small jobs of the driver (the
HATS catalog writer).

Examples
--------
>>> from pipeline.compute.cluster import connect
>>> with connect("local", n_workers=1) as client:  # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.compute.guard import EXIT_S, guard_later_workers
from pipeline.errors import ClusterError

if TYPE_CHECKING:
    from distributed import Client

# Each worker process runs one task at a time and lets numpy/TensorFlow use its cores; the
# variables are set before the worker imports TF so it does not oversubscribe the machine.
_WORKER_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def _close_joined(client: Client, address: str) -> None:
    """Close the client of a scheduler this process joined, waiting at most ``EXIT_S`` for it; one that
    does not answer (frozen: the run's end waited on it without end, trial) is said in a warning and
    left: what the run wrote is kept, and the scheduler is its owner's."""
    try:
        client.close(timeout=EXIT_S)
    except Exception as exc:  # distributed's TimeoutError, or the comm's OSError
        logging.getLogger("lenshunt").warning(
            "the Dask scheduler at %s did not answer this run's close within %g s (%s); its client was "
            "left, and what the run wrote is kept",
            address,
            EXIT_S,
            type(exc).__name__,
        )


def default_n_workers() -> int:
    """Worker processes for a local cluster: one per core, at least one."""
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def connect(
    cluster: str = "local",
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = "auto",
    scheduler: str | None = None,
    dashboard: bool = False,
    timeout: str = "30s",
) -> Iterator[Client]:
    """Start (or join) a Dask cluster and yield a client; close what was started on exit.

    Parameters
    ----------
    cluster
        ``"local"``, ``"cuda"``, ``"slurm:<profile>"``, ``"pbs:<profile>"`` or a scheduler address.
    n_workers
        Workers to start (local: processes, default one per core; cuda: GPUs, default all;
        jobqueue: jobs to request).
    threads_per_worker
        Threads per local worker process.
    memory_limit
        Per-worker memory limit for local clusters (Dask syntax).
    scheduler
        Address of an existing scheduler; overrides ``cluster``.
    dashboard
        Serve the Dask dashboard (on a free port) for local clusters.
    timeout
        How long to keep trying to reach an existing scheduler.
    """
    from distributed import Client

    address = scheduler or (cluster if "://" in cluster else None)
    if address and address in _OWNED:  # a stage of a run that started the cluster (lenshunt run):
        # checked and guarded by the run's own connect (trial: guarded twice, whose second end
        # logged the scheduler's KeyError traceback; its messages took SLURM for a hand-started one)
        client = Client(address, timeout=timeout)
        try:
            yield client
        finally:
            _close_joined(client, address)
        return
    if address:
        try:
            client = Client(address, timeout=timeout)
        except OSError as exc:
            raise ClusterError(
                f"could not reach the Dask scheduler at {address}: {exc}. Check that it is running "
                "and reachable, or drop --scheduler to use a local cluster."
            ) from exc
        try:
            wait_for_a_worker(
                client, f"the Dask scheduler at {address}", f"start one (`dask worker {address}`)"
            )
            check_workers_run_lenshunt(client, f"the workers at {address}")
            with guard_later_workers(client, f"the Dask scheduler at {address}"):
                yield client
        finally:
            _close_joined(client, address)
        return

    kind, _, profile = cluster.partition(":")
    if kind == "local":
        with glibc_default_malloc_trim():
            dask_cluster = _local_cluster(n_workers, threads_per_worker, memory_limit, dashboard)
    elif kind == "cuda":
        with glibc_default_malloc_trim():
            dask_cluster = _cuda_cluster(n_workers, dashboard)
    elif kind in {"slurm", "pbs"}:
        from pipeline.compute.jobqueue import load_profile, make_jobqueue_cluster

        # the profile itself (trial: plain --cluster slurm said "profile default", the file's
        # `defaults: slurm: cpu` naming slurm:cpu)
        profile = load_profile(kind, profile or "default").name
        dask_cluster = make_jobqueue_cluster(kind, profile, n_workers=n_workers)
    else:
        raise unknown_cluster(cluster)
    from pipeline.compute.quiet import QuietTensorFlow, closed_tolerantly, quiet_cluster_shutdown

    with (
        quiet_cluster_shutdown(),
        closed_tolerantly(dask_cluster, "the Dask cluster"),
        closed_tolerantly(Client(dask_cluster), "the Dask client") as client,
        contextlib.ExitStack() as stack,
        _owned(client.scheduler.address, dask_cluster),
    ):
        if dashboard and client.dashboard_link:
            import logging

            logging.getLogger("lenshunt").info("Dask dashboard: %s", client.dashboard_link)
        if kind in {"slurm", "pbs"}:
            wait_for_a_worker(client, f"the {kind} jobs of profile {kind}:{profile}", "check the queue")
            where = "(the profile's job_script_prologue)"
            check_workers_run_lenshunt(client, f"the workers of profile {kind}:{profile}", where)
            guarded = guard_later_workers(client, f"the {kind} jobs of profile {kind}:{profile}", where)
            stack.enter_context(guarded)
        # local and cuda workers are this process's children: its own messages say why they stop
        client.register_plugin(QuietTensorFlow(scheduler_is_ours=kind in {"local", "cuda"}))
        if kind == "cuda" or (kind in {"slurm", "pbs"} and profile_uses_gpus(kind, profile)):
            from pipeline.compute.gpu_worker import GPUWorkerSetup

            client.register_plugin(GPUWorkerSetup())
        yield client


_OWNED: dict[str, object] = {}
"""The Dask clusters :func:`connect` started in this process, by scheduler address, while open."""


@contextlib.contextmanager
def _owned(address: str, dask_cluster: object) -> Iterator[None]:
    _OWNED[address] = dask_cluster
    try:
        yield
    finally:
        _OWNED.pop(address, None)


def owned_cluster(address: str) -> object | None:
    """The Dask cluster this process started whose scheduler is at ``address`` (None: another's).

    A stage that joins its run's cluster by address (``lenshunt run``) gets a client without
    ``.cluster``; its messages and the replacement of lost batch jobs look the cluster up here.
    """
    return _OWNED.get(address)


WORKER_WAIT_S = 600.0
"""How long a run waits for the first worker of a scheduler it joins or of its batch jobs (s)."""


def wait_for_a_worker(client: Client, where: str, advice: str) -> None:
    """Return once ``client``'s scheduler has a worker; say so while waiting (trial: a scheduler
    without workers left ``score regions: 0/1`` on the console for good).

    Raises
    ------
    ClusterError
        When no worker has joined in :data:`WORKER_WAIT_S` seconds.
    """
    if client.scheduler_info().get("workers"):
        return
    import logging

    logging.getLogger("lenshunt").warning(
        "no worker has joined %s yet: waiting up to %g min for one (%s)", where, WORKER_WAIT_S / 60, advice
    )
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        raise ClusterError(f"no worker joined {where} in {WORKER_WAIT_S:g} s: {advice}") from None


# Sent to the workers by value (built here, it is in no module they would have to import).
_PROBE_SOURCE = """
def lenshunt_on_worker():
    try:
        import pipeline
    except BaseException as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    return "version", getattr(pipeline, "__version__", "unknown")
"""


def check_workers_run_lenshunt(client: Client, workers: str, where: str = "") -> None:
    """Refuse workers that cannot import lenshunt, or run another version of it than this process.

    Trial: workers at ``--scheduler`` without lenshunt died unpickling every task, and the run only
    said "no worker is left ... waiting up to 10 min". A version that differs is refused too: the
    tasks run the workers' code, so their results (scores, stores) would come from another version
    than the one the catalog's provenance records, or fail midway on a changed function.

    Parameters
    ----------
    client
        Connected to the workers.
    workers
        The workers, as the message names them (``"the workers at tcp://host:8786"``).
    where
        Where to install it, added to the advice.

    Raises
    ------
    ClusterError
        When a worker cannot import lenshunt's package or runs another version.
    """
    import pipeline

    namespace: dict = {}
    exec(_PROBE_SOURCE, namespace)  # a fixed function, built to be pickled by value
    answers = client.run(namespace["lenshunt_on_worker"], on_error="return")
    ours = pipeline.__version__
    there = f"install lenshunt {ours} there{f' {where}' if where else ''}"
    errors, versions = {}, {}
    for worker, answer in answers.items():
        if isinstance(answer, BaseException):  # the probe itself failed there
            errors[worker] = f"{type(answer).__name__}: {answer}"
        elif answer[0] == "error":
            errors[worker] = answer[1]
        elif answer[1] != ours:
            versions[worker] = answer[1]
    if errors:
        some = "" if len(errors) == len(answers) else f" ({len(errors)} of {len(answers)})"
        raise ClusterError(
            f"{workers}{some} cannot import lenshunt ({next(iter(errors.values()))}): {there} "
            "(the same version as here)"
        )
    if versions:
        theirs = ", ".join(sorted(set(versions.values())))
        raise ClusterError(
            f"{workers} run lenshunt {theirs}, this process {ours}: {there} (tasks run the workers' "
            "code, so another version's results would be mixed in)"
        )


def unknown_cluster(cluster: str) -> ClusterError:
    """The error for a ``--cluster`` that is none of the kinds :func:`connect` knows."""
    return ClusterError(
        f"unknown cluster {cluster!r}: use 'local', 'cuda', 'slurm:<profile>', 'pbs:<profile>' "
        "or a scheduler address such as tcp://host:8786"
    )


@contextlib.contextmanager
def in_process_client(*, threads: int = 2, local_directory: str | None = None) -> Iterator[Client]:
    """A private Dask cluster of ``threads`` threads in this process, for small jobs of the driver.

    No dashboard (a free port for its HTTP server). While open it is the default client (tools
    such as hats-import look the client up that way); on exit the caller's default is back.
    Used by :func:`pipeline.catalog.hats.write_hats`.
    """
    from distributed import Client

    with Client(
        processes=False,
        n_workers=1,
        threads_per_worker=threads,
        dashboard_address=":0",
        local_directory=local_directory,
    ) as client:
        yield client


@contextlib.contextmanager
def glibc_default_malloc_trim() -> Iterator[None]:
    """Start nannies without Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` in their workers' environment.

    That setting makes glibc return freed memory to the OS after every large free, so each new
    cutout batch pays page faults again: measured on a 2-core machine, the simulator's CPU time
    per object was 0.184 s in workers with it, 0.073 s without and 0.068 s in-process. Workers here
    free and re-allocate same-sized batches all the time, so glibc's default threshold is kept.
    Must wrap the cluster's construction (nannies read the setting when they are created).
    """
    import dask
    import distributed  # noqa: F401 - loads distributed's config defaults first

    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    with dask.config.set({key: None}):
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        yield


def _local_cluster(n_workers: int | None, threads_per_worker: int, memory_limit: str | None, dashboard: bool):
    from distributed import LocalCluster

    for name in _WORKER_THREAD_ENV:
        os.environ.setdefault(name, str(threads_per_worker))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's INFO lines off the terminal
    return LocalCluster(
        n_workers=n_workers or default_n_workers(),
        threads_per_worker=threads_per_worker,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=":0" if dashboard else None,
        host="127.0.0.1",
        # Without a dashboard the scheduler still serves /health on an HTTP port: a free one, not
        # 8787 (which warns "Port 8787 is already in use" whenever another cluster runs).
        scheduler_kwargs=None if dashboard else {"dashboard_address": "127.0.0.1:0"},
    )


def cuda_unavailable() -> ClusterError | None:
    """The error for ``--cluster cuda`` where dask-cuda cannot be imported (no CUDA); None if it can."""
    try:
        import dask_cuda  # noqa: F401
    except Exception as exc:  # dask-cuda fails at import on machines without CUDA
        return ClusterError(
            f"--cluster cuda needs dask-cuda and a CUDA GPU ({type(exc).__name__}: {exc}). "
            "Install the extra with `pip install 'lenshunt[cuda]'` on a GPU machine, or use "
            "--cluster local."
        )
    return None


def _cuda_cluster(n_workers: int | None, dashboard: bool):
    problem = cuda_unavailable()
    if problem is not None:
        raise problem
    from dask_cuda import LocalCUDACluster

    kwargs = {"n_workers": n_workers} if n_workers else {}
    # LocalCUDACluster rotates CUDA_VISIBLE_DEVICES so each worker sees its own GPU first; the
    # worker plugin in pipeline.compute.gpu_worker (registered in connect) pins it to exactly that one.
    return LocalCUDACluster(
        threads_per_worker=1,
        dashboard_address=":0" if dashboard else None,
        host="127.0.0.1",
        **kwargs,
    )


def profile_uses_gpus(kind: str, profile: str) -> bool:
    """Whether a jobqueue profile starts dask-cuda workers."""
    from pipeline.compute.jobqueue import load_profile

    return load_profile(kind, profile or "default").gpus_per_job > 0
