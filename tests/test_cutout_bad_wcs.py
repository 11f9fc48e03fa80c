"""A band whose WCS ingest took as unusable (BAD_WCS) is written by ``lenshunt cutout`` without its
WCS cards, with a COMMENT saying why (new-user trial: ``CRVAL1 = NaN``, written as a raw card, was
flagged "unusable WCS: unparsable card CRVAL1" at ingest, but its cutout kept the WCS with
``CRVAL1 = 'NaN'`` (a string: astropy read 0), warned that the WCS put the object 534339.769 arcsec
from the centre, and failed fitsverify). Real FITS files with raw cards written byte for byte, a real
ingest, the cutouts checked with astropy and fitsverify."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import zarr
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from cutouts import band_file, write_set
from test_catalog_formats import fitsverify

from flows.cli import main
from pipeline.flags import Flag
from pipeline.store import ingest, open_store, write_cutouts
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
GOOD = 810009
CARDS = {  # object: the card written over its Y band's card of that keyword, byte for byte
    810001: ("CRVAL1", "NaN"),  # the trial's: unparsable, kept in the store as the string 'NaN'
    810002: ("CRVAL2", "INF"),  # unparsable
    810003: ("CRPIX1", "1.2.3"),  # unparsable
    810004: ("CRPIX2", "'abc'"),  # a string
    810005: ("CRVAL1", "'150.25'"),  # a number as a string: wcslib reads 0
    810006: ("CDELT1", "'NaN'"),  # a string
    810007: ("CRVAL2", ""),  # no value
    810008: ("RADESYS", "ICRS"),  # unparsable (unquoted); kept as 'ICRS', a usable card: the flag decides
}
Y = [band.name for band in EUCLID.bands].index("Y")


def _write_raw(path, keyword: str, text: str) -> None:
    with fits.open(path) as hdus:
        image, header = hdus[0].data.copy(), hdus[0].header.copy()
    header["RADESYS"] = "FK5"
    fits.PrimaryHDU(image, header).writeto(path, overwrite=True)
    raw = path.read_bytes()
    card = fits.Card(keyword, header[keyword]).image.encode("ascii")
    assert raw.count(card) == 1
    written = f"{keyword:<8}= {text:>20}" if text else f"{keyword:<8}="
    path.write_bytes(raw.replace(card, written.ljust(80).encode("ascii")))


def _has_celestial_wcs(header: fits.Header) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header).has_celestial


def _assert_written_without_wcs(path, why: str) -> None:
    with fits.open(path) as hdus:
        header = hdus[0].header
        assert np.isfinite(hdus[0].data).all()
    assert not _has_celestial_wcs(header)
    assert not [key for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CDELT1") if key in header]
    comment = " ".join(str(line) for line in header["COMMENT"])
    assert "celestial WCS is left out" in comment and why in comment, comment
    assert "disagrees with the catalog position" not in comment
    assert "LHPOSOFF" not in header and header["LHBAND"] == "Y"
    check = fitsverify(path)
    assert "Verification found 0 warning(s) and 0 error(s)" in check.stdout, check.stdout


@pytest.fixture(scope="module")
def bad_wcs_store(tmp_path_factory, dask_client):
    tmp = tmp_path_factory.mktemp("badwcs")
    root = write_set(EUCLID, tmp / "src", [*CARDS, GOOD])
    for object_id, (keyword, text) in CARDS.items():
        _write_raw(band_file(EUCLID, root, object_id, "Y"), keyword, text)
    store = tmp / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    return store


def test_a_bad_wcs_band_is_written_without_its_wcs(bad_wcs_store, tmp_path):
    data = open_store(bad_wcs_store)
    ids = list(data["object_id"].values)
    for object_id, (keyword, text) in CARDS.items():
        assert data["band_flags"].values[ids.index(object_id)][Y] & Flag.BAD_WCS, (keyword, text)
        written = write_cutouts(bad_wcs_store, object_id, tmp_path, bands=["Y"])
        why = keyword if keyword != "RADESYS" else "flagged BAD_WCS at ingest"
        assert "without the input's celestial WCS" in written.notes["Y"] and why in written.notes["Y"]
        assert not written.position
        _assert_written_without_wcs(written.files["Y"], why)
    # a usable WCS is kept
    written = write_cutouts(bad_wcs_store, GOOD, tmp_path, bands=["Y"])
    header = fits.getheader(written.files["Y"])
    assert _has_celestial_wcs(header) and "Y" not in written.notes
    assert "0 error(s)" in fitsverify(written.files["Y"]).stdout


def test_the_trials_cutout_command(bad_wcs_store, tmp_path, capsys):
    assert main(["cutout", str(bad_wcs_store), "810001", "--out", str(tmp_path), "--bands", "Y"]) == 0
    printed = capsys.readouterr()
    assert "written without the input's celestial WCS" in printed.out and "CRVAL1" in printed.out
    assert "catalog position" not in printed.err  # trial: "... 534339.769 arcsec from the cutout centre"
    _assert_written_without_wcs(tmp_path / "810001_Y.fits", "CRVAL1 = 'NaN' is not a finite number")


def test_a_store_ingested_before_the_check_is_written_right_too(bad_wcs_store, tmp_path):
    """Stores of earlier versions flagged only some of these bands: the cards are checked as well."""
    band_flags = zarr.open_group(str(bad_wcs_store), mode="r+")["band_flags"]
    ids = list(open_store(bad_wcs_store)["object_id"].values)
    saved = band_flags[:]
    try:
        cleared = saved.copy()
        cleared[:, Y] &= ~int(Flag.BAD_WCS)
        band_flags[:] = cleared
        for object_id in (810001, 810004, 810005, 810007):
            assert not open_store(bad_wcs_store)["band_flags"].values[ids.index(object_id)][Y]
            written = write_cutouts(bad_wcs_store, object_id, tmp_path, bands=["Y"], overwrite=True)
            _assert_written_without_wcs(written.files["Y"], CARDS[object_id][0])
    finally:
        band_flags[:] = saved
