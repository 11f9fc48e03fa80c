"""An object whose preferred file of a band is broken is read from a whole duplicate of it.

New-user trial: a ``.fits`` cut short by an interrupted copy, beside a complete ``.fits.gz`` of the
same cutout, left the object TRUNCATED (unscored) although a good copy was there. Real FITS files,
a real ingest on a Dask cluster, the store read back, cutouts checked with astropy.
"""

from __future__ import annotations

import gzip

import numpy as np
from astropy.io import fits
from cutouts import band_file, cutout_image, sky, write_cutout, write_set

from pipeline.flags import Flag
from pipeline.sources import discover
from pipeline.store import ingest, open_store, write_cutouts
from pipeline.store.cutout_source import input_files
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [830001, 830002, 830003]
CUT, EMPTY, BLANK = IDS
VIS = EUCLID.band("VIS").shape


def _row(store, object_id: int) -> int:
    return list(open_store(store)["object_id"].values).index(object_id)


def _gzipped_copy(plain, pixels: np.ndarray, object_id: int):
    """A ``.fits.gz`` beside ``plain`` holding ``pixels`` (a whole file)."""
    whole = plain.with_name("whole.tmp")
    write_cutout(whole, pixels, *sky(object_id), scale_arcsec=0.1)
    target = plain.with_name(plain.name + ".gz")
    target.write_bytes(gzip.compress(whole.read_bytes()))
    whole.unlink()
    return target


