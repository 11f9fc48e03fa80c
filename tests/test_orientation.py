"""A band whose pixel grid is turned or mirrored against the object's other bands is flagged
ORIENTATION_MISMATCH; a WCS left incomplete (no CTYPE, or no CRVAL) is flagged BAD_WCS.

Before: ingest stacked such a band pixel by pixel with the others, flags 0 (the model saw a
misaligned colour image), and a header with WCS cards but no CTYPE, or a TAN CTYPE pair without
CRVAL, passed as well (astropy made a linear WCS, or put the reference pixel at RA 0, Dec 0).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from cutouts import band_file, ingest_real_vis_sample, sky, write_set

from pipeline.flags import ORIENTATION_TOLERANCE_DEG, UNUSABLE, Flag, documentation
from pipeline.sources.fast_fits import read_simple_image
from pipeline.sources.fits_io import read_band
from pipeline.sources.headers import summarise_header
from pipeline.sources.orientation import MIRRORED, SKY, orientation_mismatch
from pipeline.store import ingest, open_store, write_cutouts
from pipeline.store.reading import MIRRORED_REASON, TURNED_REASON
from schemas.layout import CoordinateSpec, load_layout

EUCLID = load_layout("euclid-sglc2")
CD = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
NO_CD = "no CD matrix (the pixel scale taken as 1 degree, the FITS default)"
NO_CRVAL = "no CRVAL1, CRVAL2 for CTYPE1 'RA---TAN' (taken as 0: the reference pixel put at 0, 0)"
DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"), CoordinateSpec(ra="CRVAL1", dec="CRVAL2"))


def _astropy_orientation(path) -> tuple[float, int]:
    """The position angle (deg east of north) of the +y pixel step at the reference pixel, and the
    parity (SKY: the +x step lies west of it), from astropy's world coordinates of pixel steps. (At
    the image centre it differs by the meridians' convergence: 0.003 degree for a reference pixel
    50 pixels of 0.3" off at Dec 60, far below the tolerance.)"""
    with fits.open(path) as hdus, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(hdus[0].header).celestial
    x, y = wcs.wcs.crpix - 1
    world = wcs.pixel_to_world_values([x, x + 1e-3, x], [y, y, y + 1e-3])
    lon, lat = world if wcs.wcs.lng == 0 else world[::-1]
    points = SkyCoord(lon, lat, unit="deg")
    up, right = points[0].position_angle(points[2]).deg, points[0].position_angle(points[1]).deg
    return up % 360.0, SKY if math.sin(math.radians(right - up)) < 0 else MIRRORED


def _conformal_headers(rng: np.random.Generator, n: int) -> list[dict]:
    """WCS headers of square pixels turned and mirrored every way the standard spells it."""
    found = []
    for k in range(n):
        turn, mirror = rng.uniform(0, 360), rng.choice([-1.0, 1.0])
        scale = rng.choice([0.1, 0.3]) / 3600
        lat_first = k % 5 == 1
        projection = ("TAN", "SIN", "ZEA", "STG", "TAN")[k % 5]
        cards: dict = {"CRPIX1": rng.uniform(-50, 100), "CRPIX2": rng.uniform(-50, 100)}
        lon_ctype, lat_ctype = f"RA---{projection}", f"DEC--{projection}"
        dec = rng.uniform(-80, 80)
        if lat_first:
            cards.update({"CTYPE1": lat_ctype, "CTYPE2": lon_ctype, "CRVAL1": dec, "CRVAL2": 150.0})
        else:
            cards.update({"CTYPE1": lon_ctype, "CTYPE2": lat_ctype, "CRVAL1": 150.0, "CRVAL2": dec})
        rho = math.radians(turn)
        rotation = np.array([[math.cos(rho), -math.sin(rho)], [math.sin(rho), math.cos(rho)]])
        cd = np.diag([-mirror, 1.0]) @ rotation * scale  # rows (lon, lat)
        if lat_first:
            cd = cd[::-1]
        spelling = k % 4
        if spelling == 0:  # CD, zeros left out (review: a turn by 90 degrees may omit CD1_1, CD2_2)
            cards.update({f"CD{i + 1}_{j + 1}": cd[i, j] for i in range(2) for j in range(2) if cd[i, j]})
        elif spelling == 1:  # CDELT and PC
            cards.update({"CDELT1": scale, "CDELT2": scale})
            cards.update({f"PC{i + 1}_{j + 1}": cd[i, j] / scale for i in range(2) for j in range(2)})
        elif spelling == 2:  # CD in arcsec
            cards.update({"CUNIT1": "arcsec", "CUNIT2": "arcsec"})
            cards.update({f"CD{i + 1}_{j + 1}": cd[i, j] * 3600 for i in range(2) for j in range(2)})
        else:  # CDELT and the latitude axis's CROTA (mirrored: CDELT of the longitude the other sign)
            lng, lat = (1, 0) if lat_first else (0, 1)
            deltas = [0.0, 0.0]
            deltas[lng], deltas[lat] = -mirror * scale, scale
            cards.update({"CDELT1": deltas[0], "CDELT2": deltas[1], f"CROTA{lat + 1}": -mirror * turn})
        if k % 3 == 0 and projection != "TAN":  # an explicit LONPOLE turns the sky on the plane
            cards["LONPOLE"] = rng.uniform(0, 360)
        found.append(cards)
    return found


