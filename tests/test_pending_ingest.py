"""A score run of a store half-written by a killed ingest says what it leaves out, and the README's
way of opening the store keeps to the committed rows.

New-user trial: ``lenshunt info`` said an interrupted ingest planned more objects, the score run
said "4/4 scored in all" and nothing of them. Real FITS files, a real ingest on the session's Dask
cluster, a real score run with the shipped model.
"""

from __future__ import annotations

import pytest
import xarray as xr
from cutouts import write_set

from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.sources import discover, labels_for
from pipeline.store.ingestion import ingest, ingest_region, plan_regions, start_plan
from pipeline.store.zarr_store import read_attributes
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(310000, 310012))


def test_a_score_run_says_what_an_interrupted_ingest_left_uncommitted(tmp_path, dask_client):
    source = write_set(EUCLID, tmp_path / "src", IDS[:4])
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=4)
    write_set(EUCLID, source, IDS[4:])  # 8 more, of which an ingest killed with -9 wrote one region
    manifest = discover(EUCLID, source)
    new_ids = manifest.object_ids[4:]
    plan_id = start_plan(store, new_ids)
    labels, _ = labels_for(EUCLID, new_ids, source)
    start, stop = plan_regions(4, 8, 4)[0]
    ingest_region(
        str(store),
        read_attributes(store).layout_yaml,
        plan_id,
        0,
        start,
        manifest.select_or_missing(new_ids[: stop - start]),
        labels[: stop - start],
    )
    result = score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
    assert (result.n_scored, result.n_objects) == (4, 4)
    assert (
        f"  WARNING: an interrupted ingest planned 8 more objects, not committed yet, which this run does "
        f"not score: rerun `lenshunt ingest {source} {store}` to finish it, then score again"
    ) in result.summary()
    # the README's way of opening the store: every row, unless kept to the committed ones
    raw = xr.open_zarr(store, consolidated=False)
    assert raw.sizes["object"] == 12 and (raw["object_id"].values[8:] == -1).all()
    committed = raw.isel(object=slice(0, raw.attrs["n_objects"]))
    assert committed["object_id"].values.tolist() == IDS[:4]

    finished = ingest(EUCLID, source, store, dask_client)
    assert finished.n_resumed == 8
    rerun = score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
    assert rerun.n_pending == 0 and "interrupted ingest" not in rerun.summary()


def test_a_store_whose_first_ingest_was_killed_is_nothing_to_score_in_one_line(tmp_path, dask_client):
    """Trial: an ingest killed before its first region committed left a store of 0 objects and a plan;
    ``lenshunt score`` of it failed with ``KeyError: 'flags_added'`` and a traceback."""
    from test_cli_process import _assert_one_line_errors_before_prefect

    from pipeline.errors import StoreError
    from pipeline.store.zarr_store import create_store

    source = write_set(EUCLID, tmp_path / "src", IDS[:6])
    store = tmp_path / "store.zarr"
    create_store(store, EUCLID, source=str(source), chunk_objects=16)
    start_plan(store, discover(EUCLID, source).object_ids, source=str(source))  # killed before a region
    expected = (
        f"{store} holds no committed object yet (an interrupted ingest planned 6 objects: rerun "
        f"`lenshunt ingest {source} {store}` to finish it): nothing to score"
    )
    with pytest.raises(StoreError) as refused:
        score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
    assert str(refused.value) == expected
    _assert_one_line_errors_before_prefect([(("score", str(store), "--out", str(tmp_path / "o")), expected)])
    assert not (tmp_path / "run").exists() and not (tmp_path / "o").exists()
