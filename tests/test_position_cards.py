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
