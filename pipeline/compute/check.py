"""Checks of a ``--cluster`` / ``--scheduler`` choice that run before any flow or cluster starts.

A command checks its choice first, so a typo or an unusable cluster is one line of error and no flow
run (new-user trials: ``--cluster slurm:nope``, ``--cluster cuda`` without dask-cuda, and an unreachable
``--scheduler`` failed only after the flow had started; an address that answered with other bytes
ended in 300 lines of tracebacks, one that never answered hung; a SLURM controller that was down made
dask-jobqueue resubmit every 9 s for good).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess

from pipeline.errors import ClusterError

#: A command of each batch system that asks its server something and fails when it does not answer.
SERVER_PROBES = {"slurm": ("sinfo", "--noheader", "--summarize"), "pbs": ("qstat", "-B")}


def check_cluster(
    cluster: str = "local",
    scheduler: str | None = None,
    *,
    n_workers: int | None = None,
    reach: bool = True,
    timeout: float = 10.0,
) -> None:
    """Refuse a ``--cluster`` / ``--scheduler`` choice that :func:`~pipeline.compute.connect` would
    refuse or hang on, at once.

    Parameters
    ----------
    cluster, scheduler, n_workers
        As for :func:`pipeline.compute.connect` (``--cluster``, ``--scheduler``, ``--workers``).
    reach
        Also ask a scheduler address who it is (a Dask ``identity`` call), and a batch system's
        server whether it answers (``sinfo``, ``qstat -B``). Off for a deployment, whose runs use
        the cluster later.
    timeout
        Seconds to wait for each answer.

    Raises
    ------
    ClusterError
        Options that contradict each other (``--cluster`` other than local with ``--scheduler``,
        ``--workers`` with a scheduler address); an unknown kind of cluster; a malformed address, a
        ``tls://`` one without Dask's TLS settings, or one that does not answer as a Dask
        scheduler; ``cuda`` without dask-cuda; a jobqueue profile whose submit command is not
        installed here, or whose batch server does not answer.
    ProfileError
        A jobqueue profile that is not defined, or invalid (see :func:`pipeline.compute.load_profile`).
    """
    from pipeline.compute.cluster import cuda_unavailable, unknown_cluster

    _check_conflicts(cluster, scheduler, n_workers)
    address = scheduler or (cluster if "://" in cluster else None)
    if address:
        _check_address(address, "--scheduler" if scheduler else "--cluster", reach, timeout)
        return
    kind, _, profile = cluster.partition(":")
    if kind == "local" and not profile:
        return
    if kind == "cuda" and not profile:
        problem = cuda_unavailable()
        if problem is not None:
            raise problem
        return
    if kind not in {"slurm", "pbs"}:
        raise unknown_cluster(cluster)
    from pipeline.compute.jobqueue import import_jobqueue, load_profile, require_submit_command

    loaded = load_profile(kind, profile or "default")
    require_submit_command(loaded)
    # here, in the main thread: importing dask-jobqueue sets a SIGINT handler, which fails in the
    # thread that starts an ingest's cluster (trial: `lenshunt ingest --cluster slurm:*` was a
    # ValueError "signal only works in main thread")
    import_jobqueue()
    if reach:
        _check_batch_server(loaded.kind, loaded.id, timeout)


def oversubscription_warning(
    cluster: str, scheduler: str | None, n_workers: int | None, cores: int | None = None
) -> str | None:
    """A warning when ``--workers`` asks a local cluster for more worker processes than there are
    cores (``cores``: this machine's); None otherwise.

    Each local worker runs one task at a time with its own numpy and TensorFlow threads: more
    workers than cores only share the cores, and each holds its own copy of the model (trial:
    ``--workers 64`` on 2 cores ran 7x slower, without a word).

    >>> oversubscription_warning("local", None, 64, cores=2)  # doctest: +ELLIPSIS
    '--workers 64 starts more worker processes than the 2 cores here: they share them ...'
    >>> oversubscription_warning("local", None, 2, cores=2) is None
    True
    """
    cores = cores or os.cpu_count() or 1
    if cluster != "local" or scheduler or not n_workers or n_workers <= cores:
        return None
    return (
        f"--workers {n_workers} starts more worker processes than the {cores} cores here: they share "
        "them (slower, and each holds its own model); the default is one per core"
    )


def _check_conflicts(cluster: str, scheduler: str | None, n_workers: int | None) -> None:
    """Refuse options that one of the others would silently override (trial: ``--cluster
    slurm:localhost --scheduler tcp://...`` dropped --cluster, ``--scheduler ADDR --workers 3``
    ignored --workers, both without a word)."""
    if scheduler and cluster != "local":
        raise ClusterError(
            f"--cluster {cluster} and --scheduler {scheduler} are two choices of workers: give one "
            "(--scheduler joins a running scheduler and its workers; --cluster starts a cluster)."
        )
    address = scheduler or (cluster if "://" in cluster else None)
    if address and n_workers:
        option = "--scheduler" if scheduler else "--cluster"
        raise ClusterError(
            f"--workers {n_workers} with {option} {address}: the workers are those of that scheduler "
            f"(start more with `dask worker {address}`); drop --workers."
        )


def _check_address(address: str, option: str, reach: bool, timeout: float) -> None:
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    drop = "drop --scheduler to use a local cluster" if option == "--scheduler" else "use --cluster local"
    try:
        protocol, location = parse_address(address)
        if protocol not in backends:  # trial: http://...: four tracebacks after the flow had started
            dashboard = (
                " (http://HOST:8787 is the dashboard's, not the scheduler's)" if "http" in protocol else ""
            )
            raise ClusterError(
                f"{option} {address!r}: {protocol!r} is no Dask protocol (Dask speaks "
                f"{', '.join(sorted(backends))}){dashboard}: give an address such as tcp://host:8786, or "
                f"{drop}."
            )
        if protocol in {"tls", "wss"}:
            _check_tls(address, option, protocol, drop)
        host_port = protocol in {"tcp", "tls", "ws", "wss"}
        host, port = parse_host_port(location) if host_port else (location, None)
    except ValueError:
        raise ClusterError(
            f"{option} {address!r} is no Dask scheduler address: give one such as tcp://host:8786 "
            f"(protocol, host and port), or {drop}."
        ) from None
    if not reach or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = f"no answer in {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ClusterError(
            f"could not reach the Dask scheduler at {address}: {reason}. Check that it is running "
            f"and reachable, or {drop}."
        ) from None
    if protocol == "tcp":  # tls needs the user's certificates: the Client checks it
        problem = _not_a_scheduler(address, timeout)
        if problem:
            raise ClusterError(
                f"{address} {problem}. Check the address (a Dask scheduler listens on port 8786 by "
                f"default), or {drop}."
            )


def _check_tls(address: str, option: str, protocol: str, drop: str) -> None:
    """Refuse a TLS address where Dask's TLS settings give the client no SSL context (trial: a 50-line
    ``TypeError: TLS expects a ssl_context`` traceback, labelled a bug, 22 s later)."""
    from distributed.security import Security

    try:
        context = Security().get_connection_args("client").get("ssl_context")
    except (OSError, ValueError) as exc:  # a certificate file that is missing or unreadable
        raise ClusterError(
            f"{option} {address!r}: Dask's TLS settings (distributed.comm.tls.* in the Dask config) "
            f"do not load ({type(exc).__name__}: {exc}): fix them, or {drop}."
        ) from None
    if context is None:
        raise ClusterError(
            f"{option} {address!r}: {protocol}:// needs Dask's TLS settings (distributed.comm.tls.ca-file, "
            "and distributed.comm.tls.client.cert / .key where the scheduler asks for a client "
            "certificate, in the Dask config or DASK_DISTRIBUTED__COMM__TLS__* variables), which are "
            f"not set here: set them, give the scheduler's tcp:// address, or {drop}."
        )


def _not_a_scheduler(address: str, timeout: float) -> str | None:
    """What is wrong with the Dask scheduler at ``address``; None when one answers there."""
    from distributed.comm import connect

    async def identity() -> object:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except TimeoutError:
        return f"accepts connections but gives no Dask answer in {timeout:g} s"
    except Exception:  # any other protocol: bad frames, a huge length, a closed stream
        return "answers, but not as a Dask scheduler"
    if isinstance(reply, dict) and reply.get("type") == "Scheduler":
        return None
    what = reply.get("type") if isinstance(reply, dict) else None
    return f"is a Dask {what}, not a scheduler" if what else "answers, but not as a Dask scheduler"


def _check_batch_server(kind: str, profile_id: str, timeout: float) -> None:
    """Ask the batch system's server whether it answers (when its query command is installed)."""
    probe = SERVER_PROBES[kind]
    if shutil.which(probe[0]) is None:
        return
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=3 * timeout, check=False)
    except subprocess.TimeoutExpired:
        why = f"`{' '.join(probe)}` gave no answer in {3 * timeout:g} s"
    else:
        if result.returncode == 0:
            return
        lines = (result.stderr or result.stdout).strip().splitlines()
        why = f"`{' '.join(probe)}` failed: {lines[-1] if lines else f'exit code {result.returncode}'}"
    raise ClusterError(
        f"--cluster {profile_id}: the {kind.upper()} server does not answer ({why}), so no worker job "
        "could start. Check that the batch system is up (ask its admins), or use --cluster local."
    )
