"""Runs ``lenshunt serve`` killed while its Prefect server was away: their state says why, once it is back.

A run in flight cannot report to a server that does not answer, so ``serve`` kills its processes
(:class:`flows.serve_runner.ServedRunner`). Prefect's runner then reports the run Crashed by its exit
code, its client retrying until the server answers again: the UI read "Process exited due to a
SIGKILL signal ... memory limits", while the reason was on ``serve``'s console only (trial). Here the
runs are found by the ``PREFECT__FLOW_RUN_ID`` of the processes killed, and once the server answers,
each is set Crashed with ``serve``'s reason; set again where the runner's late report replaced it,
until that report can no longer come (:func:`report_window_s`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

RUN_ID_ENV = "PREFECT__FLOW_RUN_ID"
"""Where Prefect's runner puts a flow run's id in the environment of the process that runs it."""

RESTATED_FROM = ("RUNNING", "PENDING", "CANCELLING", "CRASHED")
"""States of a killed run that serve replaces with its own Crashed (not a run that ended otherwise)."""


def flow_run_ids(processes: list[Any]) -> set[str]:
    """The flow run ids in the environments of ``processes`` (``psutil.Process``; those gone skipped)."""
    import psutil

    ids = set()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            value = process.environ().get(RUN_ID_ENV)
            if value:
                ids.add(value)
    return ids


def killed_message(n_processes: int, why: str) -> str:
    """The state message of a run serve killed (its ``n_processes``) as its server did not answer (``why``).

    >>> killed_message(3, "connection refused")  # doctest: +NORMALIZE_WHITESPACE
    'lenshunt serve killed its 3 process(es): the Prefect server did not answer (connection refused), so
     the run could not report to it; its finished work is kept, and the next firing resumes it'
    """
    return (
        f"lenshunt serve killed its {n_processes} process(es): the Prefect server did not answer ({why}), "
        "so the run could not report to it; its finished work is kept, and the next firing resumes it"
    )


def report_window_s() -> float:
    """How long after a kill the runner's own report of it may still reach the server (s): its client's
    retries back off 2, 4, ... 2**n s (``PREFECT_CLIENT_MAX_RETRIES`` = n) with up to
    ``PREFECT_CLIENT_RETRY_JITTER_FACTOR`` more each, plus 10 s for the requests themselves."""
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, PREFECT_CLIENT_RETRY_JITTER_FACTOR

    backoff = sum(2**attempt for attempt in range(1, PREFECT_CLIENT_MAX_RETRIES.value() + 1))
    return backoff * (1 + max(0.0, PREFECT_CLIENT_RETRY_JITTER_FACTOR.value())) + 10.0


class KilledRuns:
    """The runs serve killed while its server was away, each with the state message it should have."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[str, float]] = {}

    def __bool__(self) -> bool:
        return bool(self._runs)

    def __contains__(self, run_id: object) -> bool:
        return str(run_id) in self._runs

    def add(self, run_ids: set[str], message: str) -> None:
        """Remember ``run_ids``, killed now, for ``message``."""
        for run_id in run_ids:
            self._runs[run_id] = (message, time.monotonic())

    def restate(self, window_s: float | None = None) -> None:
        """With the server answering: set Crashed, with its message, each run the server shows in
        :data:`RESTATED_FROM` with another message; forget a run once its message holds and its kill
        is ``window_s`` (:func:`report_window_s`) old, or the run ended otherwise. A server that fails
        meanwhile leaves them to the next call."""
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        window_s = report_window_s() if window_s is None else window_s
        with get_client(sync_client=True) as client:
            for run_id, (message, killed_at) in list(self._runs.items()):
                state = client.read_flow_run(run_id).state
                kind = state.type.value if state is not None else "RUNNING"
                if kind not in RESTATED_FROM:  # it ended before the kill (Completed, Failed, Cancelled)
                    self._runs.pop(run_id)
                    continue
                if state is None or state.message != message or kind != "CRASHED":
                    client.set_flow_run_state(run_id, Crashed(message=message), force=True)
                elif time.monotonic() - killed_at > window_s:  # the runner's report cannot come now
                    self._runs.pop(run_id)
