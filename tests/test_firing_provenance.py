"""A catalog written by a deployment's run names that flow run and its deployment (ops trial: unnamed).

Real flow runs on a real Prefect API (the session's harness): one of a deployment, one of none. The
served schedule's slow test (``tests/test_schedule.py``) reads the names from a real firing's catalogs.
"""

from __future__ import annotations

import uuid

import pytest

from flows.firing_provenance import FLOW_RUN_ENV, firing_provenance

pytestmark = pytest.mark.prefect


def test_a_deployments_run_is_named_and_other_runs_are_not(prefect_harness, monkeypatch):
    from prefect import flow
    from prefect.client.orchestration import get_client

    @flow(name="lenshunt-provenance")
    def nothing() -> None:
        pass

    name = f"nightly-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(nothing)
        deployment_id = client.create_deployment(flow_id=flow_id, name=name, entrypoint="x.py:nothing")
        fired = client.create_flow_run_from_deployment(deployment_id)
        by_hand = client.create_flow_run(nothing)
    monkeypatch.delenv(FLOW_RUN_ENV, raising=False)
    assert firing_provenance() == {}  # lenshunt run, score: no deployment's process
    monkeypatch.setenv(FLOW_RUN_ENV, str(by_hand.id))
    assert firing_provenance() == {}
    monkeypatch.setenv(FLOW_RUN_ENV, str(fired.id))
    assert firing_provenance() == {
        "prefect_flow_run_id": str(fired.id),
        "prefect_flow_run": fired.name,
        "prefect_deployment": f"lenshunt-provenance/{name}",
    }
    monkeypatch.setenv(FLOW_RUN_ENV, str(uuid.uuid4()))  # a run the server does not know: not waited for
    assert firing_provenance() == {}
