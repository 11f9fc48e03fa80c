"""Sets that change, sets that differ, and stores with two writers: real FITS, stores, processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cutouts import band_file, cutout_image, sky, write_cutout, write_set

from pipeline.errors import SourceMismatchError
from pipeline.flags import Flag
from pipeline.sources import discover, labels_for
from pipeline.store.ingestion import ingest, ingest_region, start_plan
from pipeline.store.zarr_store import create_store, open_store, read_attributes
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(100000, 100020))
REPO = Path(__file__).resolve().parents[1]


def _other_delivery(root: Path, ids) -> Path:
    """A set numbered like the first one (from 100000) with other pixels: a test set beside a train set."""
    write_set(EUCLID, root, ids)
    for object_id in ids:
        image = cutout_image(object_id + 7919, 0, (200, 200))
        write_cutout(band_file(EUCLID, root, object_id, "VIS"), image, *sky(object_id))
    return root


def _snapshot(store: Path):
    return open_store(store).load().drop_attrs()


def test_late_and_repaired_files_are_read_again(tmp_path, dask_client):
    source = write_set(EUCLID, tmp_path / "src", IDS, {i: int(i % 2) for i in IDS})
    late = band_file(EUCLID, source, 100001, "Y")
    late_bytes = late.read_bytes()
    late.unlink()  # arrives after the first ingest
    half = band_file(EUCLID, source, 100004, "VIS")
    whole_bytes = half.read_bytes()
    half.write_bytes(whole_bytes[: len(whole_bytes) // 2])  # half-copied at the first ingest
    band_file(EUCLID, source, 100009, "H").write_bytes(b"not FITS" * 100)  # stays broken
    store = tmp_path / "store.zarr"
    first = ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    flags = open_store(store)["flags"].values
    assert flags[1] & Flag.MISSING_FILE and flags[4] & Flag.TRUNCATED and flags[9] & Flag.UNREADABLE
    assert first.n_reread == 0

    late.write_bytes(late_bytes)
    half.write_bytes(whole_bytes)
    second = ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    assert (second.n_reread, second.n_reread_clean, second.n_added, second.n_after) == (2, 2, 0, 20)
    assert "re-read 2 flagged objects" in second.summary()
    data = open_store(store)
    assert data["flags"].values.tolist() == [Flag.UNREADABLE if i == 100009 else 0 for i in IDS]
    np.testing.assert_array_equal(data["vis"][4, 0].values, cutout_image(100004, 0, (200, 200)))
    np.testing.assert_array_equal(data["nir"].sel(nir_band="Y")[1].values, cutout_image(100001, 1, (66, 66)))
    # The store equals a clean ingest of the repaired set, bit for bit (labels and positions too).
    clean = tmp_path / "clean.zarr"
    ingest(EUCLID, source, clean, dask_client, chunk_objects=8)
    clean_data = _snapshot(clean)
    flagged = clean_data["flags"].values != 0
    assert _snapshot(store).identical(clean_data) and flagged.sum() == 1

    third = ingest(EUCLID, source, store, dask_client, chunk_objects=8)  # nothing changed since
    assert third.n_reread == 0 and not third.plans


def test_second_set_with_the_same_ids_is_refused(tmp_path, dask_client):
    train = write_set(EUCLID, tmp_path / "train", IDS)
    test = _other_delivery(tmp_path / "test", [*IDS, 100020])
    store = tmp_path / "store.zarr"
    ingest(EUCLID, train, store, dask_client, chunk_objects=8)
    before = _snapshot(store)
    with pytest.raises(SourceMismatchError, match=r"holds the objects of .*train, not of .*test"):
        ingest(EUCLID, test, store, dask_client)
    assert _snapshot(store).identical(before)
    # The same source spelled otherwise is the same source.
    link = tmp_path / "link"
    link.symlink_to(train)
    assert ingest(EUCLID, link, store, dask_client).n_added == 0
    # A moved source is accepted when the user says so, and recorded.
    moved = tmp_path / "moved"
    train.rename(moved)
    with pytest.raises(SourceMismatchError, match="--source-moved"):
        ingest(EUCLID, moved, store, dask_client)
    assert ingest(EUCLID, moved, store, dask_client, source_moved=True).n_added == 0
    assert read_attributes(store).source == str(moved)


def _interrupted_plan(store: Path, source: Path, plan_source: Path) -> None:
    """A store of ``source`` whose ingest (recorded as from ``plan_source``) stopped after one region."""
    create_store(store, EUCLID, source=str(source), chunk_objects=8)
    manifest = discover(EUCLID, plan_source)
    plan_id = start_plan(store, manifest.object_ids, source=str(plan_source))
    labels, _ = labels_for(EUCLID, manifest.object_ids, plan_source)
    first = manifest.select_or_missing(manifest.object_ids[:8])
    ingest_region(str(store), read_attributes(store).layout_yaml, plan_id, 0, 0, first, labels[:8])


def test_pending_plan_is_finished_only_from_its_own_source(tmp_path, dask_client):
    x = write_set(EUCLID, tmp_path / "x", IDS)
    y = _other_delivery(tmp_path / "y", IDS)
    clean = tmp_path / "clean.zarr"
    ingest(EUCLID, x, clean, dask_client, chunk_objects=8)
    store = tmp_path / "store.zarr"
    _interrupted_plan(store, x, x)
    with pytest.raises(SourceMismatchError):
        ingest(EUCLID, y, store, dask_client)
    assert read_attributes(store).n_objects == 0  # nothing committed from the wrong source
    report = ingest(EUCLID, x, store, dask_client)
    assert (report.n_resumed, report.n_added) == (20, 0)
    assert _snapshot(store).identical(_snapshot(clean))
    # A plan recorded from another source than the one given is refused, not finished from it.
    other = tmp_path / "other.zarr"
    _interrupted_plan(other, x, y)
    with pytest.raises(SourceMismatchError, match=r"unfinished ingest of .*y; it can only be finished"):
        ingest(EUCLID, x, other, dask_client)
    assert read_attributes(other).n_objects == 0
