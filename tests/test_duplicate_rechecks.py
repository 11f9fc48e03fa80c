"""Every file of a band with duplicates is change-checked by the next ingest, not the preferred one only.

Trial: a corrected ``.fits.gz`` placed beside a still-broken ``.fits`` was not read by the next
``lenshunt ingest`` (the store recorded the size and time of the preferred ``.fits`` only, and its
DUPLICATE_ID already held), and a duplicate read in place of a broken preferred file could be
replaced unnoticed. Real FITS files (gzip and bzip2), real ingests on a Dask cluster, the store read back.
"""

from __future__ import annotations

import bz2
import gzip

import numpy as np
from astropy.io import fits
from cutouts import band_file, cutout_image, sky, write_cutout, write_set

from pipeline import paths
from pipeline.flags import Flag
from pipeline.store import ingest, open_store
from pipeline.store.cutout_source import input_files
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [840001, 840002, 840003]
BROKEN, CLEAN, OTHER = IDS
VIS = EUCLID.band("VIS").shape


def _row(store, object_id: int) -> int:
    return list(open_store(store)["object_id"].values).index(object_id)


def _fits_bytes(pixels: np.ndarray, object_id: int, tmp) -> bytes:
    """A whole FITS file of ``pixels`` (the set's WCS), as bytes."""
    whole = tmp / "whole.tmp"
    write_cutout(whole, pixels, *sky(object_id), scale_arcsec=0.1)
    raw = whole.read_bytes()
    whole.unlink()
    return raw


def _truncated_fits(path) -> None:
    """``path`` cut short half-way through its data, as an interrupted copy leaves it."""
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)


