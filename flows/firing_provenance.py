"""Which firing of which deployment wrote a catalog: the score run's provenance of a deployment's run.

A catalog that a served firing (``lenshunt serve``) or any run of a Prefect deployment writes names
that run in its provenance extras (ops trial: neither the FITS header nor the Parquet metadata, nor
``score-run.json``, named the flow run, so tying a catalog to a firing meant matching ``DATE-RUN`` by
hand against ``prefect flow-run ls``): ``prefect_flow_run_id``, ``prefect_flow_run`` (its name) and
``prefect_deployment`` (``FLOW/DEPLOYMENT``). A run of no deployment (``lenshunt run``, ``score``: its
temporary server's ids mean nothing later) records none. A catalog kept unchanged by a later firing
keeps the firing that wrote it.
"""

from __future__ import annotations

import os

#: The flow run a deployment's process runs (Prefect's runner and workers set it in its environment).
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"


def firing_provenance() -> dict[str, str]:
    """The provenance extras naming the deployment's flow run this process runs, or ``{}``.

    ``{}`` also where the server cannot say (the catalog is written all the same)."""
    run_id = os.environ.get(FLOW_RUN_ENV)
    if not run_id:
        return {}
    try:
        from prefect.client.orchestration import get_client

        from flows.firing_failed import deployment_name

        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(run_id)
        if flow_run.deployment_id is None:
            return {}
        return {
            "prefect_flow_run_id": str(flow_run.id),
            "prefect_flow_run": str(flow_run.name),
            "prefect_deployment": deployment_name(flow_run),
        }
    except Exception:  # the server busy or away: the catalog does not wait for it
        return {}
