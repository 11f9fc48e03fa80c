"""Position cards in sexagesimal are read; a card that cannot be is named with its value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from pipeline.flags import Flag
from pipeline.sources import read_band
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")  # RA, DEC in degrees, then the WCS
SGLC1 = load_layout("sglc1-space")  # RA, DEC in radians (its WCS a placeholder)


def _write(path, **cards):
    image = np.arange(66 * 66, dtype=np.float32).reshape(66, 66)  # no WCS: the cards alone
    fits.PrimaryHDU(image, fits.Header(cards)).writeto(path, overwrite=True)


@pytest.mark.parametrize("layout", [EUCLID, SGLC1], ids=["deg", "rad"])
@pytest.mark.parametrize(
    ("ra", "dec"),
    [("10:01:08.62", "+02:18:25.3"), ("10 01 08.62", "+02 18 25.3"), ("10h01m08.62s", "2d18m25.3s")],
)
def test_sexagesimal_cards_are_read_ra_in_hours(tmp_path, layout, ra, dec):
    """Trial: they gave NO_COORDINATES, "no RA,DEC cards and no celestial WCS"."""
    _write(tmp_path / "s.fits", RA=ra, DEC=dec)
    result = read_band(tmp_path / "s.fits", (66, 66), coordinates=layout.coordinates)
    expected = SkyCoord("10:01:08.62 +02:18:25.3", unit=("hourangle", "deg"))
    assert result.flags == 0 and result.position_problem is None
    assert result.ra_deg == pytest.approx(expected.ra.deg, abs=1e-9)
    assert result.dec_deg == pytest.approx(expected.dec.deg, abs=1e-9)


@pytest.mark.parametrize(
    ("cards", "problem"),
    [
        ({"RA": 150.0, "DEC": 95}, "DEC = 95 outside [-90, 90] deg"),
        ({"RA": 400.5, "DEC": 2.0}, "RA = 400.5 outside [-360, 360] deg"),  # more than a turn: no RA
        ({"RA": "400d30m", "DEC": 2.0}, "RA = '400d30m' outside [-360, 360] deg"),
        ({"RA": "10:01:08.62", "DEC": "+95:00:00"}, "DEC = '+95:00:00' outside [-90, 90] deg"),
        ({"RA": "ten o'clock", "DEC": 2.0}, 'RA = "ten o\'clock" is not a number or an angle'),
        ({"RA": 150.0, "DEC": "nan"}, "DEC = 'nan' is not finite"),
        ({"RA": 150.0}, "RA card without DEC"),
    ],
)
def test_an_unusable_card_is_named_with_its_value(tmp_path, cards, problem):
    _write(tmp_path / "bad.fits", **cards)
    result = read_band(tmp_path / "bad.fits", (66, 66), coordinates=EUCLID.coordinates)
    assert result.flags == Flag.NO_COORDINATES and math.isnan(result.ra_deg)
    assert result.position_problem == f"position cards unusable ({problem}) and no celestial WCS"


def test_numbers_keep_the_layouts_unit_and_no_cards_keep_their_reason(tmp_path):
    _write(tmp_path / "rad.fits", RA=math.radians(150.25), DEC=math.radians(-2.5))
    result = read_band(tmp_path / "rad.fits", (66, 66), coordinates=SGLC1.coordinates)
    assert (result.ra_deg, result.dec_deg) == pytest.approx((150.25, -2.5))
    _write(tmp_path / "none.fits")
    result = read_band(tmp_path / "none.fits", (66, 66), coordinates=EUCLID.coordinates)
    assert result.position_problem == "no RA,DEC cards and no celestial WCS"


GROUND = load_layout("sglc1-ground")  # four bands, RA, DEC in radians (its WCS a placeholder)


def _edit(path, **cards) -> None:
    with fits.open(path, mode="update") as hdus:
        hdus[0].header.update(cards)


def test_a_bands_unusable_cards_are_said_where_another_band_gives_the_position(tmp_path, dask_client):
    """Trial: ``DEC = 95`` in one band, ``RA = 'garbage'`` in another, went unsaid (no flag, no reason)
    where the object's other bands gave its position; an object with no position says it once."""
    from cutouts import band_file, sky, write_set

    from pipeline.store import ingest
    from pipeline.store.reading import CARDS_NOT_USED
    from pipeline.store.zarr_store import open_store

    source = write_set(GROUND, tmp_path / "src", [1, 2, 3, 4])
    first, third = GROUND.bands[0].name, GROUND.bands[2].name
    _edit(band_file(GROUND, source, 1, first), DEC=95.0)  # the band searched first: another gives it
    _edit(band_file(GROUND, source, 2, third), RA="garbage")  # a band only checked
    for band in GROUND.bands:  # no band gives one: "no sky position" alone says why
        _edit(band_file(GROUND, source, 4, band.name), RA="garbage")
    report = ingest(GROUND, source, tmp_path / "s.zarr", dask_client)
    dataset = open_store(tmp_path / "s.zarr", chunks=None)
    rows = {int(i): row for row, i in enumerate(dataset["object_id"].values)}
    for object_id in (1, 2, 3):
        row = rows[object_id]
        assert (float(dataset["ra"][row]), float(dataset["dec"][row])) == pytest.approx(sky(object_id))
    said = {reason: count for reason, count in report.reasons.items() if "position cards unusable" in reason}
    assert said == {
        f"{first}: position cards unusable (DEC = 95.0 rad (5443.1 deg) outside [-90, 90] deg), "
        + CARDS_NOT_USED: 1,
        f"{third}: position cards unusable (RA = 'garbage' is not a number or an angle), "
        + CARDS_NOT_USED: 1,
        "no sky position: position cards unusable (RA = 'garbage' is not a number or an angle), and the "
        "layout's WCS gives no position (wcs_position: false)": 1,
    }
    named = {reason.split(":")[0]: report.reason_objects[reason] for reason in said}
    assert named == {first: [1], third: [2], "no sky position": [4]}
