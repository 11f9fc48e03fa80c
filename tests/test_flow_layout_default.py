"""The ingest and run flows without a layout take the store's recorded one, as the CLI does.

A deployment (``deploy/prefect.yaml``, a run from the UI, ``prefect deployment run``) that names no
layout ran the flows with their own default, euclid-sglc2, whatever the store held: an ``sglc1-space``
store fed by a schedule was read as the second challenge's. Real Prefect flow runs (a temporary
Prefect API) on a real sglc1-space set.
"""

from __future__ import annotations

import pytest
from bundles import make_bundle
from cutouts import write_set

from pipeline.store import open_store, read_attributes
from schemas.layout import load_layout

SPACE = load_layout("sglc1-space")
pytestmark = pytest.mark.prefect


def test_flows_without_a_layout_take_the_stores(prefect_harness, tmp_path):
    from flows.ingest import ingest_flow
    from flows.run import run_flow

    source = write_set(SPACE, tmp_path / "src", range(100001, 100017))
    store = tmp_path / "work" / "store.zarr"
    first = ingest_flow(str(source), str(store), layout="sglc1-space", n_workers=1)
    assert first.n_added == 16
    bundle = make_bundle(store, tmp_path / "bundle")  # a model of the store's layout

    write_set(SPACE, source, range(100017, 100019))  # files that arrived late
    later = ingest_flow(str(source), str(store), n_workers=1)  # no layout, as a deployment's null
    assert later.n_added == 2
    assert read_attributes(store).layout == "sglc1-space"

    write_set(SPACE, source, range(100019, 100022))
    run = run_flow(
        str(source), str(tmp_path / "work"), model=str(bundle), n_workers=1, batch_size=16,
        known_lenses="none", top_n=0,
    )  # fmt: skip
    assert (run.n_new_objects, run.n_scored_new, run.n_objects) == (3, 21, 21)
    assert open_store(store).sizes["object"] == 21


def test_the_flows_layout_parameters_default_to_none():
    """The schema Prefect builds for a deployment: ``layout`` optional, null by default (not sglc2)."""
    from flows.ingest import ingest_flow
    from flows.run import run_flow
    from flows.serve import run_parameters

    for flow in (ingest_flow, run_flow):
        schema = flow.parameters
        assert "layout" not in (schema.required or [])
        assert schema.properties["layout"]["default"] is None, flow.name
    assert "layout" not in run_parameters("in", "work")  # serve without --layout: left to the flow
