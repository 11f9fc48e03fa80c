"""Shards written straight to their files are zarr's own: same bytes, same values, appendable."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from cutouts import write_set

import pipeline.store.shards as shards
from pipeline.sources import discover
from pipeline.store.reading import read_objects
from pipeline.store.zarr_store import create_store, open_store, resize_objects, write_region
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
SHARDED = ("vis", "nir", "header_cards")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = write_set(EUCLID, tmp_path_factory.mktemp("shards") / "src", range(100000, 100040))
    manifest = discover(EUCLID, root)
    data, _ = read_objects(EUCLID, manifest, -np.ones(len(manifest), dtype=np.int8))
    return data


def _store(path, data, chunk, direct, monkeypatch, n_rows=None):
    create_store(path, EUCLID, source="test", chunk_objects=chunk, inner_chunk_objects=8)
    n = data.sizes["object"]
    resize_objects(path, n_rows or n)
    with monkeypatch.context() as patch:
        if not direct:
            patch.setattr(shards, "write_whole_shard", lambda *args: False)
        for start in range(0, n, chunk):
            write_region(path, start, data.isel(object=slice(start, min(start + chunk, n))))
    return path


@pytest.mark.parametrize("chunk", [16, 64])  # whole shards and a partial last one
def test_direct_shards_are_byte_identical_to_zarrs(tmp_path, dataset, monkeypatch, chunk):
    ours = _store(tmp_path / "ours.zarr", dataset, chunk, True, monkeypatch)
    theirs = _store(tmp_path / "zarr.zarr", dataset, chunk, False, monkeypatch)
    for name in SHARDED:
        files = sorted(p.relative_to(theirs) for p in (theirs / name).rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(ours) for p in (ours / name).rglob("*") if p.is_file())
        for file in files:
            assert (ours / file).read_bytes() == (theirs / file).read_bytes(), file
        np.testing.assert_array_equal(zarr.open_array(ours / name)[:], dataset[name].values)


def test_zarr_appends_into_a_shard_written_directly(tmp_path, dataset, monkeypatch):
    """A later ingest fills the rest of a partial shard through zarr, reading ours."""
    store = tmp_path / "s.zarr"
    first = dataset.isel(object=slice(0, 20))
    create_store(store, EUCLID, source="test", chunk_objects=32, inner_chunk_objects=8)
    resize_objects(store, 20)
    write_region(store, 0, first)  # rows 0-19 of the shard of 32: written directly
    resize_objects(store, 40)
    write_region(store, 20, dataset.isel(object=slice(20, 32)))  # mid-shard: zarr merges
    write_region(store, 32, dataset.isel(object=slice(32, 40)))  # a new partial shard
    for name in SHARDED:
        np.testing.assert_array_equal(zarr.open_array(store / name)[:], dataset[name].values)


def test_an_unknown_codec_layout_is_left_to_zarr(tmp_path, dataset):
    store = tmp_path / "s.zarr"
    create_store(store, EUCLID, source="test", chunk_objects=16, inner_chunk_objects=8)
    resize_objects(store, 16)
    assert not shards.write_whole_shard(store / "vis", 8, dataset["vis"].values[:8])  # not a shard start
    assert not shards.write_whole_shard(store / "ra", 0, dataset["ra"].values[:16])  # not sharded
    assert not shards.write_whole_shard(store / "vis", 0, dataset["vis"].values[:8])  # not the whole shard
    assert open_store(store, include_uncommitted=True)["vis"].shape[0] == 16
