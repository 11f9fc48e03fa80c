"""A celestial WCS that is there but unusable is flagged BAD_WCS, and never written back to a cutout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from cutouts import band_file, sky, write_set
from test_catalog_formats import fitsverify

from pipeline.flags import UNUSABLE, Flag, documentation
from pipeline.sources import read_band
from pipeline.store import ingest, open_store, write_cutouts
from schemas.layout import CoordinateSpec, load_layout

EUCLID = load_layout("euclid-sglc2")
DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"), CoordinateSpec(ra="CRVAL1", dec="CRVAL2"))
IDS = [500001, 500002]


def _header(**cards) -> fits.Header:
    header = fits.Header()
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 33.5, "CRPIX2": 33.5})
    header.update({"CRVAL1": 150.0, "CRVAL2": 2.0, "CDELT1": -8.3e-5, "CDELT2": 8.3e-5})
    for key, value in cards.items():
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = value
    return header


def _write(path, header):
    image = (np.random.default_rng(1).standard_normal((66, 66)) * 1e-11).astype(np.float32)
    fits.PrimaryHDU(image, header).writeto(path, overwrite=True)


@pytest.mark.parametrize(
    ("cards", "defect"),
    [
        (  # the trial's file
            {"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CDELT1": 0.0, "CDELT2": 0.0},
            "unknown projection 'XYZ' in CTYPE1 'RA---XYZ'",
        ),
        ({"CDELT1": 0.0}, "a singular pixel matrix (CDELT1 = 0)"),
        (
            {"CD1_1": 1e-5, "CD1_2": 2e-5, "CD2_1": 1e-5, "CD2_2": 2e-5},
            "a singular pixel matrix (determinant 0)",
        ),
        ({"CTYPE2": "DEC--SIN"}, "projections differ: CTYPE1 'RA---TAN', CTYPE2 'DEC--SIN'"),
        ({"CTYPE2": "LINEAR"}, "CTYPE1 'RA---TAN' and CTYPE2 'LINEAR' are not a celestial pair"),
        ({"RADESYS": "XYZ"}, "unknown frame RADESYS 'XYZ'"),
    ],
)
def test_an_unusable_wcs_is_flagged_and_the_position_taken_from_the_cards(tmp_path, cards, defect):
    path = tmp_path / "bad-wcs.fits"
    _write(path, _header(RA=150.25, DEC=2.5, **cards))
    result = read_band(path, (66, 66), coordinates=DEG)
    assert result.flags == Flag.BAD_WCS and not Flag.BAD_WCS & UNUSABLE and result.image is not None
    assert f"unusable WCS: {defect}" in result.extra_reasons
    assert (result.ra_deg, result.dec_deg) == (150.25, 2.5)
    # without position cards: no position, and the reason names the defect, not "no celestial WCS"
    _write(path, _header(**cards))
    result = read_band(path, (66, 66), coordinates=DEG)
    assert result.flags == Flag.BAD_WCS | Flag.NO_COORDINATES and math.isnan(result.ra_deg)
    assert defect in result.position_problem
    assert "BAD_WCS" in documentation()


def test_a_wcs_astropy_cannot_evaluate_is_flagged_when_the_position_needs_it(tmp_path):
    _write(tmp_path / "pole.fits", _header(CRVAL2=95.0))  # beyond the pole: wcslib refuses it
    result = read_band(tmp_path / "pole.fits", (66, 66), coordinates=DEG)
    assert result.flags == Flag.BAD_WCS | Flag.NO_COORDINATES
    assert "unusable WCS: an invalid WCS (InvalidTransformError)" in result.extra_reasons


def test_usable_and_absent_wcs_and_the_real_samples_are_not_flagged(tmp_path, real_samples):
    partial_cd = {"CDELT1": None, "CDELT2": None, "CD1_1": -8.3e-5, "CD2_2": 8.3e-5}  # CD1_2, CD2_1: 0
    for cards in ({}, partial_cd, {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP"}):
        _write(tmp_path / "ok.fits", _header(**cards))
        assert read_band(tmp_path / "ok.fits", (66, 66), coordinates=DEG).flags == 0, cards
    _write(
        tmp_path / "linear.fits", fits.Header({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "RA": 1.0, "DEC": 2.0})
    )
    assert read_band(tmp_path / "linear.fits", (66, 66), coordinates=DEG).flags == 0
    for name, layout in [
        ("imageEUC_VIS-100002.fits", "sglc1-space"),
        ("imageSDSS_R-100002.fits", "sglc1-ground"),
    ]:
        spec = load_layout(layout)
        result = read_band(
            real_samples / name,
            (101, 101),
            masked_value=spec.masked_value,
            coordinates=spec.coordinates,
            wcs_position=spec.wcs_position,
        )
        # their dummy WCS at (0, 0), 280" from RA/DEC, is a usable WCS, which the layouts declare a
        # placeholder: not compared with the cards (POSITION_MISMATCH where a layout does not)
        assert result.flags == 0


def test_ingest_flags_the_band_and_cutout_leaves_the_broken_wcs_out(tmp_path, dask_client):
    """Trial: flags 0, band_pixel_scale NaN, and `lenshunt cutout` wrote CDELT1 = 0 back (fitsverify
    failed the cutout)."""
    root = write_set(EUCLID, tmp_path / "src", IDS)
    vis = band_file(EUCLID, root, IDS[0], "VIS")
    with fits.open(vis) as hdus:
        image, header = hdus[0].data.copy(), hdus[0].header.copy()
    for key in ("RA", "DEC", "CRVAL1", "CRVAL2"):  # the position must come from the Y band's cards
        header.remove(key)
    header.update({"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CDELT1": 0.0, "CDELT2": 0.0, "BUNIT": "Jy"})
    fits.PrimaryHDU(image, header).writeto(vis, overwrite=True)
    store = tmp_path / "store.zarr"
    report = ingest(EUCLID, root, store, dask_client)
    data = open_store(store)
    row = list(data["object_id"].values).index(IDS[0])
    band_flags = data["band_flags"].values[row] & ~Flag.NO_COORDINATES  # VIS, searched first, had none
    assert band_flags.tolist() == [Flag.BAD_WCS, 0, 0, 0]
    assert int(data["flags"].values[row]) == Flag.BAD_WCS
    assert (data["ra"].values[row], data["dec"].values[row]) == pytest.approx(sky(IDS[0]))
    assert report.reasons["VIS: unusable WCS: unknown projection 'XYZ' in CTYPE1 'RA---XYZ'"] == 1

    written = write_cutouts(store, IDS[0], tmp_path / "out", bands=["VIS"])
    assert "unusable" in written.notes["VIS"]
    with fits.open(written.files["VIS"]) as hdus:
        out = hdus[0].header
        np.testing.assert_array_equal(hdus[0].data, image)
    assert not any(key in out for key in ("CTYPE1", "CTYPE2", "CDELT1", "CDELT2", "CRPIX1"))
    assert out["BUNIT"] == "Jy" and "celestial WCS is left out" in str(out["COMMENT"])
    check = fitsverify(written.files["VIS"])
    assert "0 error" in check.stdout, check.stdout
