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
    assert absent.reason == (
        "no image HDU 'RMS', which the layout names, and 2 image HDUs with pixels (1 'WHT', 2 'SCI'): "
        "none is guessed"
    )
    empty = read_band(tmp_path / "mef.fits", (66, 66), hdu=0)
    assert empty.flags == Flag.UNREADABLE
    assert empty.reason == "image HDU 0 PRIMARY, which the layout names, has no pixels"
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

    named = _layout(bands={"VIS": {"hdu": "SCI"}})
    with pytest.raises(ConservationError, match=r"VIS hdu None \(now 'SCI'\)"):  # not ignored
        ingest(named, root, store, dask_client)
    ingest(named, root, tmp_path / "named.zarr", dask_client)
    data = open_store(tmp_path / "named.zarr")
    np.testing.assert_array_equal(data["vis"].values[row, 0], science)
    assert (data["band_flags"].values[:, 0] == 0).all()  # the other VIS files, one image each: read


def test_a_mixed_delivery_is_read_with_one_layout(tmp_path, dask_client):
    """Trial: with `hdu: SCI` on VIS, the one WHT+SCI file was read and the 9 plain VIS files (no SCI
    HDU) were UNREADABLE "(image HDUs: 0)"; a file with one image has nothing to choose between."""
    ids = list(range(100000, 100010))
    root = write_set(EUCLID, tmp_path / "src", ids)
    plain = {i: fits.getdata(band_file(EUCLID, root, i, "VIS")) for i in ids}
    mef = band_file(EUCLID, root, 100003, "VIS")
    with fits.open(mef) as hdus:
        header = hdus[0].header.copy()
    for key in ("SIMPLE", "EXTEND", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2"):
        header.remove(key, ignore_missing=True)
    science = _image(EUCLID.band("VIS").shape, seed=7)
    _weight_first(mef, science, header)

    report = ingest(_layout(bands={"VIS": {"hdu": "SCI"}}), root, tmp_path / "mixed.zarr", dask_client)
    data = open_store(tmp_path / "mixed.zarr")
    assert not any("HDU" in reason for reason in report.reasons), report.reasons
    assert (data["band_flags"].values[:, 0] == 0).all()
    for row, object_id in enumerate(data["object_id"].values):
        expected = science if object_id == 100003 else plain[int(object_id)]
        np.testing.assert_array_equal(data["vis"].values[row, 0], expected)


def _hdu_files(tmp_path):
    """Plain, tile-compressed and gzip files of one image, and ones of several images."""
    image, weight, error = _image(), _image(seed=1), _image(seed=2)
    files = {
        "plain.fits": [fits.PrimaryHDU(image)],
        "ext.fits": [fits.PrimaryHDU(), fits.ImageHDU(image, name="IMG")],
        "tiled.fits.fz": [fits.PrimaryHDU(), fits.CompImageHDU(image, compression_type="RICE_1")],
        "plain.fits.gz": [fits.PrimaryHDU(image)],
        "whterr.fits": [
            fits.PrimaryHDU(),
            fits.ImageHDU(weight, name="WHT"),
            fits.ImageHDU(error, name="ERR"),
        ],
        "whterr.fits.fz": [
            fits.PrimaryHDU(),
            fits.CompImageHDU(weight, name="WHT", compression_type="RICE_1"),
            fits.CompImageHDU(error, name="ERR", compression_type="RICE_1"),
        ],
        "primary_wht.fits": [fits.PrimaryHDU(image), fits.ImageHDU(weight, name="WHT")],
    }
    for name, hdus in files.items():
        fits.HDUList(hdus).writeto(tmp_path / name)
    return image


def _astropy_only(monkeypatch):
    """Every file read by astropy: neither the fast reader nor fitsio."""
    from pipeline.sources import fits_io

    def refuse(*args, **kwargs):
        raise fits_io.NotSimpleImageError("test: not this reader")

    monkeypatch.setattr(fits_io, "_read_fast", refuse)
    monkeypatch.setattr(fits_io, "_read_fitsio", refuse)


@pytest.mark.parametrize("reader", ["default", "astropy"])
@pytest.mark.parametrize("hdu", ["SCI", 1, 3, "PRIMARY", None])
def test_a_file_of_one_image_is_read_whatever_hdu_the_layout_names(tmp_path, monkeypatch, reader, hdu):
    image = _hdu_files(tmp_path)
    if reader == "astropy":
        _astropy_only(monkeypatch)
    for name in ("plain.fits", "ext.fits", "tiled.fits.fz", "plain.fits.gz"):
        result = read_band(tmp_path / name, (66, 66), hdu=hdu, position=False)
        if hdu == "PRIMARY" and name in ("ext.fits", "tiled.fits.fz"):  # named, there, and empty
            assert result.flags == Flag.UNREADABLE
            assert result.reason == "image HDU 0 PRIMARY, which the layout names, has no pixels"
            continue
        assert result.flags == 0, (name, result.reason)
        stored = image if "tiled" not in name else fits.getdata(tmp_path / name)  # RICE quantizes floats
        np.testing.assert_array_equal(result.image, stored)


@pytest.mark.parametrize("reader", ["default", "astropy"])
def test_several_images_without_the_named_one_stay_unreadable_with_readable_reasons(
    tmp_path, monkeypatch, reader
):
    _hdu_files(tmp_path)
    if reader == "astropy":
        _astropy_only(monkeypatch)
    several = "2 image HDUs with pixels (1 'WHT', 2 'ERR')"
    for name in ("whterr.fits", "whterr.fits.fz"):
        sci = read_band(tmp_path / name, (66, 66), hdu="SCI")
        assert sci.flags == Flag.UNREADABLE and sci.image is None
        assert sci.reason == f"no image HDU 'SCI', which the layout names, and {several}: none is guessed"
        index = read_band(tmp_path / name, (66, 66), hdu=5)
        assert index.reason == f"no image HDU 5, which the layout names, and {several}: none is guessed"
        none = read_band(tmp_path / name, (66, 66))
        assert none.reason.startswith(f"{several} and the layout names none: set `hdu`")
    # the primary, without EXTNAME, named as such (it was "0", as if no HDU)
    primary = read_band(tmp_path / "primary_wht.fits", (66, 66), hdu="SCI")
    assert primary.flags == Flag.UNREADABLE
    assert primary.reason == (
        "no image HDU 'SCI', which the layout names, and 2 image HDUs with pixels (0 PRIMARY, 1 'WHT'): "
        "none is guessed"
    )
    assert read_band(tmp_path / "primary_wht.fits", (66, 66)).reason.startswith(
        "2 image HDUs with pixels (0 PRIMARY, 1 'WHT') and the layout names none"
    )


def test_the_fast_reader_reads_a_plain_file_whatever_hdu_the_layout_names(tmp_path, monkeypatch):
    """Its one kind of file, a lone primary image, is what the general readers would pick."""
    from pipeline.sources import fits_io

    image = _hdu_files(tmp_path)
    general = {hdu: read_band(tmp_path / "plain.fits", (66, 66), hdu=hdu) for hdu in ("SCI", 2, 0)}

    def refuse(*args, **kwargs):
        raise AssertionError("a general reader was asked")

    monkeypatch.setattr(fits_io, "_read_fitsio", refuse)
    monkeypatch.setattr(fits_io, "_read_astropy", refuse)
    for hdu, expected in general.items():
        fast = read_band(tmp_path / "plain.fits", (66, 66), hdu=hdu)
        assert fast.flags == expected.flags == Flag.NO_COORDINATES  # the file has no WCS
        np.testing.assert_array_equal(fast.image, image)
        np.testing.assert_array_equal(expected.image, image)


def test_a_primary_only_file_without_pixels_is_no_image(tmp_path):
    """An empty primary alone, with `hdu` naming an HDU it lacks: no image, as with none named."""
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    for hdu in (None, "SCI", 1):
        result = read_band(tmp_path / "empty.fits", (66, 66), hdu=hdu)
        assert (result.flags, result.reason) == (Flag.UNREADABLE, "no image HDU"), hdu
    named = read_band(tmp_path / "empty.fits", (66, 66), hdu=0)
    assert named.reason == "image HDU 0 PRIMARY, which the layout names, has no pixels"


@pytest.mark.parametrize("reader", ["default", "astropy"])
def test_a_weight_map_delivered_alone_is_not_read_for_the_science_image(tmp_path, monkeypatch, reader):
    """Review: a file whose only image is a ``WHT`` map was read as ``SCI`` when the layout named it."""
    if reader == "astropy":
        _astropy_only(monkeypatch)
    weight = _image(seed=1)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(weight, name="WHT")]).writeto(tmp_path / "wht.fits")
    alone = read_band(tmp_path / "wht.fits", (66, 66), hdu="SCI")
    assert alone.flags == Flag.UNREADABLE and alone.image is None
    assert alone.reason == (
        "the only image HDU with pixels is 1 'WHT', not 'SCI', which the layout names: none is guessed"
    )
    assert read_band(tmp_path / "wht.fits", (66, 66), hdu="wht", position=False).flags == 0  # named: read
    assert (
        read_band(tmp_path / "wht.fits", (66, 66), hdu=1, position=False).flags == 0
    )  # an index: no content
