"""Runs of a served deployment that the server still shows Running after their process ended.

A run in flight when its Prefect server went away cannot report its end: ``serve`` kills its
processes, and where the server comes back only after ``serve`` has ended, nobody tells it, so the
run stays Running in the UI for good (measured 2026-12-05; the docs said to cancel it by hand). A
run of the run flow holds its work directory's run lock (``WORKDIR/.lenshunt-run.lock``,
:func:`pipeline.locking.output_lock`) from its first step to its last, and the kernel drops that
lock however its process ends. So when ``serve`` starts, a run of its deployment that the server
shows Running (or Cancelling) for more than :data:`ORPHAN_AGE_S` seconds while nobody holds its work
directory's lock is gone: :func:`crash_orphaned_runs` sets it Crashed, as Prefect's runner does for
a run whose process it saw die. Its finished work is kept; the next firing resumes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ORPHAN_AGE_S = 60.0
"""How long a run must have been in its state before a free lock marks it gone (s): a run of another
``serve`` of the same deployment that has just started may not hold its lock yet."""

AGE_ENV = "LENSHUNT_SERVE_ORPHAN_AGE_S"

LEFT_STATES = ("RUNNING", "CANCELLING")


def orphan_age_s() -> float:
    """:data:`ORPHAN_AGE_S`, or ``$LENSHUNT_SERVE_ORPHAN_AGE_S`` (seconds, >= 0) where set.

    Raises
    ------
    pipeline.errors.LenshuntError
        For a value that is not a number of seconds.
    """
    from flows.serve_runner import env_seconds

    return env_seconds(AGE_ENV, ORPHAN_AGE_S)


def crash_orphaned_runs(
    deployment_id: Any, min_age_s: float = ORPHAN_AGE_S, now: datetime | None = None
) -> list[str]:
    """Set Crashed each run of ``deployment_id`` left Running or Cancelling by a process that is gone.

    Parameters
    ----------
    deployment_id
        The deployment's id (``uuid.UUID`` or str).
    min_age_s
        How long a run must have been in its state to be checked (s; :func:`orphan_age_s`).
    now
        The time to measure its age from (default: now, UTC).

    Returns
    -------
    list of str
        One sentence per run set Crashed, for ``serve``'s console. Runs whose work directory's lock is
        held (their process lives, on this machine or another that shares the folder), runs younger
        than ``min_age_s`` and runs without a ``workdir`` parameter are left alone.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.states import Crashed

    from pipeline import paths
    from pipeline.locking import lock_being_held

    now = now or datetime.now(UTC)
    said = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(LEFT_STATES))),
            ),
            limit=200,
        )
        for run in runs:
            workdir = (run.parameters or {}).get("workdir")
            since = run.state.timestamp if run.state is not None else None
            if not workdir or since is None or (now - since).total_seconds() < min_age_s:
                continue
            if lock_being_held(paths.output_lock_file(Path(workdir), "run")) is not None:
                continue
            state = run.state.name if run.state is not None else "Running"
            client.set_flow_run_state(
                run.id,
                Crashed(
                    message=f"lenshunt serve found it {state} with no process (its work directory "
                    f"{workdir} was not locked): its process ended while the server could not hear it"
                ),
                force=True,
            )
            said.append(
                f"flow run '{run.name}' was still {state} on the server with no process left (it ended "
                f"while the server was away): set Crashed; its finished work in {workdir} is kept"
            )
    return said


def orphans_crashed(deployment_id: Any) -> list[str]:
    """:func:`crash_orphaned_runs` after :func:`orphan_age_s`, for ``serve``'s console; a warning in
    place of its lines where the server does not let it (``serve`` goes on; its runner says more)."""
    try:
        return crash_orphaned_runs(deployment_id, orphan_age_s())
    except Exception as exc:  # the server gone or refusing
        return [f"warning: earlier runs left Running were not checked ({type(exc).__name__}: {exc})"]
