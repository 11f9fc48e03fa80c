"""A layout whose files' WCS is a placeholder takes positions from its cards alone (trial findings).

The first challenge's files all carry ``CRVAL1 = CRVAL2 = 0`` at the centre, a placeholder; their
position is the radian ``RA``/``DEC`` cards'. An object whose cards were missing or unusable (``DEC =
2.0`` radians, beyond the pole) fell back to that WCS and was stored at (0, 0) with flags 0, and an
``RA = 150.1`` (degrees, in a layout of radians) was read as 150.1 rad. Real FITS files (the real
first-challenge file, edited as in the trial) are ingested into a real store.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from cutouts import sky, write_cutout

from flows.cli import main
from pipeline.flags import Flag
from pipeline.sources import read_band
from pipeline.store import ingest
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout, parse_layout

SGLC1 = load_layout("sglc1-space")
PLACEHOLDER = "and the layout's WCS gives no position (wcs_position: false)"


def _write(root, object_id: int, data, header) -> None:
    path = root / SGLC1.bands[0].path_for(object_id, SGLC1.id_digits)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, header).writeto(path)


@pytest.fixture(scope="module")
def placeholder_store(real_samples, tmp_path_factory, dask_client):
    """The real file of object 100002, and copies of it without RA/DEC, with DEC = 2.0 (rad: 114.6
    deg) and with RA = 150.1 (degrees written in a layout of radians: 8600 deg), ingested."""
    root = tmp_path_factory.mktemp("placeholder")
    data, header = fits.getdata(real_samples / "imageEUC_VIS-100002.fits", header=True)
    _write(root / "src", 100002, data, header)
    edited = header.copy()
    del edited["RA"], edited["DEC"]
    _write(root / "src", 100050, data, edited)
    edited = header.copy()
    edited["DEC"] = 2.0
    _write(root / "src", 100061, data, edited)
    edited = header.copy()
    edited["RA"] = 150.1
    _write(root / "src", 100090, data, edited)
    report = ingest(SGLC1, root / "src", root / "s.zarr", dask_client)
    return root / "s.zarr", report, header


def test_missing_or_bad_cards_are_no_position_not_the_placeholder(placeholder_store):
    store, report, header = placeholder_store
    dataset = open_store(store, chunks=None)
    rows = {int(i): row for row, i in enumerate(dataset["object_id"].values)}
    ra, dec, flags = dataset["ra"].values, dataset["dec"].values, dataset["flags"].values
    good = rows[100002]
    assert (ra[good], dec[good]) == pytest.approx(
        (math.degrees(header["RA"]) % 360, math.degrees(header["DEC"])), abs=1e-9
    )
    assert flags[good] == 0
    for object_id in (100050, 100061, 100090):  # were at (0, 0) (or 320.1 deg), flags 0
        row = rows[object_id]
        assert np.isnan(ra[row]) and np.isnan(dec[row]), object_id
        assert flags[row] == Flag.NO_COORDINATES, object_id
    reasons = report.reasons
    assert reasons[f"no sky position: no RA,DEC cards, {PLACEHOLDER}"] == 1
    assert (
        reasons[
            "no sky position: position cards unusable (DEC = 2.0 rad (114.592 deg) outside [-90, 90] deg), "
            + PLACEHOLDER
        ]
        == 1
    )
    assert (
        reasons[
            "no sky position: position cards unusable (RA = 150.1 rad (8600.1 deg) outside [-360, 360] deg), "
            + PLACEHOLDER
        ]
        == 1
    )


def test_the_cutout_of_an_object_without_position_says_its_wcs_is_a_placeholder(
    placeholder_store, tmp_path, capsys
):
    store, _, _ = placeholder_store
    assert main(["cutout", str(store), "100050", "--out", str(tmp_path)]) == 0
    header = fits.getheader(tmp_path / "100050_VIS.fits")
    assert "LHRA" not in header and "LHPOSOFF" not in header
    comments = " ".join(str(value) for value in header["COMMENT"])
    assert "The layout declares its files' WCS a placeholder (wcs_position: false)" in comments
    assert "which has no catalog position (NO_COORDINATES)" in comments
    assert "Traceback" not in capsys.readouterr().err


def test_any_layout_may_declare_its_wcs_a_placeholder(tmp_path):
    """The declaration, not the first challenge's CRVAL 0, 0: a layout in degrees whose files carry a
    usable WCS elsewhere takes the cards alone; the same files in a layout without it take the WCS."""
    data = dict(load_layout("euclid-sglc2").model_dump(mode="json"))
    data["coordinates"] = [{"ra": "RA", "dec": "DEC", "unit": "deg"}]
    with_wcs = parse_layout(data)
    declared = parse_layout(data | {"wcs_position": False})
    path = tmp_path / "w.fits"
    write_cutout(
        path, np.ones((66, 66), np.float32) + np.eye(66, dtype=np.float32), 10.0, 20.0, scale_arcsec=0.3
    )
    with fits.open(path, mode="update") as hdus:
        del hdus[0].header["RA"], hdus[0].header["DEC"]
    kept = read_band(path, (66, 66), coordinates=with_wcs.coordinates, wcs_position=with_wcs.wcs_position)
    assert (kept.ra_deg, kept.dec_deg, kept.flags) == (pytest.approx(10.0), pytest.approx(20.0), 0)
    none = read_band(path, (66, 66), coordinates=declared.coordinates, wcs_position=declared.wcs_position)
    assert math.isnan(none.ra_deg) and none.flags == Flag.NO_COORDINATES
    assert none.position_problem == f"no RA,DEC cards, {PLACEHOLDER}"


def test_a_file_cut_in_its_data_keeps_its_headers_position(tmp_path, dask_client):
    """Trial: a file cut at half its data, or a header-only file, lost its sky position, "no band
    file with a header"; one whose header cannot be read says so, naming the band's flag."""
    source = tmp_path / "src"
    paths = {}
    for object_id in (1, 2, 3, 4):
        paths[object_id] = source / SGLC1.bands[0].path_for(object_id, SGLC1.id_digits)
        image = np.arange(101 * 101, dtype=np.float32).reshape(101, 101)
        write_cutout(paths[object_id], image, *sky(object_id), "rad", scale_arcsec=0.1)
    raw = paths[2].read_bytes()
    header_bytes = len(raw) - -(-101 * 101 * 4 // 2880) * 2880
    paths[2].write_bytes(raw[: header_bytes + 101 * 101 * 2])  # cut at half its data
    paths[3].write_bytes(paths[3].read_bytes()[:header_bytes])  # its header alone
    paths[4].write_bytes(b"not a FITS file" * 300)
    report = ingest(SGLC1, source, tmp_path / "s.zarr", dask_client)
    dataset = open_store(tmp_path / "s.zarr", chunks=None)
    rows = {int(i): row for row, i in enumerate(dataset["object_id"].values)}
    for object_id in (2, 3):
        row = rows[object_id]
        assert (float(dataset["ra"][row]), float(dataset["dec"][row])) == pytest.approx(
            sky(object_id), abs=1e-9
        )
        assert int(dataset["flags"][row]) == Flag.TRUNCATED, object_id
    assert int(dataset["flags"][rows[4]]) == Flag.UNREADABLE | Flag.NO_COORDINATES
    assert report.reasons["no sky position: no band file whose image header was read (VIS UNREADABLE)"] == 1
    assert not [reason for reason in report.reasons if "with a header" in reason]


def test_a_reread_records_todays_layout_so_an_old_store_loses_its_placeholder_positions(
    real_samples, tmp_path, dask_client
):
    """A store ingested with the sglc1-space layout of before (CRVAL1/CRVAL2 as a fallback position)
    keeps (0, 0) for an object without RA/DEC until ``--reread``, which records today's layout."""
    data, header = fits.getdata(real_samples / "imageEUC_VIS-100002.fits", header=True)
    _write(tmp_path / "src", 100002, data, header)
    edited = header.copy()
    del edited["RA"], edited["DEC"]
    _write(tmp_path / "src", 100050, data, edited)
    old = SGLC1.model_dump(mode="json")
    old["coordinates"].append({"ra": "CRVAL1", "dec": "CRVAL2", "unit": "deg"})
    old["wcs_position"] = True
    store = tmp_path / "s.zarr"
    ingest(parse_layout(old, source="the layout of before"), tmp_path / "src", store, dask_client)
    assert (open_store(store)["ra"].values[1], open_store(store)["flags"].values[1]) == (0.0, 0)

    report = ingest(SGLC1, tmp_path / "src", store, dask_client, reread=True)
    # both rewritten: 100002's cards, 278" from the WCS the old layout took for real, were POSITION_MISMATCH
    assert (report.n_reread, report.n_rewritten) == (2, 2)
    dataset = open_store(store)
    assert np.isnan(dataset["ra"].values[1]) and dataset["flags"].values[1] == Flag.NO_COORDINATES
    assert dataset["ra"].values[0] == pytest.approx(math.degrees(header["RA"]) % 360)
    assert "wcs_position: false" in dataset.attrs["layout_yaml"]