def test_the_orientation_of_a_header_is_astropys(tmp_path):
    """The grid's orientation read off the cards (fast reader, remembered by card) is where astropy's
    world coordinates of pixel steps put it, for CD, PC, CROTA, arcsec units, swapped axes, LONPOLE."""
    rng = np.random.default_rng(7)
    image = np.ones((66, 66), np.float32)
    tan = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0, "CRPIX1": 33.5}
    turned = {**tan, "CD1_2": 1e-5, "CD2_1": 1e-5}  # turned by 90 degrees, the zero diagonal left out
    for cards in [*_conformal_headers(rng, 60), turned, {**turned, "CD1_2": -1e-5}]:
        path = tmp_path / "o.fits"
        fits.PrimaryHDU(image, fits.Header(cards)).writeto(path, overwrite=True)
        summary = summarise_header(read_simple_image(path).header)
        angle, parity = _astropy_orientation(path)
        assert summary.parity == parity, cards
        assert abs((summary.rotation_deg - angle + 180) % 360 - 180) < 1e-3, cards


def test_no_pixel_matrix_or_a_lonpole_of_another_projection_is_no_orientation(tmp_path):
    image = np.ones((66, 66), np.float32)
    tan = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0}
    car = {"CTYPE1": "RA---CAR", "CTYPE2": "DEC--CAR", "CRVAL1": 150.0, "CRVAL2": 2.0}
    for cards in (tan, {**car, "CDELT1": -1e-5, "CDELT2": 1e-5, "LONPOLE": 0.0}, {}):
        fits.PrimaryHDU(image, fits.Header(cards)).writeto(tmp_path / "o.fits", overwrite=True)
        summary = summarise_header(read_simple_image(tmp_path / "o.fits").header)
        assert (math.isnan(summary.rotation_deg), summary.parity) == (True, 0), cards


def test_the_odd_band_out_is_the_mismatch():
    tolerance = ORIENTATION_TOLERANCE_DEG
    rotation = np.array(
        [
            [0.0, 0.0, 0.0, 90.0],  # one turned
            [0.0, 0.0, 0.0, 0.0],  # one mirrored (below)
            [359.6, 0.3, tolerance - 0.4, np.nan],  # small turns across 0; one unknown
            [0.0, 180.0, np.nan, np.nan],  # two that disagree: the first band's wins
            [90.0, 90.0, 0.0, 0.0],  # a tie of two and two: the first band's
            [45.0, 45.0, 45.0, 45.0],  # all turned alike: aligned
        ]
    )
    parity = np.ones(rotation.shape, dtype=np.int8)
    parity[1, 2] = MIRRORED
    parity[2:4, 2:] = 0
    parity[2, 2] = SKY
    mirrored, turned = orientation_mismatch(rotation, parity)
    assert (mirrored | turned).tolist() == [
        [False, False, False, True],
        [False, False, True, False],
        [False, False, False, False],
        [False, True, False, False],
        [False, False, True, True],
        [False, False, False, False],
    ]
    assert np.flatnonzero(mirrored).tolist() == [6]  # object 1's band 2 only


