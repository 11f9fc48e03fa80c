"""Multi-extension cutouts: the HDU a layout names is read, and several images are never guessed."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from astropy.io import fits
from cutouts import band_file, write_set

from pipeline.errors import ConservationError
from pipeline.flags import UNUSABLE, Flag
from pipeline.sources import read_band
from pipeline.store.ingestion import ingest
from pipeline.store.zarr_store import open_store
from schemas.layout import LayoutError, load_layout, parse_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [100000, 100001, 100002]


def _image(shape=(66, 66), seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 1e-11 + 3e-11).astype(np.float32)


def _weight_first(path, science, header=None):
    """The tester's file: an empty primary, then a weight map (1/|sci|), then the science image."""
    header = header if header is not None else fits.Header()
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(1 / np.abs(science), header, name="WHT"),
            fits.ImageHDU(science, header, name="SCI"),
        ]
    ).writeto(path, overwrite=True)


def test_several_image_hdus_are_not_guessed(tmp_path):
    """Trial: the WHT map, first, was read as the science image with flags 0."""
    science = _image()
    _weight_first(tmp_path / "mef.fits", science)
    result = read_band(tmp_path / "mef.fits", (66, 66))
    assert result.image is None and result.flags == Flag.UNREADABLE
    assert result.reason == (
        "2 image HDUs with pixels (1 'WHT', 2 'SCI') and the layout names none: set `hdu` (an EXTNAME or "
        "index) in the layout or in the band"
    )
    # a science primary image followed by a weight extension is as ambiguous (the fast reader too)
    weight = fits.ImageHDU(1 / science, name="WHT")
    fits.HDUList([fits.PrimaryHDU(science), weight]).writeto(tmp_path / "p.fits")
    assert read_band(tmp_path / "p.fits", (66, 66)).flags == Flag.UNREADABLE


@pytest.mark.parametrize("hdu", ["SCI", "sci ", 2])
def test_the_named_hdu_is_read(tmp_path, hdu):
    science = _image()
    _weight_first(tmp_path / "mef.fits", science)
    result = read_band(tmp_path / "mef.fits", (66, 66), hdu=hdu, position=False)
    assert result.flags == 0
    np.testing.assert_array_equal(result.image, science)


def test_a_named_hdu_that_is_absent_or_empty_is_unreadable_with_why(tmp_path):
    _weight_first(tmp_path / "mef.fits", _image())
    absent = read_band(tmp_path / "mef.fits", (66, 66), hdu="RMS")
    assert absent.flags == Flag.UNREADABLE
    assert absent.reason == "no image HDU 'RMS', which the layout names (image HDUs: 0, 1 'WHT', 2 'SCI')"
    empty = read_band(tmp_path / "mef.fits", (66, 66), hdu=0)
    assert empty.flags == Flag.UNREADABLE and "has no pixels" in empty.reason
    primary = _image(seed=3)  # the primary named on a plain file: the fast reader's file, read as before
    fits.PrimaryHDU(primary).writeto(tmp_path / "plain.fits")
    for hdu in (0, "PRIMARY"):
        np.testing.assert_array_equal(read_band(tmp_path / "plain.fits", (66, 66), hdu=hdu).image, primary)


def test_single_image_files_read_as_before(tmp_path):
    """An empty primary and one extension, a 1 x ny x nx cube, a tile-compressed image (and a table
    beside an image) need no `hdu`."""
    image = _image()
    table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, name="SCI")]).writeto(tmp_path / "ext.fits")
    fits.PrimaryHDU(image[None]).writeto(tmp_path / "cube.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, compression_type="RICE_1")]).writeto(
        tmp_path / "tiled.fits.fz"
    )
    fits.HDUList([fits.PrimaryHDU(image), table]).writeto(tmp_path / "table.fits")
    for name in ("ext.fits", "cube.fits", "tiled.fits.fz", "table.fits"):
        result = read_band(tmp_path / name, (66, 66), position=False)
        reference = fits.getdata(tmp_path / name).reshape(66, 66)
        assert result.flags == 0, name
        np.testing.assert_array_equal(result.image, reference.astype(np.float32))
    tiled = read_band(tmp_path / "tiled.fits.fz", (66, 66), position=False, hdu=1)
    np.testing.assert_array_equal(tiled.image, fits.getdata(tmp_path / "tiled.fits.fz", ext=1))


def _layout(**changes):
    data = yaml.safe_load(EUCLID.to_yaml())
    data.pop("catalog")
    for key, value in changes.items():
        if key == "bands":
            for band, extra in value.items():
                next(b for b in data["bands"] if b["name"] == band).update(extra)
        else:
            data[key] = value
    return parse_layout(data)


def test_layout_names_the_hdu_for_all_bands_or_one_band():
    assert EUCLID.hdu is None and EUCLID.band_hdu("VIS") is None  # shipped layouts unchanged
    layout = _layout(hdu="SCI", bands={"VIS": {"hdu": 1}})
    assert [layout.band_hdu(b) for b in layout.band_names] == [1, "SCI", "SCI", "SCI"]
    assert parse_layout(yaml.safe_load(layout.to_yaml())) == layout
    for bad in (-1, "", True):
        with pytest.raises(LayoutError, match=r"bands\.0\.hdu|hdu"):
            _layout(bands={"VIS": {"hdu": bad}})


def test_ingest_reads_the_layouts_hdu_and_flags_an_ambiguous_file(tmp_path, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    vis = band_file(EUCLID, root, 100001, "VIS")
    with fits.open(vis) as hdus:
        science, header = hdus[0].data.copy(), hdus[0].header.copy()
    for key in ("SIMPLE", "EXTEND", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2"):
        header.remove(key, ignore_missing=True)
    _weight_first(vis, science, header)

    store = tmp_path / "guess.zarr"
    report = ingest(_layout(), root, store, dask_client)
    data = open_store(store)
    row = list(data["object_id"].values).index(100001)
    assert data["band_flags"].values[row, 0] == Flag.UNREADABLE and Flag.UNREADABLE & UNUSABLE
    assert np.isnan(data["vis"].values[row]).all()  # not the weight map
    assert any("2 image HDUs with pixels (1 'WHT', 2 'SCI')" in reason for reason in report.reasons)

    named = _layout(bands={"VIS": {"hdu": "SCI"}})  # the other VIS files have no SCI HDU: flagged, named
    with pytest.raises(ConservationError, match=r"VIS hdu None \(now 'SCI'\)"):  # not ignored
        ingest(named, root, store, dask_client)
    ingest(named, root, tmp_path / "named.zarr", dask_client)
    data = open_store(tmp_path / "named.zarr")
    np.testing.assert_array_equal(data["vis"].values[row, 0], science)
    assert data["band_flags"].values[row, 0] == 0
    other = data["band_flags"].values[[r for r in range(len(IDS)) if r != row], 0]
    assert (other == Flag.UNREADABLE).all()
