"""A failed firing of ``lenshunt serve`` is one line on serve's console, not Prefect's tracebacks.

User report: a scheduled firing that failed (its source directory gone, a broken layout, a store that
cannot be written, a damaged model bundle) put three copies of a 40-line traceback on ``serve``'s
console (Prefect's flow-run logger prints the exception of the task, of the flow, and of the engine),
and the lenshunt message was to be dug out of them. A run that serve started
(``$LENSHUNT_SERVED_RUN``, :mod:`flows.serve_runner`) now says its failure in one line: which
deployment, which flow run (name and id), why (the message ``lenshunt run`` would print), and where
its full log is (``prefect flow-run logs ID``, and the Prefect UI's page of the run). An unexpected
exception (a bug) is said in that line too, and its traceback follows it. Prefect's records of the
failure are left off the console only: the server keeps them, tracebacks included, and the run is
Failed there. Serve goes on serving the next firings.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from flows.failures import add_console_filters, is_deterministic, one_line
from flows.serve_runner import SERVED_ENV
from flows.stops import stop_of

F = TypeVar("F", bound=Callable[..., Any])

#: The prefix of serve's line for a failed firing.
FAILED = "lenshunt serve: firing"


def said_if_firing_fails(fn: F) -> F:
    """Wrap a deployment's flow function: in a run that serve started, a failure (not a stop) is said
    in one line on the console (:func:`failed_firing_line`), and Prefect's console records of it are
    left out (:class:`DropFiringFailures`); the exception is raised on, so the run is Failed as
    before. Elsewhere (``lenshunt run``: the CLI says it) nothing changes. The signature is ``fn``'s,
    its annotations evaluated in ``fn``'s module: Prefect reads it for the flow's parameters, and
    would resolve annotations written as strings in this module's namespace, not ``fn``'s."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        served = bool(os.environ.get(SERVED_ENV))
        if served:
            add_console_filters(DropFiringFailures())
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if served and stop_of(exc) is None:
                say_failed_firing(exc)
            raise

    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def say_failed_firing(exc: BaseException) -> None:
    """Write :func:`failed_firing_line` for ``exc`` to stderr; a bug's traceback after it. Written, not
    printed: the flow logs its prints (``log_prints``), which would put Prefect's prefix before it."""
    text = failed_firing_line(exc) + "\n"
    if not is_deterministic(exc):
        text += "".join(traceback.format_exception(exc))
    sys.stderr.write(text)
    sys.stderr.flush()


def failed_firing_line(exc: BaseException) -> str:
    """``lenshunt serve: firing 'NAME' (flow run ID) of DEPLOYMENT failed: WHY; serving on (its full
    log: `prefect flow-run logs ID`, URL)``, for the flow run of this context. ``WHY`` is what the CLI
    prints for a deterministic failure (:func:`flows.failures.one_line`); for any other exception, its
    type and message, said to be a bug whose traceback follows."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if is_deterministic(exc):
        why = one_line(exc)
    else:
        why = f"unexpected {type(exc).__name__}: {exc} (a bug; its traceback follows)"
    if flow_run is None:  # not a flow run (a direct call of the function): nothing to point at
        return f"{FAILED} failed: {why}"
    where = f"`prefect flow-run logs {flow_run.id}`"
    url = url_of(flow_run)
    return (
        f"{FAILED} {flow_run.name!r} (flow run {flow_run.id}) of {deployment_name(flow_run)} failed: "
        f"{why}; serving on (its full log: {where}{', ' + url if url else ''})"
    )


def url_of(flow_run: Any) -> str:
    """The Prefect UI's page of ``flow_run``; "" where none is configured."""
    try:
        from prefect.utilities.urls import url_for

        return url_for(flow_run) or ""
    except Exception:  # a setting Prefect cannot read: the command says where the log is
        return ""


def deployment_name(flow_run: Any) -> str:
    """``FLOW/DEPLOYMENT`` of ``flow_run`` as the server names it (``flow FLOW`` for a run of no
    deployment); its deployment id if the server does not answer (the line is printed all the same)."""
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            flow = client.read_flow(flow_run.flow_id)
            if flow_run.deployment_id is None:
                return f"flow {flow.name}"
            return f"{flow.name}/{client.read_deployment(flow_run.deployment_id).name}"
    except Exception:
        return f"deployment {flow_run.deployment_id}"


class DropFiringFailures(logging.Filter):
    """Leave off the console Prefect's records of a served run's failure, which serve's line says: every
    run record with an exception but a task's note that it will be retried ("Task run failed with
    exception: ... - Retries are exhausted", "Encountered exception during execution: ..."), the
    engine's "Engine execution exited with unexpected exception", and the runs' "Finished in state
    Failed(...)". Console handlers only: the server keeps them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.startswith("Engine execution exited with unexpected exception"):
            return False
        if getattr(record, "task_run_id", None) is None and getattr(record, "flow_run_id", None) is None:
            return True
        if message.startswith("Finished in state Failed"):
            return False
        return not (record.exc_info and record.exc_info[1] is not None and "will start" not in message)