def test_a_broken_preferred_file_gives_way_to_its_whole_duplicate(tmp_path, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    cut = band_file(EUCLID, root, CUT, "VIS")
    whole_pixels = fits.getdata(cut).astype(np.float32)
    with open(cut, "r+b") as file:  # an interrupted copy: the .fits ends half-way through its data
        file.truncate(cut.stat().st_size // 2)
    store = tmp_path / "store.zarr"
    first = ingest(EUCLID, root, store, dask_client)  # no duplicate yet: TRUNCATED, as before
    assert open_store(store)["band_flags"].values[_row(store, CUT), 0] == Flag.TRUNCATED

    # the whole copy arrives as a .fits.gz: the next ingest reads the object from it
    gz = _gzipped_copy(cut, whole_pixels, CUT)
    empty = band_file(EUCLID, root, EMPTY, "VIS")
    empty_pixels = cutout_image(5, 0, VIS)
    _gzipped_copy(empty, empty_pixels, EMPTY)
    empty.write_bytes(b"")  # an empty .fits beside a whole .fits.gz
    blank = band_file(EUCLID, root, BLANK, "VIS")
    _gzipped_copy(blank, cutout_image(6, 0, VIS), BLANK)
    write_cutout(blank, np.full(VIS, np.nan, dtype=np.float32), *sky(BLANK), scale_arcsec=0.1)
    report = ingest(EUCLID, root, store, dask_client)
    assert first.n_after == report.n_after == 3 and report.n_reread == 3
    data = open_store(store)
    row = _row(store, CUT)
    assert data["band_flags"].values[row, 0] == Flag.DUPLICATE_ID  # not TRUNCATED: it is read whole
    np.testing.assert_array_equal(data["vis"].values[row, 0], whole_pixels)
    assert data["flags"].values[row] == Flag.DUPLICATE_ID
    assert data["band_flags"].values[_row(store, EMPTY), 0] == Flag.DUPLICATE_ID
    np.testing.assert_array_equal(data["vis"].values[_row(store, EMPTY), 0], empty_pixels)
    # an all-NaN image is what the survey gave, not a broken file: it stays the one read
    assert data["band_flags"].values[_row(store, BLANK), 0] == Flag.DUPLICATE_ID | Flag.ALL_NONFINITE
    summary = report.summary()
    assert "VIS: preferred file unreadable, truncated or of another shape: its duplicate read" in summary
    # the duplicate line says the order of preference, not which was read (trial: "read ...fits" of this one)
    assert "id 830001 VIS: imageEUC_VIS-830001.fits before imageEUC_VIS-830001.fits.gz" in summary
    assert "read imageEUC_VIS-830001.fits" not in summary
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0  # what it read is recorded

    # the cutout names the file its pixels came from, and why not the preferred one
    written = write_cutouts(store, CUT, tmp_path / "out")
    header = fits.getheader(written.files["VIS"])
    assert header["LHFILE"] == gz.relative_to(root).as_posix()
    np.testing.assert_array_equal(fits.getdata(written.files["VIS"]), fits.getdata(gz))
    assert written.inputs["VIS"].status == "read"  # the store recorded every file of the band
    comment = " ".join(str(line) for line in header["COMMENT"])
    assert f"{cut.name}: truncated file, so ingest read this duplicate of it" in comment
    assert header["LHFILE"] == write_cutouts(store, CUT, tmp_path / "again").inputs["VIS"].path
    assert written.inputs["H"].status == "read"
    blank_file = input_files(store, BLANK)[1]["VIS"]  # (no cutout of an all-NaN band is written)
    assert (blank_file.status, blank_file.path) == ("read", blank.relative_to(root).as_posix())

    # the .fits copied whole at last: read from it again, named as read
    write_cutout(cut, whole_pixels, *sky(CUT), scale_arcsec=0.1)
    assert ingest(EUCLID, root, store, dask_client).n_reread == 1
    written = write_cutouts(store, CUT, tmp_path / "whole")
    assert written.inputs["VIS"].status == "read" and written.inputs["VIS"].path.endswith("830001.fits")


def test_a_broken_symbolic_link_beside_a_file_is_no_duplicate(tmp_path, dask_client):
    """New-user trial: ``imageEUC_Y-300007.fits.gz -> /nonexistent`` beside a good ``.fits`` flagged the
    object DUPLICATE_ID; a broken link is no copy: set aside, said once in the report. A link that is
    an object's only file of a band makes it MISSING_FILE with a reason naming the broken link."""
    source = write_set(EUCLID, tmp_path / "src", IDS)
    y = band_file(EUCLID, source, CUT, "Y")
    copy = y.with_name(y.name + ".gz")  # first a real copy: DUPLICATE_ID, as before
    copy.write_bytes(gzip.compress(y.read_bytes()))
    store = tmp_path / "s.zarr"
    ingest(EUCLID, source, store, dask_client)
    assert int(open_store(store)["flags"].values[_row(store, CUT)]) == Flag.DUPLICATE_ID
    copy.unlink()
    copy.symlink_to("/nonexistent")
    write_set(EUCLID, source, [830004])  # a new object whose only J file is a broken link
    only = band_file(EUCLID, source, 830004, "J")
    only.unlink()
    only.symlink_to(tmp_path / "moved" / only.name)
    report = ingest(EUCLID, source, store, dask_client)
    summary = report.summary()
    assert (
        f"ignored: 1 broken symbolic link(s) beside another file of the object's band, not read (no copy of "
        f"it: no DUPLICATE_ID), e.g. {copy.name} -> /nonexistent"
    ) in summary
    assert "DUPLICATE_ID" not in summary.replace("no DUPLICATE_ID", "")
    data = open_store(store)
    flags = dict(zip(data["object_id"].values.tolist(), data["flags"].values.tolist()))
    assert flags[CUT] == 0  # re-read: its duplicates went (the link is none), the .fits read as before
    np.testing.assert_array_equal(
        data["nir"].sel(nir_band="Y").values[_row(store, CUT)], fits.getdata(y).astype(np.float32)
    )
    assert flags[830004] == Flag.MISSING_FILE
    assert f"J: broken symbolic link (target folder {tmp_path / 'moved'} missing)" in summary
    # only broken links for a band: the preferred one is the band's file (MISSING_FILE), no duplicate
    h = band_file(EUCLID, source, BLANK, "H")
    h.unlink()
    h.symlink_to("/nonexistent")
    h.with_name(h.name + ".gz").symlink_to("/nonexistent.gz")
    manifest = discover(EUCLID, source)
    assert (BLANK, "H") not in manifest.duplicates and (CUT, "Y") not in manifest.duplicates
    assert manifest.paths["H"][list(manifest.object_ids).index(BLANK)] == str(h)
    assert sorted(manifest.broken_links) == sorted([str(copy), str(h) + ".gz"])
