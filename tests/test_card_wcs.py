"""A band whose position cards disagree with its own WCS is flagged POSITION_MISMATCH at ingest.

Trial: RA cards moved by 0.5 degree in all four bands of an object (CRVAL1 left alone), or a
sexagesimal ``RA = '10:00:00.0'`` (hours) 1.2 degree from the WCS, were ingested with flags 0: the bands
agree with each other, so the band comparison saw nothing, and only ``lenshunt cutout`` warned. Real
FITS files, a real ingest on an in-process Dask cluster; the real first-challenge file (a placeholder
WCS, 278" from its cards) under its own layout and under one that does not declare it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from cutouts import band_file, cutout_image, sky, write_cutout, write_set

from pipeline.flags import Flag, documentation
from pipeline.sources import read_band
from pipeline.store import ingest, open_store
from schemas.layout import load_layout, parse_layout

EUCLID = load_layout("euclid-sglc2")
SGLC1 = load_layout("sglc1-space")
IDS = [460001, 460002, 460003, 460004]
REASON = (
    "position cards RA,DEC over 2 arcsec from the WCS's world position of the image centre (the cards or "
    "the WCS wrong; a layout whose files' WCS is a placeholder declares wcs_position: false)"
)


def _edit(path, **cards) -> None:
    with fits.open(path, mode="update") as hdus:
        for key, value in cards.items():
            if value is None:
                del hdus[0].header[key]
            else:
                hdus[0].header[key] = value


def test_cards_that_disagree_with_the_wcs_in_every_band_are_flagged(tmp_path, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    for band in EUCLID.band_names:
        ra, _ = sky(IDS[1])
        _edit(band_file(EUCLID, root, IDS[1], band), RA=ra + 0.5)  # CRVAL1 left alone (trial)
        _edit(band_file(EUCLID, root, IDS[2], band), RA="10:00:00.0", DEC=sky(IDS[2])[1])  # 150 deg
        _edit(band_file(EUCLID, root, IDS[3], band), DEC=sky(IDS[3])[1] + 1 / 3600)  # 1": within 2"
    report = ingest(EUCLID, root, tmp_path / "store.zarr", dask_client)
    data = open_store(tmp_path / "store.zarr")
    mismatch = int(Flag.POSITION_MISMATCH)
    assert data["flags"].values.tolist() == [0, mismatch, mismatch, 0]
    assert data["band_flags"].values[1:3].tolist() == [[mismatch] * 4] * 2  # every band, each checked
    assert data["ra"].values[1] == pytest.approx(sky(IDS[1])[0] + 0.5)  # the cards' position, flagged
    assert data["ra"].values[2] == pytest.approx(150.0)
    assert report.reasons == {f"{band}: {REASON}": 2 for band in EUCLID.band_names}
    assert report.reason_objects["VIS: " + REASON] == IDS[1:3]
    assert "position cards from its own WCS" in documentation()["POSITION_MISMATCH"]


def test_an_uncentred_wcs_is_read_whole_for_the_band_that_gives_the_position(tmp_path):
    """Off-centre CRPIX (a Cutout2D cutout keeps its tile's CRVAL): the centre through astropy."""
    path, shape = tmp_path / "v.fits", EUCLID.band("VIS").shape
    write_cutout(path, cutout_image(1, 0, shape), 150.0, 2.0, scale_arcsec=0.1)
    _edit(path, CRPIX1=(shape[1] + 1) / 2 + 50)  # the centre 50 pixels (5") east of CRVAL
    read = {"coordinates": EUCLID.coordinates, "wcs_position": True}
    assert read_band(path, shape, **read).flags == Flag.POSITION_MISMATCH  # cards say CRVAL: 5" off
    # the other bands too, on the tangent plane without an astropy WCS (trial: never compared)
    assert read_band(path, shape, **read, position="cheap").flags == Flag.POSITION_MISMATCH
    _edit(path, RA=150.5)  # 0.5 degree: far beyond the centre's 5" from CRVAL, decided without astropy
    assert read_band(path, shape, **read, position="cheap").flags == Flag.POSITION_MISMATCH
    centre = 150.0 + 5.0 / 3600 / math.cos(math.radians(2.0))
    _edit(path, RA=centre)
    assert read_band(path, shape, **read).flags == 0  # cards at the WCS's centre
    assert read_band(path, shape, **read, position="cheap").flags == 0


def test_a_later_band_whose_wcs_centre_is_off_its_cards_is_flagged(tmp_path, dask_client):
    """Trial: a Y file whose CRPIX1 moved 40 pixels (12") and one moved 10 (3") were not flagged (bands
    after the first were never compared), though ``lenshunt cutout`` warned of the 12"."""
    root = write_set(EUCLID, tmp_path / "src", IDS)
    for object_id, pixels in ((IDS[1], 40), (IDS[2], 10), (IDS[3], 5)):  # 12", 3", 1.5": within 2"
        path = band_file(EUCLID, root, object_id, "Y")
        _edit(path, CRPIX1=fits.getheader(path)["CRPIX1"] + pixels)
    ingest(EUCLID, root, tmp_path / "store.zarr", dask_client)
    flags = open_store(tmp_path / "store.zarr")["band_flags"].values
    y = EUCLID.band_names.index("Y")
    mismatch = int(Flag.POSITION_MISMATCH)
    assert [int(flags[row, y]) for row in range(len(IDS))] == [0, mismatch, mismatch, 0]
    assert flags[:, EUCLID.band_names.index("VIS")].tolist() == [0] * len(IDS)


def test_no_wcs_no_cards_or_an_unusable_wcs_are_not_compared(tmp_path):
    path, shape = tmp_path / "h.fits", EUCLID.band("H").shape
    read = {"coordinates": EUCLID.coordinates, "wcs_position": True}
    write_cutout(path, cutout_image(2, 3, shape), 150.0, 2.0, scale_arcsec=0.3)
    _edit(path, RA=151.0, CTYPE1=None, CTYPE2=None, CRVAL1=None, CRVAL2=None, CDELT1=None, CDELT2=None)
    assert read_band(path, shape, **read).flags == 0  # cards, no WCS
    write_cutout(path, cutout_image(2, 3, shape), 150.0, 2.0, scale_arcsec=0.3)
    _edit(path, RA=None, DEC=None)
    assert read_band(path, shape, **read).flags == 0  # the WCS, no cards: the position is the WCS's
    write_cutout(path, cutout_image(2, 3, shape), 150.0, 2.0, scale_arcsec=0.3)
    _edit(path, RA=151.0, CDELT1=0.0)
    assert read_band(path, shape, **read).flags == Flag.BAD_WCS  # says why; no position from it


def test_a_declared_placeholder_wcs_is_not_compared(real_samples):
    """The first challenge's files: cards 278" from the placeholder WCS (CRVAL1 = CRVAL2 = 0)."""
    path = real_samples / "imageEUC_VIS-100002.fits"
    shape = fits.getdata(path).shape
    declared = read_band(path, shape, coordinates=SGLC1.coordinates, wcs_position=SGLC1.wcs_position)
    assert not SGLC1.wcs_position and declared.flags == 0
    undeclared = parse_layout(SGLC1.model_dump(mode="json") | {"wcs_position": True})
    read = read_band(path, shape, coordinates=undeclared.coordinates, wcs_position=True)
    assert read.flags == Flag.POSITION_MISMATCH and REASON in read.extra_reasons
    assert np.isfinite(read.ra_deg)
