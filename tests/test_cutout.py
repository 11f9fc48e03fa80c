"""The store keeps each band's WCS, BUNIT, zero point and pixel scale; ``lenshunt cutout`` gives them back.

Real FITS files written with astropy (full WCS with a rotated CD matrix, BUNIT, MAGZP, a scaled
integer band) and the real challenge cutouts are ingested on a real Dask cluster; the cutout
files must have the input's pixels and a WCS that maps every pixel to the same sky position.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from cutouts import band_file, cutout_image, ingest_real_vis_sample, write_set
from test_catalog_formats import fitsverify

from flows.cli import main
from pipeline.errors import StoreError
from pipeline.store import ingest, open_store, write_cutouts
from pipeline.store.zarr_store import update_attributes
from schemas.layout import load_layout, parse_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [400001, 400002, 400003]
UNITS = {"VIS": "electron/s", "Y": "uJy", "J": "uJy", "H": "uJy"}


def full_header(object_id: int, band_index: int, scale_arcsec: float, shape) -> fits.Header:
    """A TAN WCS rotated by 30 deg, centred off the image centre, with BUNIT and a zero point."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1 + object_id * 1e-4, 2.2 - band_index * 1e-5]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 - 1.5]
    angle = np.radians(30.0)
    scale = scale_arcsec / 3600.0
    wcs.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    header = wcs.to_header()
    for key in [k for k in header if k.startswith(("PC", "CDELT"))]:
        del header[key]
    for i in (1, 2):
        for j in (1, 2):
            header[f"CD{i}_{j}"] = wcs.wcs.cd[i - 1, j - 1]
    header["RA"], header["DEC"] = wcs.wcs.crval
    header["BUNIT"] = UNITS[EUCLID.bands[band_index].name]
    header["MAGZP"] = (24.5 + band_index, "AB zero point")
    header["HISTORY"] = "not kept"
    return header


@pytest.fixture(scope="module")
def wcs_set(tmp_path_factory):
    """Three objects; the first two with full headers, the second's Y band as scaled int16."""
    root = tmp_path_factory.mktemp("wcs")
    source = write_set(EUCLID, root / "src", IDS)
    for object_id in IDS[:2]:
        for band_index, band in enumerate(EUCLID.bands):
            path = band_file(EUCLID, source, object_id, band.name)
            header = full_header(object_id, band_index, band.pixel_scale_arcsec, band.shape)
            image = cutout_image(object_id, band_index, band.shape)
            if object_id == IDS[1] and band.name == "Y":
                hdu = fits.PrimaryHDU(image, header=header)
                hdu.scale("int16", bscale=1e-13, bzero=0.0)
            else:
                image[5, 7] = np.nan
                hdu = fits.PrimaryHDU(image, header=header)
            hdu.writeto(path, overwrite=True)
    for band in EUCLID.bands:  # the third object: units, but no zero point and CDELT, no CD matrix
        fits.setval(band_file(EUCLID, source, IDS[2], band.name), "BUNIT", value=UNITS[band.name])
    return source


@pytest.fixture(scope="module")
def wcs_store(wcs_set, tmp_path_factory, dask_client):
    store = tmp_path_factory.mktemp("wcs-store") / "store.zarr"
    ingest(EUCLID, wcs_set, store, dask_client)
    return store


def assert_same_sky(written, original) -> None:
    """Same WCS: every pixel centre (and a far corner) maps to the same sky position."""
    w_out, w_in = WCS(written), WCS(original)
    ny, nx = original["NAXIS2"], original["NAXIS1"]
    y, x = np.mgrid[0:ny:7, 0:nx:7]
    x = np.r_[x.ravel(), nx - 1, -0.5]
    y = np.r_[y.ravel(), ny - 1, -0.5]
    np.testing.assert_array_equal(w_out.all_pix2world(x, y, 0), w_in.all_pix2world(x, y, 0))
    assert w_out.wcs.compare(w_in.wcs)


def assert_checksums(files) -> None:
    """Each file has CHECKSUM and DATASUM, and astropy and ``fitscheck`` verify them (trial: fitscheck
    said MISSING, where the catalogs have them)."""
    from astropy.io.fits.scripts import fitscheck

    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # astropy warns of a checksum or datasum that does not match
            with fits.open(path, checksum=True) as hdus:
                assert "CHECKSUM" in hdus[0].header and "DATASUM" in hdus[0].header, path
    assert fitscheck.main([str(path) for path in files]) == 0
    damaged = bytearray(files[0].read_bytes())
    damaged[-100] ^= 0xFF  # a flipped pixel byte is caught
    files[0].write_bytes(bytes(damaged))
    assert fitscheck.main([str(files[0])]) != 0


