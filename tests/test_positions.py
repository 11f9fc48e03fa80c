"""Sky positions: position cards first, else the centre of the celestial WCS, in ICRS."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS, Sip

from pipeline.flags import Flag
from pipeline.sources import read_band, sky_position, wcs_centre
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
SGLC1 = load_layout("sglc1-space")


def _tile_wcs(crval=(150.0, 2.0), scale_deg=2e-3, shape=(2000, 2000)) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(crval)
    wcs.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    wcs.wcs.cdelt = [-scale_deg, scale_deg]
    wcs.wcs.radesys = "ICRS"
    return wcs


@pytest.mark.parametrize(("size", "sip"), [(101, False), (66, False), (101, True)])
def test_cutout2d_positions_are_the_centre_through_the_wcs(tmp_path, size, sip):
    tile = np.random.default_rng(1).standard_normal((2000, 2000)).astype(np.float32)
    tile_wcs = _tile_wcs()
    if sip:  # a distorted tile: the centre must go through the distortion too
        tile_wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        a, b = np.zeros((3, 3)), np.zeros((3, 3))
        a[2, 0], b[0, 2] = 2e-5, -3e-5
        tile_wcs.sip = Sip(a, b, None, None, tile_wcs.wcs.crpix)
    expected, found = [], []
    for index, position in enumerate([(200, 300), (1700, 250), (1000, 1000), (450, 1800)]):
        cutout = Cutout2D(tile, position, size, wcs=tile_wcs)
        path = tmp_path / f"imageEUC_VIS-{index}.fits"
        fits.PrimaryHDU(cutout.data, header=cutout.wcs.to_header(relax=True)).writeto(path)
        assert fits.getheader(path)["CRVAL1"] == 150.0  # the tile's CRVAL, shifted CRPIX
        result = read_band(path, (size, size), coordinates=EUCLID.coordinates)
        centre = cutout.wcs.pixel_to_world(*cutout.center_cutout).icrs
        assert result.flags == 0
        assert result.ra_deg == pytest.approx(centre.ra.deg, abs=1e-6)
        assert result.dec_deg == pytest.approx(centre.dec.deg, abs=1e-6)
        expected.append((centre.ra.deg, centre.dec.deg))
        found.append((result.ra_deg, result.dec_deg))
    assert len({(round(ra, 3), round(dec, 3)) for ra, dec in found}) == 4  # four objects, four places
    # ...up to 2 degrees from CRVAL, where reading CRVAL put all four.
    assert max(abs(ra - 150.0) + abs(dec - 2.0) for ra, dec in expected) > 1.5


@pytest.mark.parametrize(
    ("cards", "frame"),
    [
        ({"CTYPE1": "GLON-TAN", "CTYPE2": "GLAT-TAN"}, "galactic"),
        ({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "RADESYS": "FK5", "EQUINOX": 2000.0}, "fk5"),
        ({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "RADESYS": "FK4", "EQUINOX": 1950.0}, "fk4"),
        ({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "EQUINOX": 1950.0}, "fk4"),
        ({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"}, "icrs"),
    ],
)
def test_wcs_position_is_converted_from_the_declared_frame_to_icrs(tmp_path, cards, frame):
    header = fits.Header({**cards, "CRVAL1": 120.0, "CRVAL2": -30.0, "CRPIX1": 10.0, "CRPIX2": 70.0})
    header.update({"CDELT1": -1e-3, "CDELT2": 1e-3})
    fits.PrimaryHDU(np.ones((101, 101), np.float32), header=header).writeto(tmp_path / "f.fits")
    result = read_band(tmp_path / "f.fits", (101, 101), coordinates=EUCLID.coordinates)
    wcs = WCS(header)
    lng, lat = wcs.pixel_to_world_values(50, 50)
    kwargs = {"equinox": f"B{cards['EQUINOX']}"} if frame == "fk4" else {}
    if frame == "fk5":
        kwargs = {"equinox": "J2000"}
    truth = SkyCoord(lng, lat, unit="deg", frame=frame, **kwargs).icrs
    assert result.ra_deg == pytest.approx(truth.ra.deg, abs=1e-6)
    assert result.dec_deg == pytest.approx(truth.dec.deg, abs=1e-6)
    if frame != "icrs":
        assert abs(result.ra_deg - float(lng)) + abs(result.dec_deg - float(lat)) > 5e-6  # FK5: ~20 mas


def test_centred_shortcut_equals_astropy(tmp_path):
    """The CRVAL shortcut for a centred ICRS WCS gives what astropy.wcs gives."""
    for shape in [(66, 66), (200, 200), (101, 101), (40, 61)]:
        wcs = _tile_wcs(crval=(359.99, -89.5), scale_deg=1e-4, shape=shape)
        wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
        header = wcs.to_header()
        ra, dec, problem = sky_position(header, EUCLID.coordinates, shape)
        assert problem is None
        assert (ra, dec) == pytest.approx(wcs_centre(header, shape), abs=1e-9)


def test_position_cards_come_before_the_wcs(real_samples):
    """The first challenge's RA/DEC (radians) are the objects' positions; its WCS has CRVAL 0, 0."""
    path = real_samples / "imageEUC_VIS-100002.fits"
    header = fits.getheader(path)
    assert (header["CRVAL1"], header["CRVAL2"]) == (0.0, 0.0)
    result = read_band(path, (101, 101), coordinates=SGLC1.coordinates)
    assert result.ra_deg == pytest.approx(np.degrees(header["RA"]) % 360, abs=1e-12)
    assert result.dec_deg == pytest.approx(np.degrees(header["DEC"]), abs=1e-12)


@pytest.mark.parametrize(
    ("cards", "problem", "bad_wcs"),
    [
        ({}, "no RA,DEC cards and no celestial WCS", 0),
        ({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CRVAL1": 1.0}, "no celestial WCS", 0),
        (  # a WCS beyond the pole is unusable, and flagged so (BAD_WCS)
            {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL2": 95.0, "CDELT1": 1.0},
            "RA,DEC",
            Flag.BAD_WCS,
        ),
    ],
)
def test_no_usable_position_is_flagged_with_a_reason(tmp_path, cards, problem, bad_wcs):
    image = np.arange(66 * 66, dtype=np.float32).reshape(66, 66)  # an image, not a blank filler
    fits.PrimaryHDU(image, header=fits.Header(cards)).writeto(tmp_path / "n.fits")
    result = read_band(tmp_path / "n.fits", (66, 66), coordinates=EUCLID.coordinates)
    assert result.flags == Flag.NO_COORDINATES | bad_wcs
    assert problem in result.position_problem


def test_a_check_of_another_band_reads_no_full_wcs():
    """Review: checking every band's position built an astropy WCS per band (3-4x the ingest time
    for files without position cards); a check takes cards or a centred ICRS WCS only."""
    header = fits.Header(
        {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0, "CRPIX1": 10.0,
         "CRPIX2": 10.0, "CDELT1": -0.1 / 3600, "CDELT2": 0.1 / 3600}
    )  # fmt: skip
    ra, dec, problem = sky_position(header, (), (200, 200), full_wcs=False)  # CRPIX off centre
    assert np.isnan(ra) and "full WCS not read" in problem
    assert sky_position(header, (), (200, 200))[0] == pytest.approx(150.0 - 90.5 * 0.1 / 3600, abs=1e-5)
    header["CRPIX1"] = header["CRPIX2"] = 100.5  # centred: its CRVAL is the centre
    assert sky_position(header, (), (200, 200), full_wcs=False)[:2] == (150.0, 2.0)


def test_pixel_axes_have_no_pixel_scale_in_arcsec():
    """Review: CDELT 1 of pixel axes (no CTYPE, or LINEAR) was read as 3600"/px."""
    from pipeline.sources.headers import summarise_header

    assert np.isnan(summarise_header(fits.Header({"CDELT1": 1.0, "CDELT2": 1.0})).pixel_scale_arcsec)
    linear = fits.Header({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CDELT1": 1.0, "CDELT2": 1.0})
    assert np.isnan(summarise_header(linear).pixel_scale_arcsec)
    sky = fits.Header(
        {"CTYPE1": "GLON-CAR", "CTYPE2": "GLAT-CAR", "CDELT1": -0.1 / 3600, "CDELT2": 0.1 / 3600}
    )
    assert summarise_header(sky).pixel_scale_arcsec == pytest.approx(0.1)
    # new-user trial: CUNIT arcsec (or arcmin, mas) was read as no scale; mixed units per axis too
    in_arcsec = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec"}
    assert summarise_header(fits.Header(in_arcsec | {"CDELT1": -0.1, "CDELT2": 0.1})).pixel_scale_arcsec == (
        pytest.approx(0.1)
    )
    mixed = in_arcsec | {"CUNIT2": "deg", "CD1_1": -0.3, "CD2_2": 0.3 / 3600}
    assert summarise_header(fits.Header(mixed)).pixel_scale_arcsec == pytest.approx(0.3)
    assert np.isnan(
        summarise_header(fits.Header(in_arcsec | {"CUNIT1": "m", "CDELT1": 1.0})).pixel_scale_arcsec
    )
    spelt = in_arcsec | {"CUNIT1": "degree", "CUNIT2": "degrees", "CDELT1": -0.2 / 3600, "CDELT2": 0.2 / 3600}
    assert summarise_header(fits.Header(spelt)).pixel_scale_arcsec == pytest.approx(0.2)  # trial: NaN
    # the pixel's shape: the ratio of its sides on the sky (rotation and axis units do not change it)
    assert summarise_header(fits.Header(spelt)).pixel_aspect == pytest.approx(1.0)
    turned = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": 0.0, "CD1_2": -0.2 / 3600}
    oblong = summarise_header(fits.Header(turned | {"CD2_1": 0.1 / 3600, "CD2_2": 0.0}))
    assert (oblong.pixel_aspect, oblong.pixel_scale_arcsec) == (
        pytest.approx(2.0),
        pytest.approx(2**0.5 / 10),
    )
    assert summarise_header(fits.Header(mixed)).pixel_aspect == pytest.approx(1.0)
    # review: a rectangle sheared by a 45-degree PC has sides of equal length; its stretch is 0.143/0.07
    c = 0.5**0.5
    pc = {"PC1_1": c, "PC1_2": -c, "PC2_1": c, "PC2_2": c}
    sheared = in_arcsec | {"CDELT1": -0.07, "CDELT2": 0.143} | pc
    assert summarise_header(fits.Header(sheared)).pixel_aspect == pytest.approx(0.143 / 0.07)
    square = in_arcsec | {"CDELT1": -0.1, "CDELT2": 0.1} | pc  # a square turned by 45 degrees
    assert summarise_header(fits.Header(square)).pixel_aspect == pytest.approx(1.0)
    assert np.isnan(summarise_header(linear).pixel_aspect)


@pytest.mark.parametrize("cards", ["position cards", "WCS alone"])
def test_a_tiny_negative_ra_is_0_not_360(tmp_path, cards):
    """Trial: RA = CRVAL1 = -1e-15 was stored as 360.0 (Python's -1e-15 % 360), and the catalog
    contract, ra in [0, 360), refused the whole catalog of the run."""
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = -1e-15, 2.0
    header["CRPIX1"], header["CRPIX2"] = 33.5, 33.5
    header["CDELT1"], header["CDELT2"] = -0.3 / 3600, 0.3 / 3600
    if cards == "position cards":
        header["RA"], header["DEC"] = -1e-15, 2.0
    path = tmp_path / "imageEUC_Y-400003.fits"
    fits.PrimaryHDU(np.ones((66, 66), np.float32), header=header).writeto(path)
    result = read_band(path, (66, 66), coordinates=EUCLID.coordinates)
    assert (result.ra_deg, result.dec_deg) == (0.0, 2.0)
    assert (-1e-15) % 360.0 == 360.0  # the fault, in Python's own modulo


def test_a_stored_ra_of_360_is_written_as_0(tmp_path):
    """A store ingested before the fix above holds 360.0: its catalog is written, with ra 0."""
    from pipeline.catalog import make_catalog_table

    table = make_catalog_table(
        object_ids=np.array([1, 2]),
        ra=np.array([360.0, 359.5]),
        dec=np.array([2.0, 2.0]),
        flags=np.zeros(2, np.int32),
        scores=np.array([0.1, 0.9], np.float32),
        score_std=np.zeros(2, np.float32),
        model_id="m",
    )
    assert table["ra"].tolist() == [0.0, 359.5]