def _broken_with_duplicate(root, tmp, pixels: np.ndarray | None):
    """Object BROKEN's VIS: a truncated ``.fits`` and a ``.fits.gz`` beside it, whole with ``pixels``
    or (None) a gzip stream cut short; the ``.fits.gz``'s path."""
    plain = band_file(EUCLID, root, BROKEN, "VIS")
    gz = plain.with_name(plain.name + ".gz")
    if pixels is None:
        packed = gzip.compress(_fits_bytes(cutout_image(1, 0, VIS), BROKEN, tmp))
        gz.write_bytes(packed[: len(packed) // 3])
    else:
        gz.write_bytes(gzip.compress(_fits_bytes(pixels, BROKEN, tmp)))
    _truncated_fits(plain)
    return gz


def _vis(store, object_id: int):
    data = open_store(store)
    row = _row(store, object_id)
    return data["vis"].values[row, 0], int(data["band_flags"].values[row, 0]), int(data["flags"].values[row])


def test_a_corrected_duplicate_beside_a_broken_preferred_file_is_read(tmp_path, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    gz = _broken_with_duplicate(root, tmp_path, None)  # a broken .fits and a corrupt .fits.gz
    store = tmp_path / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    pixels, band_flags, flags = _vis(store, BROKEN)
    assert band_flags & Flag.DUPLICATE_ID and band_flags & (Flag.TRUNCATED | Flag.UNREADABLE)
    assert np.isnan(pixels).all()
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0  # nothing changed: nothing re-read

    # the trial: a corrected .fits.gz beside the still-broken .fits
    good = cutout_image(BROKEN, 0, VIS)
    gz.write_bytes(gzip.compress(_fits_bytes(good, BROKEN, tmp_path)))
    report = ingest(EUCLID, root, store, dask_client)
    assert (report.n_reread, report.n_rewritten) == (1, 1)
    pixels, band_flags, flags = _vis(store, BROKEN)
    np.testing.assert_array_equal(pixels, good)
    assert band_flags == flags == Flag.DUPLICATE_ID  # no failure flag left
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0  # the corrected file is recorded

    # a third file appears (a .fits.bz2 comes before the .fits.gz): read from it
    bz = gz.with_name(gz.name.removesuffix(".gz") + ".bz2")
    third = cutout_image(BROKEN, 7, VIS)
    bz.write_bytes(bz2.compress(_fits_bytes(third, BROKEN, tmp_path)))
    assert ingest(EUCLID, root, store, dask_client).n_rewritten == 1
    np.testing.assert_array_equal(_vis(store, BROKEN)[0], third)
    # and goes again: the .fits.gz is read again
    bz.unlink()
    assert ingest(EUCLID, root, store, dask_client).n_rewritten == 1
    np.testing.assert_array_equal(_vis(store, BROKEN)[0], good)
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0


def test_a_duplicate_read_in_place_of_a_broken_file_is_read_again_when_replaced(tmp_path, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    first = cutout_image(BROKEN, 0, VIS)
    gz = _broken_with_duplicate(root, tmp_path, first)  # a broken .fits, a good .fits.gz
    # a clean object with a duplicate: its preferred file is read, and its duplicate is checked too
    clean = band_file(EUCLID, root, CLEAN, "VIS")
    clean_gz = clean.with_name(clean.name + ".gz")
    clean_gz.write_bytes(gzip.compress(clean.read_bytes()))
    store = tmp_path / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    pixels, band_flags, _ = _vis(store, BROKEN)
    np.testing.assert_array_equal(pixels, first)
    assert band_flags == Flag.DUPLICATE_ID
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0

    read = input_files(store, BROKEN)[1]["VIS"]  # a cutout names it as read: every file is as recorded
    assert (read.status, read.path) == ("read", gz.relative_to(root).as_posix())
    assert read.why.endswith("truncated file, so ingest read this duplicate of it")

    replaced = cutout_image(BROKEN, 5, VIS)  # the duplicate read is replaced by other pixels
    gz.write_bytes(gzip.compress(_fits_bytes(replaced, BROKEN, tmp_path)))
    unknown = input_files(store, BROKEN)[1]["VIS"]  # not the file read: not named
    assert unknown.status == "unknown" and unknown.path is None
    plain = band_file(EUCLID, root, BROKEN, "VIS").relative_to(root).as_posix()
    assert f"the duplicates of {plain} differ from those ingest found" in unknown.why
    report = ingest(EUCLID, root, store, dask_client)
    assert (report.n_reread, report.n_rewritten) == (1, 1)
    np.testing.assert_array_equal(_vis(store, BROKEN)[0], replaced)
    assert input_files(store, BROKEN)[1]["VIS"].status == "read"

    # a duplicate that is not read, replaced: the object is read again, and its row stays as it was
    clean_gz.write_bytes(gzip.compress(_fits_bytes(cutout_image(CLEAN, 9, VIS), CLEAN, tmp_path)))
    report = ingest(EUCLID, root, store, dask_client)
    assert (report.n_reread, report.n_rewritten) == (1, 0)
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0


def test_stores_without_records_of_duplicates_read_objects_with_duplicates_once(tmp_path, dask_client):
    """Tables of earlier versions hold the preferred file only: objects with duplicates now are read once
    more at the next ingest (what determined their pixels is not known), then compared as any other."""
    root = write_set(EUCLID, tmp_path / "src", IDS)
    gz = _broken_with_duplicate(root, tmp_path, None)
    store = tmp_path / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    for table in paths.bookkeeping_dir(store).rglob("*.files.npz"):  # as an earlier version saved it
        with np.load(table) as saved:
            kept = {key: saved[key] for key in ("object_id", "bands", "size", "mtime_ns", "stats_time")}
        np.savez(table, **kept)
    good = cutout_image(BROKEN, 0, VIS)
    gz.write_bytes(gzip.compress(_fits_bytes(good, BROKEN, tmp_path)))
    unchecked = input_files(store, BROKEN)[1]["VIS"]  # the .fits is as recorded, its duplicate unknown
    assert unchecked.status == "unchecked" and "preferred file only" in unchecked.why
    report = ingest(EUCLID, root, store, dask_client)
    assert (report.n_reread, report.n_rewritten) == (1, 1)  # only the object with a duplicate
    np.testing.assert_array_equal(_vis(store, BROKEN)[0], good)
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0
    np.testing.assert_array_equal(_vis(store, OTHER)[0], fits.getdata(band_file(EUCLID, root, OTHER, "VIS")))
