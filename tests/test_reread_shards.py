"""A re-read of scattered changed objects writes each shard once, says its progress, and survives a stop.

Trial: late or replaced band files of objects not next to each other were rewritten one run of
rows at a time, and zarr rewrote the whole shard (1024 objects, about 190 MB of euclid-sglc2 images)
for each: 60 objects re-read at 2.5 objects/s, with no progress line for minutes. Real FITS files,
real stores with small shards, real ingests on an in-process Dask cluster (so that the zarr store's
writes can be counted where they happen).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from cutouts import band_file, write_set
from distributed import Client, LocalCluster
from zarr.storage import LocalStore

from pipeline.rates import rate_text
from pipeline.sources import discover, labels_for
from pipeline.store.ingestion import ingest, ingest_region, plan_regions, start_plan
from pipeline.store.row_writes import write_rows
from pipeline.store.zarr_store import (
    create_store,
    empty_dataset,
    open_store,
    read_attributes,
    resize_objects,
    update_attributes,
    write_region,
)
from schemas.layout import load_layout
from schemas.store import OBJECT_DIM

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300024))
CHANGED = [300001, 300003, 300006, 300010, 300013, 300014, 300020]  # shards 0, 1, 2 of 8 objects


@pytest.fixture
def shard_writes(monkeypatch) -> Counter:
    """Every key the zarr local stores write from now on, with how many times each was written."""
    writes: Counter = Counter()
    original = LocalStore.set

    async def counted(self, key, value):
        writes[key] += 1
        return await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", counted)
    return writes


def _chunk_writes(writes: Counter) -> dict[str, Counter]:
    """Writes of chunk (or shard) files per array: array -> Counter of its row block index."""
    per_array: dict[str, Counter] = {}
    for key, n in writes.items():
        parts = key.split("/")
        if len(parts) >= 3 and parts[1] == "c":
            per_array.setdefault(parts[0], Counter())[int(parts[2])] += n
    return per_array


def _random_dataset(n: int, rng: np.random.Generator):
    dataset = empty_dataset(EUCLID, n)
    for variable in dataset.variables.values():
        if variable.dims and variable.dims[0] == OBJECT_DIM:
            if variable.dtype.kind == "f":
                variable.values[...] = rng.standard_normal(variable.shape)
            else:
                variable.values[...] = rng.integers(0, 100, variable.shape)
    return dataset


def test_scattered_rows_are_written_with_one_write_of_each_shard_per_array(tmp_path, shard_writes):
    """write_rows of rows scattered over three shards (of 8 rows, inner chunks of 2) writes each
    shard of each per-object array once (before: once per run of rows, 3 times for shard 0), and
    the rows hold the new values, every other row its old ones."""
    store = tmp_path / "store.zarr"
    create_store(store, EUCLID, source="src", chunk_objects=8, inner_chunk_objects=2)
    resize_objects(store, 20)
    rng = np.random.default_rng(7)
    before = _random_dataset(20, rng)
    write_region(store, 0, before)
    rows = np.array([1, 3, 6, 9, 14, 16, 19])
    new = _random_dataset(rows.size, rng)
    shard_writes.clear()

    write_rows(store, rows, new)

    per_array = _chunk_writes(shard_writes)
    names = [str(name) for name, v in new.variables.items() if v.dims and v.dims[0] == OBJECT_DIM]
    assert sorted(per_array) == sorted(names)
    for name in names:
        assert per_array[name] == Counter({0: 1, 1: 1, 2: 1}), name
    stored = open_store(store, include_uncommitted=True).load()
    for name in names:
        expected = before[name].values.copy()
        expected[rows] = new[name].values
        np.testing.assert_array_equal(stored[name].values, expected, err_msg=name)


def _change_pixels(source: Path, ids) -> None:
    """Multiply the VIS pixels of ``ids`` by 3 (a replaced reduction), as the trial did."""
    for object_id in ids:
        path = band_file(EUCLID, source, object_id, "VIS")
        with fits.open(path) as hdul:
            hdul[0].data = hdul[0].data * 3
            hdul.writeto(path, overwrite=True)


def _snapshot(store: Path):
    return open_store(store).load().drop_attrs()


def test_a_reread_of_scattered_objects_writes_each_shard_once_and_says_its_progress(tmp_path, shard_writes):
    """The ingest that re-reads 7 changed objects in 3 shards writes each shard of each array once,
    reports (shards done, 3, "re-read regions") from 0 to 3, and leaves the store equal to a fresh
    ingest of the changed files."""
    source = write_set(EUCLID, tmp_path / "src", IDS)
    store = tmp_path / "store.zarr"
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        ingest(EUCLID, source, store, client, chunk_objects=8)
        _change_pixels(source, CHANGED)
        shard_writes.clear()
        calls = []
        report = ingest(EUCLID, source, store, client, progress=lambda *call: calls.append(call))
        assert (report.n_reread, report.n_rewritten) == (7, 7)
        per_array = _chunk_writes(shard_writes)
        assert per_array and all(counts == Counter({0: 1, 1: 1, 2: 1}) for counts in per_array.values())
        assert calls == [
            (0, 3, "re-read regions"),
            (1, 3, "re-read regions"),
            (2, 3, "re-read regions"),
            (3, 3, "re-read regions"),
        ]
        fresh = tmp_path / "fresh.zarr"
        ingest(EUCLID, source, fresh, client, chunk_objects=8)
    assert _snapshot(store).identical(_snapshot(fresh))


def test_a_reread_stopped_midway_is_finished_by_the_next_ingest(tmp_path, monkeypatch):
    """A re-read that stops after writing some arrays of one shard (the images, not the rest) leaves
    a store that the next ingest makes equal to a fresh ingest of the changed files."""
    import pipeline.store.repair as repair

    source = write_set(EUCLID, tmp_path / "src", IDS)
    store = tmp_path / "store.zarr"
    original = repair.write_rows

    def stopped(path, rows, dataset):
        original(path, rows, dataset[["vis"]])  # the VIS shard written, nothing else
        raise RuntimeError("stopped midway")

    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        ingest(EUCLID, source, store, client, chunk_objects=8)
        _change_pixels(source, CHANGED)
        monkeypatch.setattr(repair, "write_rows", stopped)
        with pytest.raises(RuntimeError, match="stopped midway"):
            ingest(EUCLID, source, store, client)
        monkeypatch.undo()
        again = ingest(EUCLID, source, store, client)
        assert again.n_reread >= 1
        fresh = tmp_path / "fresh.zarr"
        ingest(EUCLID, source, fresh, client, chunk_objects=8)
    assert _snapshot(store).identical(_snapshot(fresh))


def test_the_rate_after_an_interrupted_ingest_counts_only_the_objects_this_run_read(tmp_path, dask_client):
    """An ingest finishing a plan of 24 objects whose first 2 regions (16 objects) were written
    before the stop reads 8: its rate is over 8 (trial: over all 24, about 3x too high)."""
    source = write_set(EUCLID, tmp_path / "src", IDS)
    store = tmp_path / "store.zarr"
    create_store(store, EUCLID, source=str(source), chunk_objects=8)
    manifest = discover(EUCLID, source)
    plan_id = start_plan(store, manifest.object_ids)
    labels, _ = labels_for(EUCLID, manifest.object_ids, source)
    layout_yaml = read_attributes(store).layout_yaml
    for index, (start, stop) in enumerate(plan_regions(0, 24, 8)[:2]):
        part = manifest.select_or_missing(manifest.object_ids[start:stop])
        ingest_region(str(store), layout_yaml, plan_id, index, start, part, labels[start:stop])
    update_attributes(store, {"n_objects": 0})

    report = ingest(EUCLID, source, store, dask_client)
    assert (report.n_resumed, report.n_after, report.n_read) == (24, 24, 8)
    assert report.rate_text() == rate_text(8, report.seconds)
    assert "finished from an interrupted run 24 (8 read by this run)" in report.summary()
