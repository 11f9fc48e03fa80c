"""A band file that read fine, overwritten by a broken one, keeps its stored row.

New-user trial: a good file truncated to 0 bytes (a copy in progress made in place by cp or scp)
made the re-read rewrite its object as UNREADABLE, unscored and without a position, where a deleted
file keeps the stored pixels. Real FITS files, real ingests on the session's Dask cluster, real
score runs with the shipped model.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from astropy.io import fits
from cutouts import band_file, cutout_image, sky, write_cutout, write_set

from pipeline import paths
from pipeline.flags import Flag
from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.store.ingestion import ingest
from pipeline.store.repair import repair_ids, repaired_rows
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300012))


def _snapshot(store):
    return open_store(store).load().drop_attrs()


def _modified(path) -> int:
    return path.stat().st_mtime_ns


def _catalog(run) -> pd.DataFrame:
    return pd.read_parquet(paths.catalog_parquet(run)).set_index("object_id")


def test_a_good_file_overwritten_by_a_broken_one_keeps_the_stored_row(tmp_path, dask_client):
    source = write_set(EUCLID, tmp_path / "src", IDS)
    broken_before = band_file(EUCLID, source, 300009, "H")
    broken_before.write_bytes(b"not FITS" * 100)  # broken from the start: rewritten as before
    store, run = tmp_path / "store.zarr", tmp_path / "run"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    before = _snapshot(store)
    scored = _catalog(run)
    assert scored.loc[300004, "flags"] == 0 and np.isfinite(scored.loc[300004, "score"])

    copying = band_file(EUCLID, source, 300004, "VIS")
    whole = copying.read_bytes()
    copying.write_bytes(b"")  # `: > file`, as a copy in progress made in place leaves it
    cut = band_file(EUCLID, source, 300006, "J")
    cut.write_bytes(cut.read_bytes()[:4000])  # cut short inside its data
    broken_before.write_bytes(b"")  # another broken file: its object changes otherwise (a new reason)
    replaced = band_file(EUCLID, source, 300002, "VIS")  # a good file replaced by another good one
    new_pixels = cutout_image(300002 + 7919, 0, (200, 200))
    write_cutout(replaced, new_pixels, *sky(300002), scale_arcsec=0.1)
    report = ingest(EUCLID, source, store, dask_client)
    summary = report.summary()
    assert (
        "  files failing: 2 stored object(s) have band files that read fine before and now fail (empty, "
        "unreadable, cut short or of another shape), e.g. 300004 (VIS), 300006 (J); the store keeps the rows "
        "read before and the next ingest compares these files again"
    ) in summary
    after = _snapshot(store)
    for row in (4, 6):  # kept as read before: pixels, flags, position
        assert after.isel(object=row).identical(before.isel(object=row))
    np.testing.assert_array_equal(after["vis"][2, 0].values, new_pixels)
    assert report.n_reread == 2  # 300002 and 300009; the kept objects are not counted as read
    assert not any(300004 in ids or 300006 in ids for ids in report.reason_objects.values())
    assert 2 in repaired_rows(store, repair_ids(store))
    assert not {4, 6} & repaired_rows(store, repair_ids(store))  # the kept rows are not scored again
    rescored = score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    assert rescored.n_rows_rescored >= 1
    catalog = _catalog(run)
    for object_id in (300004, 300006):
        assert catalog.loc[object_id, "flags"] == 0
        assert catalog.loc[object_id, "score"] == scored.loc[object_id, "score"]
        assert np.isfinite(catalog.loc[object_id, "ra"])

    again = ingest(EUCLID, source, store, dask_client)  # still broken: compared and said again
    assert again.n_rewritten == 0 and len(again.files_failing) == 1 and "300004 (VIS)" in again.summary()
    assert _snapshot(store).identical(after)

    copying.write_bytes(whole)  # the copy completes: read again as any replaced file, same pixels
    done = ingest(EUCLID, source, store, dask_client)
    assert (done.n_reread, done.n_rewritten) == (1, 0)
    assert done.files_failing == [
        again.files_failing[0]
        .replace("2 stored", "1 stored")
        .replace("e.g. 300004 (VIS), 300006 (J)", "e.g. 300006 (J)")
    ]
    assert _snapshot(store).identical(after)
    last = ingest(EUCLID, source, store, dask_client)  # the VIS file's new record holds; J still cut
    assert last.n_reread == 0 and "300006 (J)" in last.files_failing[0]
    reports = paths.bookkeeping_dir(store).glob("reports/ingest-*.json")
    saved = json.loads(max(reports, key=_modified).read_text())
    assert saved["files_failing"] == last.files_failing
    assert open_store(store)["flags"].values[9] & (Flag.UNREADABLE | Flag.TRUNCATED)  # broken, as stored


def test_reread_takes_a_file_broken_for_good_as_it_is_now(tmp_path, dask_client):
    """Trial: a band file overwritten by a header-only FITS kept its old clean score for good; every
    ingest said "a copy still in progress?" and even ``--reread`` kept the old row."""
    ids = IDS[:4]
    source = write_set(EUCLID, tmp_path / "src", ids)
    store, run = tmp_path / "store.zarr", tmp_path / "run"
    ingest(EUCLID, source, store, dask_client)
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    scored = _catalog(run)
    assert scored.loc[300001, "flags"] == 0 and np.isfinite(scored.loc[300001, "score"])

    fits.PrimaryHDU().writeto(band_file(EUCLID, source, 300001, "VIS"), overwrite=True)  # header only
    plain = ingest(EUCLID, source, store, dask_client)  # the default: kept, and what to do if for good
    assert (
        f"(a copy still in progress? ingest again when it is complete; broken for good? `lenshunt ingest "
        f"{source} {store} --reread` takes the files as they are now)"
    ) in plain.files_failing[0]
    assert open_store(store)["flags"].values[1] == 0

    reread = ingest(EUCLID, source, store, dask_client, reread=True)
    assert reread.files_failing == [] and reread.n_rewritten == 1
    flags = int(open_store(store)["flags"].values[1])
    assert int(open_store(store)["band_flags"].values[1, 0]) & (Flag.UNREADABLE | Flag.TRUNCATED)
    assert 1 in repaired_rows(store, repair_ids(store))
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    catalog = _catalog(run)
    assert catalog.loc[300001, "flags"] == flags | Flag.NOT_SCORED  # flagged as the store says, unscored
    assert catalog.loc[300001, "score"] != scored.loc[300001, "score"]  # no stale clean score
    assert catalog.loc[300002, "score"] == scored.loc[300002, "score"]