def _set_wcs(path, **cards) -> None:
    """Give a written cutout a CD matrix of its band's scale, north up and east left, then ``cards``
    (None removes a card)."""
    with fits.open(path, mode="update") as hdus:
        header = hdus[0].header
        scale = (0.1 if header["NAXIS1"] == 200 else 0.3) / 3600
        header.update({"CD1_1": -scale, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": scale})
        for key, value in cards.items():
            if value is None:
                header.remove(key, ignore_missing=True)
            else:
                header[key] = value


def test_ingest_flags_a_band_turned_or_mirrored_against_the_others(tmp_path, dask_client):
    """Before: a VIS band whose CD matrix was turned by 90 degrees, and a Y band whose CDELT1 had the
    other sign, were stacked with the others with flags 0."""
    ids = list(range(100001, 100008))
    source = write_set(EUCLID, tmp_path / "src", ids)
    s_vis, s_nir = 0.1 / 3600, 0.3 / 3600
    special = {
        (100001, "VIS"): {"CD1_1": 0.0, "CD1_2": s_vis, "CD2_1": s_vis, "CD2_2": 0.0},  # turned 90 deg
        (100002, "Y"): {"CD1_1": s_nir},  # mirrored (CDELT1's sign flipped)
        (100003, "H"): {"CD1_1": -s_nir * math.cos(0.5 / 57.3), "CD1_2": s_nir * math.sin(0.5 / 57.3)}
        | {"CD2_1": s_nir * math.sin(0.5 / 57.3), "CD2_2": s_nir * math.cos(0.5 / 57.3)},  # 0.5 deg
        (100004, "J"): {"CD1_1": None, "CD1_2": None, "CD2_1": None, "CD2_2": None}  # CROTA2 turns it
        | {"CDELT1": -s_nir, "CDELT2": s_nir, "CROTA2": 180.0},
        (100006, "Y"): {"CRVAL1": None, "CRVAL2": None, "CD1_1": s_nir},  # BAD_WCS, orientation unknown
    }
    for object_id in ids:
        for band in EUCLID.band_names:
            cards = dict(special.get((object_id, band), {}))
            if object_id == 100005:  # every band turned alike: aligned
                scale = s_vis if band == "VIS" else s_nir
                cards.update({"CD1_1": 0.0, "CD1_2": scale, "CD2_1": scale, "CD2_2": 0.0})
            _set_wcs(band_file(EUCLID, source, object_id, band), **cards)
    store = tmp_path / "s.zarr"
    report = ingest(EUCLID, source, store, dask_client)
    data = open_store(store)
    assert data["object_id"].values.tolist() == ids  # nothing dropped
    band_flags = dict(zip(ids, data["band_flags"].values.tolist(), strict=True))
    o, bad = int(Flag.ORIENTATION_MISMATCH), int(Flag.BAD_WCS)
    assert band_flags == {
        100001: [o, 0, 0, 0],
        100002: [0, o, 0, 0],
        100003: [0, 0, 0, 0],
        100004: [0, 0, o, 0],
        100005: [0, 0, 0, 0],
        100006: [0, bad, 0, 0],
        100007: [0, 0, 0, 0],
    }
    assert data["flags"].values.tolist() == [o, o, 0, o, 0, bad, 0]
    assert not (data["flags"].values & UNUSABLE).any()  # still scored
    assert report.reasons == {
        f"VIS: {TURNED_REASON}": 1,
        f"Y: {MIRRORED_REASON}": 1,
        f"J: {TURNED_REASON}": 1,
        f"Y: unusable WCS: {NO_CRVAL}": 1,
    }
    assert report.flag_counts == {"ORIENTATION_MISMATCH": 3, "BAD_WCS": 1}
    # named in the report (trial: counted only, "3 J: WCS pixel grid rotated ...")
    assert report.reason_objects == {
        f"VIS: {TURNED_REASON}": [100001],
        f"Y: {MIRRORED_REASON}": [100002],
        f"J: {TURNED_REASON}": [100004],
        f"Y: unusable WCS: {NO_CRVAL}": [100006],
    }
    assert f"         1  J: {TURNED_REASON} (object 100004)" in report.summary().splitlines()
    assert (data["ra"].values[5], data["dec"].values[5]) == pytest.approx(sky(100006))
    assert documentation()["ORIENTATION_MISMATCH"].startswith("bit 15: ")


@pytest.mark.parametrize(
    ("removed", "defect"),
    [
        (
            ("CTYPE1", "CTYPE2"),
            "WCS cards CRVAL1, CRVAL2, CD1_1, CD1_2, ... without CTYPE1/CTYPE2 (read as linear pixel "
            "axes, not the sky)",
        ),
        (
            ("CRVAL1", "CRVAL2"),
            "no CRVAL1, CRVAL2 for CTYPE1 'RA---TAN' (taken as 0: the reference pixel put at 0, 0)",
        ),
        (("CRVAL2",), "no CRVAL2 for CTYPE1 'RA---TAN' (taken as 0: the reference pixel put at 0, 0)"),
        # trial: no pixel matrix at all (FITS: CDELTi = 1, a degree a pixel) passed with flags 0
        ((*CD, "CDELT1", "CDELT2"), f"no CDELT1, CDELT2 and {NO_CD}"),
        ((*CD, "CDELT2"), f"no CDELT2 and {NO_CD}"),
        ((*CD, "CDELT1", "CDELT2", {"PC1_1": -1.0, "PC2_2": 1.0}), f"no CDELT1, CDELT2 and {NO_CD}"),
    ],
)
def test_an_incomplete_wcs_is_flagged_and_left_out_of_the_cutout(tmp_path, dask_client, removed, defect):
    """Before: a VIS band without CTYPE1/2 (astropy: a linear WCS) or without CRVAL1/2 (wcslib: the
    reference pixel at RA 0, Dec 0) passed with flags 0; `lenshunt cutout` warned of an offset only."""
    ids = [100001, 100002]
    source = write_set(EUCLID, tmp_path / "src", ids)
    for object_id in ids:
        for band in EUCLID.band_names:
            _set_wcs(band_file(EUCLID, source, object_id, band))
    cards = {key: None for key in removed if isinstance(key, str)}  # and, in a dict, cards to add
    cards.update(*(added for added in removed if isinstance(added, dict)))
    _set_wcs(band_file(EUCLID, source, ids[0], "VIS"), **cards)
    store = tmp_path / "s.zarr"
    report = ingest(EUCLID, source, store, dask_client)
    data = open_store(store)
    assert data["band_flags"].values.tolist() == [[Flag.BAD_WCS, 0, 0, 0], [0, 0, 0, 0]]
    assert data["flags"].values.tolist() == [Flag.BAD_WCS, 0]
    assert report.reasons == {f"VIS: unusable WCS: {defect}": 1}
    assert (data["ra"].values[0], data["dec"].values[0]) == pytest.approx(sky(ids[0]))  # the RA/DEC cards'
    written = write_cutouts(store, ids[0], tmp_path / "out", bands=["VIS"])
    assert defect in written.notes["VIS"]
    with fits.open(next((tmp_path / "out").glob("*VIS*.fits"))) as hdus:
        assert not {"CD1_1", "CRVAL1", "CTYPE1"} & set(hdus[0].header)


def test_a_band_without_position_cards_and_without_ctype_has_no_position_from_its_wcs(tmp_path):
    path = tmp_path / "no-ctype.fits"
    header = fits.Header({"CRPIX1": 33.5, "CRPIX2": 33.5, "CRVAL1": 150.0, "CRVAL2": 2.0, "CDELT1": -1e-4})
    fits.PrimaryHDU(np.ones((66, 66), np.float32) + np.eye(66, dtype=np.float32), header).writeto(path)
    result = read_band(path, (66, 66), coordinates=DEG)
    assert result.flags == Flag.BAD_WCS | Flag.NO_COORDINATES
    assert (
        "an unusable WCS (WCS cards CRVAL1, CRVAL2, CDELT1 without CTYPE1/CTYPE2" in result.position_problem
    )
    # a header with CRPIX only, or a linear WCS, is no WCS to flag
    for cards in ({"CRPIX1": 33.5, "CRPIX2": 33.5}, {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CRPIX1": 1.0}):
        fits.PrimaryHDU(
            np.ones((66, 66), np.float32) + np.eye(66, dtype=np.float32), fits.Header(cards)
        ).writeto(path, overwrite=True)
        assert read_band(path, (66, 66), coordinates=DEG).flags == Flag.NO_COORDINATES, cards


def test_the_real_challenge_file_without_its_pixel_matrix_is_flagged(real_samples, tmp_path, dask_client):
    """Trial: the first challenge's VIS file with its CDELT, CD and CROTA2 cards removed passed with flags
    0, astropy read it at 3600" a pixel, and `lenshunt cutout` kept that WCS (its 278" placeholder
    offset, under one such pixel, went unsaid). The file as it is has flags 0."""
    target, store = ingest_real_vis_sample(real_samples, tmp_path / "whole", dask_client)
    assert open_store(store)["flags"].values.tolist() == [0]
    with fits.open(target) as hdus:
        header = hdus[0].header
        for key in ("CDELT1", "CDELT2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CROTA2"):
            del header[key]
        stripped = tmp_path / "stripped.fits"
        hdus.writeto(stripped)
    target, store = ingest_real_vis_sample(stripped.parent, tmp_path / "cut", dask_client, stripped.name)
    data = open_store(store)
    assert data["band_flags"].values.tolist() == [[Flag.BAD_WCS]]
    defect = f"no CDELT1, CDELT2 and {NO_CD}"
    written = write_cutouts(store, 100002, tmp_path / "out")
    assert defect in written.notes["VIS"]
    with fits.open(written.files["VIS"]) as hdus:
        assert not {"CTYPE1", "CRVAL1", "CRPIX1"} & set(hdus[0].header)
        comments = " ".join(str(line) for line in hdus[0].header["COMMENT"])
        assert "The input's celestial WCS is left out: it is unusable (no CDELT1, CDELT2" in comments
