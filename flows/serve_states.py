"""A flow run that completed as ``lenshunt serve`` stopped stays Completed.

Fresh-user trial: ``serve`` got a SIGTERM while its run was finishing; the run wrote its report and
logged "Finished in state Completed()", then Prefect's runner, shutting down, set it Cancelled
("Runner is shutting down.", a forced state over the terminal one, four seconds later), and ``serve``
said it "was cancelled: the next firing resumes it". An operator reading the states would take a
finished firing for an unfinished one. :func:`restore_completed` sets such a run Completed again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["RESTORED_MESSAGE", "restore_completed"]

RESTORED_MESSAGE = (
    "completed before lenshunt serve stopped (Prefect's runner, shutting down, had then set it Cancelled)"
)
"""The message of the Completed state :func:`restore_completed` sets back."""


def restore_completed(run_ids: Iterable[Any]) -> list[str]:
    """Set Completed again each flow run whose last state is a Cancelled that came after a Completed
    one with no Running between (the runner's shutdown over a run that had finished); returns their
    names. Runs cancelled while they ran keep Cancelled. A server that fails: nothing is changed.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Completed

    restored = []
    try:
        with get_client(sync_client=True) as client:
            for run_id in run_ids:
                states = sorted(client.read_flow_run_states(run_id), key=lambda state: state.timestamp)
                if not states or not states[-1].is_cancelled():
                    continue
                before = [state for state in states[:-1] if not state.is_cancelling()]
                if before and before[-1].is_completed():
                    client.set_flow_run_state(run_id, Completed(message=RESTORED_MESSAGE), force=True)
                    restored.append(client.read_flow_run(run_id).name)
    except Exception:  # the server gone or failing: the stop goes on, the states as they are
        return restored
    return restored