def test_store_keeps_header_wcs_units_zero_points_and_pixel_scales(wcs_store):
    data = open_store(wcs_store)
    assert data.attrs["lenshunt_store_schema"] == 2
    assert data["vis"].attrs["units"] == "electron/s"
    assert data["nir"].attrs["units"] == "uJy"
    assert data["nir"].attrs["band_units"] == {"Y": "uJy", "J": "uJy", "H": "uJy"}
    assert data.attrs["band_units"] == UNITS
    assert data["vis_pixel_scale"].values.tolist() == [0.1]
    assert float(data["nir_pixel_scale"].sel(nir_band="J")) == 0.3
    np.testing.assert_allclose(data["band_zero_point"].values[:2], [[24.5, 25.5, 26.5, 27.5]] * 2)
    assert np.isnan(data["band_zero_point"].values[2]).all()  # the third object's files have none
    np.testing.assert_allclose(data["band_pixel_scale"].values, [[0.1, 0.3, 0.3, 0.3]] * 3, rtol=1e-6)
    assert (
        data["band_zero_point"].attrs["units"] == "mag"
        and data["band_pixel_scale"].attrs["units"] == "arcsec"
    )


def test_cutout_files_have_the_input_pixels_and_wcs(wcs_set, wcs_store, tmp_path):
    result = write_cutouts(wcs_store, IDS[1], tmp_path / "out")
    assert sorted(result.files) == ["H", "J", "VIS", "Y"] and result.skipped == {}
    for band in EUCLID.bands:
        original = band_file(EUCLID, wcs_set, IDS[1], band.name)
        with fits.open(result.files[band.name]) as written, fits.open(original) as source:
            raw = fits.getdata(original, do_not_scale_image_data=True).astype(np.float64)
            scale, zero = source[0].header.get("BSCALE", 1.0), source[0].header.get("BZERO", 0.0)
            np.testing.assert_array_equal(written[0].data, (raw * scale + zero).astype(np.float32))
            assert written[0].data.dtype == np.dtype(">f4")
            assert_same_sky(written[0].header, source[0].header)
            for key in ("BUNIT", "MAGZP", "RA", "DEC"):
                assert written[0].header[key] == source[0].header[key]
            assert "HISTORY" not in written[0].header
            assert written[0].header["OBJECT"] == str(IDS[1]) and written[0].header["LHBAND"] == band.name
    assert np.isnan(fits.getdata(result.files["VIS"])[5, 7])
    assert_checksums(list(result.files.values()))
    with pytest.raises(StoreError, match="exists; pass --overwrite"):
        write_cutouts(wcs_store, IDS[1], tmp_path / "out", bands=["VIS"])


def test_cutout_command(wcs_store, tmp_path, capsys):
    assert main(["cutout", str(wcs_store), str(IDS[0]), "--out", str(tmp_path), "--bands", "VIS", "H"]) == 0
    printed = capsys.readouterr().out
    assert f"{IDS[0]}_VIS.fits" in printed and f"{IDS[0]}_H.fits" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{IDS[0]}_H.fits", f"{IDS[0]}_VIS.fits"]
    assert main(["cutout", str(wcs_store), "999", "--out", str(tmp_path)]) == 1
    assert "object 999 is not in" in capsys.readouterr().err
    assert main(["cutout", str(wcs_store), str(IDS[0]), "--out", str(tmp_path), "--bands", "K"]) == 1
    assert "unknown band(s) ['K']" in capsys.readouterr().err


