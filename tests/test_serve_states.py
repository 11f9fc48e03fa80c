"""A flow run that completed as ``lenshunt serve`` stopped stays Completed (fresh-user trial: Prefect's
runner, shutting down, set a finished run Cancelled four seconds after it logged Completed). A real
Prefect API (temporary, SQLite) and real flow runs, their states set as the runner's shutdown sets
them (forced)."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.serve_states import RESTORED_MESSAGE, restore_completed

pytestmark = pytest.mark.prefect


@flow(name="lenshunt-test-finished")
def _finished() -> int:
    return 1


def test_a_run_cancelled_after_it_completed_is_completed_again_and_others_kept(prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Running

    with get_client(sync_client=True) as client:
        done = _finished(return_state=True)
        assert done.is_completed()
        finished = done.state_details.flow_run_id
        client.set_flow_run_state(finished, Cancelled(message="Runner is shutting down."), force=True)
        # a run the shutdown cancelled while it ran, and one that completed and was never cancelled
        running = _finished(return_state=True).state_details.flow_run_id
        client.set_flow_run_state(running, Running(), force=True)
        client.set_flow_run_state(running, Cancelled(message="Runner is shutting down."), force=True)
        kept = _finished(return_state=True).state_details.flow_run_id

        assert restore_completed([finished, running, kept]) == [client.read_flow_run(finished).name]
        state = client.read_flow_run(finished).state
        assert state.is_completed() and state.message == RESTORED_MESSAGE
        assert client.read_flow_run(running).state.is_cancelled()
        assert client.read_flow_run(kept).state.is_completed()
        assert restore_completed([finished]) == []  # once only
