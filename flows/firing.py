"""A deployment's run (a scheduled firing, a run from the UI) that meets its folders being written by
another lenshunt process is skipped: state Cancelled, its message naming who writes them
(docs/operations.md), not Failed with two tracebacks on the worker's console (trials: a firing that met
a ``lenshunt run`` started by hand; a nightly run that met a daytime ingest still writing its store).
"""

from __future__ import annotations

from collections.abc import Callable

from prefect.states import Cancelled, State

from flows.failures import drop_skipped_firing_error


def busy_firing(*checks: Callable[[], None]) -> str | None:
    """Why this flow run, a deployment's, is skipped: the first of ``checks`` (probes that raise
    :class:`~pipeline.errors.OutputBusyError` or :class:`~pipeline.errors.StoreBusyError`) that
    refuses; None where none does, and for a run not of a deployment (the CLI refuses it in one line
    before Prefect, and a flow run that loses that race fails as before).
    """
    from prefect.context import FlowRunContext

    from pipeline.errors import OutputBusyError, StoreBusyError

    context = FlowRunContext.get()
    if context is None or context.flow_run is None or context.flow_run.deployment_id is None:
        return None
    try:
        for check in checks:
            check()
    except (OutputBusyError, StoreBusyError) as exc:
        return f"this firing is skipped: {exc}; the next firing adds what is new"
    return None


def skip_firing(reason: str) -> State:
    """The Cancelled state a skipped firing returns, its reason logged as a warning first."""
    from prefect import get_run_logger

    get_run_logger().warning(reason)
    drop_skipped_firing_error()  # a Cancelled on purpose: no ERROR and traceback after it (trial)
    return Cancelled(message=reason)