def test_cutout_command_takes_several_ids_and_writes_the_others_past_a_bad_one(wcs_store, tmp_path, capsys):
    """Trial: ``lenshunt cutout STORE ID1 ID2`` was refused (one id only) and pointed at
    ``lenshunt --help``. Several ids write each object's files; an id not in the store is one error
    line, the others are written, and the exit status says one failed."""
    argv = ["cutout", str(wcs_store), str(IDS[0]), str(IDS[1]), str(IDS[0]), "--out", str(tmp_path)]
    assert main([*argv, "--bands", "VIS"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"{IDS[0]} VIS    {tmp_path / f'{IDS[0]}_VIS.fits'}",
        f"{IDS[1]} VIS    {tmp_path / f'{IDS[1]}_VIS.fits'}",
    ]
    out = tmp_path / "more"
    assert main(["cutout", str(wcs_store), "999", str(IDS[2]), "--out", str(out), "--bands", "H"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("lenshunt cutout: error: object 999 is not in "), captured.err
    assert sorted(p.name for p in out.iterdir()) == [f"{IDS[2]}_H.fits"]


def test_cutouts_are_not_written_inside_a_store(wcs_store, capsys):
    """Trial: ``--out STORE/cut`` was accepted, and every later read of the store warned that ``cut``
    is not part of its Zarr hierarchy (``score``, ``run`` and ``ingest`` refuse such paths)."""
    for out in (wcs_store / "cut", wcs_store):
        assert main(["cutout", str(wcs_store), str(IDS[0]), "--out", str(out)]) == 1
        assert "choose a directory outside any store" in capsys.readouterr().err
    assert not (wcs_store / "cut").exists()


def test_real_challenge_cutout_round_trip(real_samples, tmp_path, dask_client):
    target, _ = ingest_real_vis_sample(real_samples, tmp_path, dask_client)
    data = open_store(tmp_path / "s.zarr")
    assert data["band_pixel_scale"].values[0, 0] == pytest.approx(0.1, rel=1e-6)
    result = write_cutouts(tmp_path / "s.zarr", 100002, tmp_path / "out")
    with fits.open(result.files["VIS"]) as written, fits.open(target) as original:
        np.testing.assert_array_equal(written[0].data, original[0].data)
        assert_same_sky(written[0].header, original[0].header)
        assert written[0].header["RA"] == original[0].header["RA"]  # radians, as in the input
        for key in ("NX", "NY", "HIERARCH range x"):  # the field's size and width, true of the whole image
            assert written[0].header.cards[key].image == original[0].header.cards[key].image, key
        assert written[0].header["NX"] == written[0].data.shape[1]
    check = fitsverify(result.files["VIS"])
    assert check.returncode == 0 and "0 warning(s) and 0 error(s)" in check.stdout, check.stdout
    assert_checksums([result.files["VIS"]])


def test_a_band_without_pixels_is_reported_not_written(wcs_set, tmp_path, dask_client):
    source = tmp_path / "src"
    write_set(EUCLID, source, [400010])
    band_file(EUCLID, source, 400010, "J").write_bytes(b"junk" * 100)
    ingest(EUCLID, source, tmp_path / "s.zarr", dask_client)
    result = write_cutouts(tmp_path / "s.zarr", 400010, tmp_path / "out")
    assert sorted(result.files) == ["H", "VIS", "Y"]
    assert result.skipped == {"J": "no pixels in the store: UNREADABLE"}


def test_a_schema_1_store_is_refused_with_how_to_fix(wcs_set, tmp_path, dask_client):
    ingest(EUCLID, wcs_set, tmp_path / "old.zarr", dask_client)
    update_attributes(tmp_path / "old.zarr", {"lenshunt_store_schema": 1})
    with pytest.raises(StoreError, match=r"schema 1 .*reads schema 2 only.*Re-ingest.*lenshunt ingest"):
        open_store(tmp_path / "old.zarr")


def test_a_band_without_files_is_in_band_units_as_no_file_read(tmp_path, dask_client):
    """Trial: the store's ``band_units`` attribute left out a band no file was found for, while the
    image's ``band_units`` named every band; now every band of the layout is there, one without a file
    read as ``(no file read)``, no unit (nor the image's ``units``), until an ingest reads one."""
    from pipeline.store.zarr_store import read_attributes

    ids = [800000, 800001, 800002]
    source = write_set(EUCLID, tmp_path / "src", ids)
    for object_id in ids:  # no H file at all
        band_file(EUCLID, source, object_id, "H").unlink()
    store = tmp_path / "s.zarr"
    ingest(EUCLID, source, store, dask_client)
    assert read_attributes(store).band_units == {"VIS": "", "Y": "", "J": "", "H": "(no file read)"}
    data = open_store(store)
    assert data.attrs["band_units"] == {"VIS": "", "Y": "", "J": "", "H": "(no file read)"}
    assert data["nir"].attrs["band_units"] == {"Y": "", "J": "", "H": "(no file read)"}
    assert data["nir"].attrs["units"].startswith("per band, see band_units")
    write_set(EUCLID, source, ids)  # the H files come late: the next ingest reads them
    ingest(EUCLID, source, store, dask_client)
    assert read_attributes(store).band_units == {"VIS": "", "Y": "", "J": "", "H": ""}


def test_band_units_that_differ_between_ingests_are_marked_mixed(wcs_set, tmp_path, dask_client):
    from pipeline.store.header_columns import record_band_units

    ingest(EUCLID, wcs_set, tmp_path / "s.zarr", dask_client)
    record_band_units(tmp_path / "s.zarr", {"VIS": ["", "nanomaggy"]})
    data = open_store(tmp_path / "s.zarr")
    assert data.attrs["band_units"]["VIS"] == "mixed: electron/s, nanomaggy, (none)"
    assert data["vis"].attrs["band_units"]["VIS"].startswith("mixed")
    assert data["vis"].attrs["units"].startswith("per band, see band_units")


def test_cutout_pixels_are_the_stores_float32_not_the_inputs(tmp_path, dask_client):
    """What the README says of cutout pixels: float64 and large integers rounded to float32, null,
    infinite and out-of-range pixels NaN (trial: it said the data "equal the input's")."""
    masked = parse_layout({**EUCLID.model_dump(mode="json"), "name": "masked", "masked_value": 7}, source="t")
    source = write_set(EUCLID, tmp_path / "src", [400020])
    vis = EUCLID.band("VIS")
    wide = cutout_image(400020, 0, vis.shape).astype(np.float64)
    wide[0, :4] = [np.pi, 1e39, np.inf, 7.0]
    fits.PrimaryHDU(wide).writeto(band_file(EUCLID, source, 400020, "VIS"), overwrite=True)
    ny, nx = EUCLID.band("Y").shape
    counts = np.arange(ny * nx, dtype=np.int32).reshape(ny, nx) + 16_777_000
    counts[0, :2] = [16_777_217, -99]
    hdu = fits.PrimaryHDU(counts)
    hdu.header["BLANK"] = -99
    hdu.writeto(band_file(EUCLID, source, 400020, "Y"), overwrite=True)
    ingest(masked, source, tmp_path / "s.zarr", dask_client)
    result = write_cutouts(tmp_path / "s.zarr", 400020, tmp_path / "out", bands=["VIS", "Y"])
    # how many pixels are NaN, and why (trial: a masked value 100 came back NaN without a word)
    header_vis, header_y = fits.getheader(result.files["VIS"]), fits.getheader(result.files["Y"])
    assert header_vis["LHNNAN"] == 3 and header_y["LHNNAN"] == 1
    why = " ".join(str(header_vis["COMMENT"]).split())
    assert "not finite or beyond float32's range, or equal to the layout's masked value 7;" in why
    written_vis, written_y = fits.getdata(result.files["VIS"]), fits.getdata(result.files["Y"])
    assert written_vis.dtype == np.dtype(">f4") and written_y.dtype == np.dtype(">f4")
    assert written_vis[0, 0] == np.float32(np.pi) and float(written_vis[0, 0]) != np.pi
    assert np.isnan(written_vis[0, 1:4]).all()  # beyond float32's range; inf; the masked value
    np.testing.assert_array_equal(written_vis[1:], wide[1:].astype(np.float32))
    assert written_y[0, 0] == 16_777_216.0 and np.isnan(written_y[0, 1])  # 2**24 + 1 rounded; BLANK
    np.testing.assert_array_equal(written_y[1:], counts[1:].astype(np.float32))


def test_cutout_files_write_the_id_with_the_layouts_digits_as_the_inputs_do(tmp_path, dask_client, capsys):
    """Fresh-user trial: inputs ``imageEUC_VIS-000042.fits`` (object 42) gave ``42_VIS.fits``."""
    source = write_set(EUCLID, tmp_path / "src", [42, 1234567])
    assert band_file(EUCLID, source, 42, "VIS").name == "imageEUC_VIS-000042.fits"
    ingest(EUCLID, source, tmp_path / "s.zarr", dask_client)
    out = tmp_path / "out"
    assert (
        main(["cutout", str(tmp_path / "s.zarr"), "42", "1234567", "--out", str(out), "--bands", "VIS"]) == 0
    )
    assert f"{out / '000042_VIS.fits'}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["000042_VIS.fits", "1234567_VIS.fits"]  # wider: as is
    assert fits.getheader(out / "000042_VIS.fits")["OBJECT"] == "42"
