"""A cutout names the input file its band was read from (``LHFILE``, relative to the store's source
folder ``LHSRCDIR``), or says why it cannot (new-user trial: no cutout card named the input file, so
for a DUPLICATE_ID object with a ``.fits`` and a ``.fits.gz`` which one was read was unknown). Real
FITS sets, a real ingest, the cutouts read with astropy and fitsverify."""

from __future__ import annotations

import shutil
from urllib.parse import unquote

import numpy as np
from astropy.io import fits
from cutouts import band_file, cutout_image, write_set
from test_catalog_formats import fitsverify

from pipeline import paths
from pipeline.flags import Flag
from pipeline.store import ingest, open_store, write_cutouts
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
DUPLICATE, GZIP_ONLY, REPLACED, PLAIN = 820001, 820002, 820003, 820004


def _comment(header: fits.Header) -> str:
    return " ".join(str(line) for line in header["COMMENT"])


def _gzip_copy(path, image) -> None:
    """``path`` + ``.gz`` holding ``image`` (other pixels than ``path``'s)."""
    header = fits.getheader(path)
    fits.PrimaryHDU(image, header).writeto(f"{path}.gz")


def _ingested(root, tmp_path, dask_client):
    write_set(EUCLID, root, [DUPLICATE, GZIP_ONLY, REPLACED, PLAIN])
    vis = band_file(EUCLID, root, DUPLICATE, "VIS")
    _gzip_copy(vis, cutout_image(999, 0, EUCLID.band("VIS").shape))  # a different image: which was read?
    only = band_file(EUCLID, root, GZIP_ONLY, "VIS")
    _gzip_copy(only, fits.getdata(only))
    only.unlink()
    store = tmp_path / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    return store


def test_the_cutout_names_the_file_read_even_of_duplicates(tmp_path, dask_client):
    root = tmp_path / ("Bänder 100% " + "long-folder-name-" * 5)  # a long path, not ASCII, a '%' (trial)
    store = _ingested(root, tmp_path, dask_client)
    data = open_store(store)
    row = list(data["object_id"].values).index(DUPLICATE)
    assert data["band_flags"].values[row][0] & Flag.DUPLICATE_ID

    written = write_cutouts(store, DUPLICATE, tmp_path / "out")
    for band in ("VIS", "H"):
        with fits.open(written.files[band]) as hdus:
            header, pixels = hdus[0].header, hdus[0].data.copy()
        assert unquote(header["LHSRCDIR"]) == str(root)
        relative = band_file(EUCLID, root, DUPLICATE, band).relative_to(root).as_posix()
        assert header["LHFILE"] == relative  # the .fits, not the .fits.gz beside it
        np.testing.assert_array_equal(pixels, fits.getdata(root / header["LHFILE"]))
        assert "LHFILE is the input file this band was read from" in _comment(header)
        said = "Other than printable ASCII, and '%', is percent-encoded in LHSRCDIR and LHFILE."
        assert said in _comment(header) and header["LONGSTRN"] == "OGIP 1.0"
        check = fitsverify(written.files[band])
        assert "Verification found 0 warning(s) and 0 error(s)" in check.stdout, check.stdout
        assert written.inputs[band].status == "read"
    duplicate = fits.getdata(f"{band_file(EUCLID, root, DUPLICATE, 'VIS')}.gz")
    assert not np.array_equal(fits.getdata(written.files["VIS"]), duplicate)

    header = fits.getheader(write_cutouts(store, GZIP_ONLY, tmp_path / "out").files["VIS"])
    assert header["LHFILE"].endswith("imageEUC_VIS-820002.fits.gz")


def test_a_cutout_says_why_it_cannot_name_the_file(tmp_path, dask_client):
    root = tmp_path / "src"
    store = _ingested(root, tmp_path, dask_client)
    replaced = band_file(EUCLID, root, REPLACED, "VIS")
    fits.PrimaryHDU(cutout_image(998, 0, EUCLID.band("VIS").shape)).writeto(replaced, overwrite=True)
    written = write_cutouts(store, REPLACED, tmp_path / "replaced")
    header = fits.getheader(written.files["VIS"])
    assert "LHFILE" not in header and header["LHSRCDIR"] == str(root)
    assert "The input file of this band is unknown" in _comment(header)
    assert "size or modification time differs from the file ingest read" in _comment(header)
    assert fits.getheader(written.files["J"])["LHFILE"].endswith("imageEUC_J-820003.fits")

    # a store of an earlier version: no size and time records of the files read
    for table in paths.bookkeeping_dir(store).rglob("*.files.npz"):
        table.unlink()
    written = write_cutouts(store, PLAIN, tmp_path / "unchecked")
    header = fits.getheader(written.files["VIS"])
    assert header["LHFILE"] == band_file(EUCLID, root, PLAIN, "VIS").relative_to(root).as_posix()
    assert "not confirmed as the file read" in _comment(header)
    assert written.inputs["VIS"].status == "unchecked"

    shutil.move(root, tmp_path / "moved")  # the source folder gone: the cutout is still written
    written = write_cutouts(store, PLAIN, tmp_path / "gone")
    header = fits.getheader(written.files["VIS"])
    assert "LHFILE" not in header and "source folder (LHSRCDIR) is not there" in _comment(header)
    assert "0 error(s)" in fitsverify(written.files["VIS"]).stdout
