"""Reading real FITS variants, and turning bad files into flags instead of errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from pipeline.flags import Flag
from pipeline.sources import read_band
from schemas.layout import CoordinateSpec, load_layout

DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"),)
RAD = (CoordinateSpec(ra="RA", dec="DEC", unit="rad"), CoordinateSpec(ra="CRVAL1", dec="CRVAL2"))


def _image(shape=(66, 66), seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 1e-11).astype(np.float32)


def test_real_challenge_cutouts_read_unchanged(real_samples):
    for name, layout_name in [
        ("imageEUC_VIS-100002.fits", "sglc1-space"),
        ("imageSDSS_R-100002.fits", "sglc1-ground"),
    ]:
        layout = load_layout(layout_name)
        path = real_samples / name
        result = read_band(path, (101, 101), masked_value=layout.masked_value, coordinates=layout.coordinates)
        reference = fits.getdata(path)
        assert result.flags == 0 and result.image.dtype == np.float32
        assert result.image.dtype.byteorder in "=|"  # native order, unlike astropy's >f4
        np.testing.assert_array_equal(result.image, reference.astype(np.float32))
        header = fits.getheader(path)
        assert result.ra_deg == pytest.approx(math.degrees(header["RA"]) % 360)
        assert result.dec_deg == pytest.approx(math.degrees(header["DEC"]))
        assert 1e-12 < np.abs(result.image).max() < 1e-9


def test_scaled_integers_are_unscaled(tmp_path):
    counts = np.arange(66 * 66, dtype=np.int16).reshape(66, 66)
    hdu = fits.PrimaryHDU(counts)
    hdu.header["BSCALE"], hdu.header["BZERO"] = 1e-13, 5e-12
    hdu.writeto(tmp_path / "scaled.fits")
    result = read_band(tmp_path / "scaled.fits", (66, 66))
    np.testing.assert_allclose(result.image, counts * 1e-13 + 5e-12, rtol=1e-6)


def test_big_endian_and_tile_compressed(tmp_path):
    image = _image()
    fits.PrimaryHDU(image.astype(">f4")).writeto(tmp_path / "be.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, compression_type="GZIP_2")]).writeto(
        tmp_path / "tiled.fits"
    )
    # Float tile compression quantises: the reference is what astropy decodes from the file.
    expected = {"be.fits": image, "tiled.fits": fits.getdata(tmp_path / "tiled.fits", ext=1)}
    for name, reference in expected.items():
        result = read_band(tmp_path / name, (66, 66))
        assert result.flags == Flag.NO_COORDINATES
        np.testing.assert_allclose(result.image, reference, rtol=0, atol=1e-20)
    np.testing.assert_allclose(expected["tiled.fits"], image, atol=2e-12)


def test_coordinates_in_degrees_and_radians(tmp_path):
    header = fits.Header({"RA": math.radians(-10.0), "DEC": math.radians(20.0)})
    fits.PrimaryHDU(_image(), header=header).writeto(tmp_path / "rad.fits")
    result = read_band(tmp_path / "rad.fits", (66, 66), coordinates=RAD)
    assert (result.ra_deg, result.dec_deg) == (pytest.approx(350.0), pytest.approx(20.0))
    header = fits.Header({"CRVAL1": 150.5, "CRVAL2": 2.25})
    fits.PrimaryHDU(_image(), header=header).writeto(tmp_path / "wcs.fits")
    result = read_band(tmp_path / "wcs.fits", (66, 66), coordinates=RAD)
    assert (result.ra_deg, result.dec_deg) == (150.5, 2.25)
    assert read_band(tmp_path / "wcs.fits", (66, 66), coordinates=DEG).flags == Flag.NO_COORDINATES


@pytest.mark.parametrize(
    ("make", "flag", "reason"),
    [
        (lambda p: None, Flag.MISSING_FILE, "missing file"),
        (lambda p: p.write_bytes(b""), Flag.UNREADABLE, "empty file"),
        (lambda p: p.write_bytes(b"not a fits file at all" * 200), Flag.UNREADABLE, "not a FITS file"),
        (lambda p: _truncate(p), Flag.TRUNCATED, "truncated file"),
        (
            lambda p: fits.PrimaryHDU(_image((64, 66))).writeto(p),
            Flag.WRONG_SHAPE,
            "shape (64, 66) != (66, 66)",
        ),
        (
            lambda p: fits.PrimaryHDU(np.full((66, 66), np.nan, "f4")).writeto(p),
            Flag.ALL_NONFINITE,
            "all pixels",
        ),
        (
            lambda p: fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU()]).writeto(p),
            Flag.UNREADABLE,
            "no 2-D",
        ),
    ],
)
def test_bad_files_become_flags(tmp_path, make, flag, reason):
    path = tmp_path / "bad.fits"
    make(path)
    result = read_band(path, (66, 66), coordinates=DEG)
    assert result.image is None
    assert result.flags & flag
    assert reason in result.reason


def _truncate(path):
    fits.PrimaryHDU(_image()).writeto(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 8000])


def test_partial_nan_and_masked_pixels_are_kept_as_nan(tmp_path):
    image = _image((101, 101))
    image[0, :5] = np.nan
    image[10:12, 10:12] = 100.0
    fits.PrimaryHDU(image).writeto(tmp_path / "masked.fits")
    result = read_band(tmp_path / "masked.fits", (101, 101), masked_value=100.0)
    assert result.flags == Flag.SOME_NONFINITE | Flag.MASKED_PIXELS | Flag.NO_COORDINATES
    assert np.isnan(result.image).sum() == 5 + 4
    assert np.isfinite(result.image[50, 50])
