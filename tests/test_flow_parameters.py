"""A flow parameter that counts is refused under 1 before any work, by the flow and by a deployment.

Fresh-user trial: ``batch_size: 0`` in an edited ``deploy/prefect.yaml`` (or ``prefect deployment run
-p batch_size=0``) was accepted; each firing ingested, then failed scoring in a bare
``ZeroDivisionError``, retried it for nothing, every minute; ``n_workers=-1`` started a cluster of no
workers and waited 10 minutes, blaming memory. Real Prefect flow runs (a temporary Prefect API) on a
real set; the parameter schema Prefect checks a deployment run's parameters against.
"""

from __future__ import annotations

import pytest
from cutouts import write_set
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema

from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
pytestmark = pytest.mark.prefect


def test_counts_under_one_are_refused_before_anything_is_written(prefect_harness, tmp_path):
    from flows.ingest import ingest_flow
    from flows.run import run_flow
    from flows.score import score_flow

    source = write_set(EUCLID, tmp_path / "src", [100001, 100002])
    work = tmp_path / "work"
    for call, said in (
        (lambda: run_flow(str(source), str(work), batch_size=0), "batch_size: Input should be greater"),
        (lambda: run_flow(str(source), str(work), n_workers=-1), "n_workers: Input should be greater"),
        (lambda: run_flow(str(source), str(work), chunk_objects=0), "chunk_objects: Input should be"),
        (lambda: ingest_flow(str(source), str(work / "s.zarr"), n_workers=0), "n_workers: Input should"),
        (lambda: score_flow(str(work / "s.zarr"), str(work / "out"), batch_size=0), "batch_size: Input"),
    ):
        with pytest.raises(ParameterTypeError, match=said):
            call()
        assert not work.exists()  # refused before any work


@pytest.mark.parametrize("module", ["run", "score", "ingest", "simulate"])
def test_a_deployments_parameter_schema_says_the_counts_minimum(module):
    import importlib

    flow = {
        "run": "run_flow",
        "score": "score_flow",
        "ingest": "ingest_flow",
        "simulate": "simulate_flow",
    }[module]
    schema = parameter_schema(getattr(importlib.import_module(f"flows.{module}"), flow).fn).model_dump()
    counts = {"run": ("batch_size", "n_workers", "chunk_objects"), "score": ("batch_size", "n_workers")}
    counts |= {"simulate": ("n_workers",)}  # trial: simulate_flow(n_workers=0) ran on 2 workers
    for name in counts.get(module, ("chunk_objects", "n_workers")):
        text = str(schema["properties"][name])
        assert "'minimum': 1" in text, (name, text)
