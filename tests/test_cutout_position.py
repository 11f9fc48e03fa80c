"""A cutout whose WCS places the object elsewhere than the catalog says so (trial finding).

The catalog's ra/dec come from the position cards; the cutout carries the input's WCS. Where they
disagree by more than a pixel, the cutout file gets LHPOSOFF, LHCATX/LHCATY and a COMMENT, and
``lenshunt cutout`` prints one warning line per object. Real FITS files written with astropy (and the
real first-challenge file, whose WCS is the CRVAL 0, 0 placeholder) are ingested into a real store.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from cutouts import band_file, cutout_image, ingest_real_vis_sample

from flows.cli import main
from pipeline.flags import Flag
from pipeline.store import ingest, write_cutouts
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [600001, 600002]
SHIFT_ARCSEC = 10.0


def _comments(header: fits.Header) -> str:
    return " ".join(str(value) for value in header["COMMENT"])


@pytest.fixture(scope="module")
def shifted_store(tmp_path_factory, dask_client):
    """Two objects with centred TAN WCSs and RA/DEC cards that agree; the first's VIS and Y WCS moved
    10" north (CRVAL2), their RA/DEC cards kept, as in the trial."""
    root = tmp_path_factory.mktemp("shifted")
    source = root / "src"
    for object_id in IDS:
        ra, dec = 150.0 + object_id * 1e-5, 2.0
        for band_index, band in enumerate(EUCLID.bands):
            ny, nx = band.shape
            header = fits.Header()
            header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
            header["CRPIX1"], header["CRPIX2"] = (nx + 1) / 2, (ny + 1) / 2
            scale = band.pixel_scale_arcsec / 3600
            header["CDELT1"], header["CDELT2"] = -scale, scale
            header["CRVAL1"], header["CRVAL2"] = ra, dec
            if object_id == IDS[0] and band.name in ("VIS", "Y"):
                header["CRVAL2"] = dec + SHIFT_ARCSEC / 3600
            header["RA"], header["DEC"] = ra, dec
            path = band_file(EUCLID, source, object_id, band.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            fits.PrimaryHDU(cutout_image(object_id, band_index, band.shape), header=header).writeto(path)
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client)
    return store, source


def test_a_cutout_whose_wcs_is_off_the_catalog_position_says_so(shifted_store, tmp_path):
    store, source = shifted_store
    result = write_cutouts(store, IDS[0], tmp_path)
    assert sorted(result.position) == ["VIS", "Y"]
    assert result.position["VIS"].offset_arcsec == pytest.approx(SHIFT_ARCSEC, abs=1e-6)
    with fits.open(result.files["VIS"]) as written:
        header = written[0].header
        # the bands' cards agree, but VIS's and Y's disagree with their own WCS: ingest flags them too
        assert header["LHFLAGS"] == Flag.POSITION_MISMATCH
        assert header["LHPOSOFF"] == pytest.approx(SHIFT_ARCSEC, abs=1e-4)
        assert header["LHRA"] == pytest.approx(150.0 + IDS[0] * 1e-5, abs=1e-9)
        # 10" south of the WCS centre is 100 VIS pixels below pixel 100.5 (FITS convention)
        assert (header["LHCATX"], header["LHCATY"]) == pytest.approx((100.5, 0.5), abs=0.01)
        comments = _comments(header)
        assert "The WCS disagrees with the catalog position" in comments
        assert "10.000 arcsec from the image centre (100.5, 100.5)" in comments
        assert "position cards RA,DEC (deg), which ingest reads before the WCS" in comments
        assert "placeholder" not in comments
        # what the header says is what astropy reads from the file's WCS
        catalog = SkyCoord(header["LHRA"] * units.deg, header["LHDEC"] * units.deg)
        centre = WCS(header).pixel_to_world(99.5, 99.5)
        assert centre.separation(catalog).arcsec == pytest.approx(header["LHPOSOFF"], abs=1e-4)
    with fits.open(result.files["J"]) as written:  # its WCS agrees with its cards
        assert written[0].header["LHPOSOFF"] < 1e-6
        assert "LHCATX" not in written[0].header
        assert "catalog position" not in _comments(written[0].header)  # only the input file's COMMENT
    agreeing = write_cutouts(store, IDS[1], tmp_path / "other")
    assert agreeing.position == {} and agreeing.position_warning() is None


def test_the_cutout_command_warns_once_per_object(shifted_store, tmp_path, capsys):
    store, _ = shifted_store
    assert main(["cutout", str(store), str(IDS[0]), "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert warnings == [
        f"lenshunt cutout: warning: object {IDS[0]}: the WCS of VIS, Y puts the catalog position 10.000 "
        "arcsec from the cutout centre (over one pixel); see the COMMENT cards of their files"
    ]
    assert "Traceback" not in captured.err
    assert main(["cutout", str(store), str(IDS[1]), "--out", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_real_challenge_placeholder_wcs_is_said_plainly(real_samples, tmp_path, dask_client, capsys):
    target, _ = ingest_real_vis_sample(real_samples, tmp_path, dask_client)
    assert main(["cutout", str(tmp_path / "s.zarr"), "100002", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    original = fits.getheader(target)
    cards = SkyCoord(np.degrees(original["RA"]) * units.deg, np.degrees(original["DEC"]) * units.deg)
    expected = WCS(original).pixel_to_world(50, 50).separation(cards).arcsec  # about 278"
    assert expected > 270
    assert err.count("warning") == 1
    assert f"object 100002: the WCS of VIS puts the catalog position {expected:.3f} arcsec" in err
    assert "a placeholder WCS (the layout's wcs_position: false): use the catalog position" in err
    header = fits.getheader(tmp_path / "out" / "100002_VIS.fits")
    assert header["LHPOSOFF"] == pytest.approx(expected, abs=1e-4)
    assert (header["LHRA"], header["LHDEC"]) == pytest.approx((cards.ra.deg, cards.dec.deg), abs=1e-9)
    comments = _comments(header)
    assert "position cards RA,DEC (rad), which ingest reads before the WCS" in comments
    assert "The layout declares its files' WCS a placeholder (wcs_position: false)" in comments


def test_a_real_field_at_ra_dec_zero_is_not_called_a_placeholder():
    """Trial: a WCS with CRVAL (0, 0) three pixels off a catalog position at (0.3", 0) was called the
    first challenge's placeholder; it is one only when far off (278" in that challenge)."""
    from astropy.wcs import WCS

    from pipeline.store.cutout_position import position_check

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [0.0, 0.0]
    wcs.wcs.crpix = [50.5, 50.5]
    wcs.wcs.cdelt = [-0.1 / 3600, 0.1 / 3600]
    header = wcs.to_header()
    near = position_check(header, 0.3 / 3600, 0.0, (100, 100))
    assert near.disagrees and near.offset_arcsec == pytest.approx(0.3, abs=1e-3)
    assert "placeholder" not in near.comment, near.comment
    far = position_check(header, 359.975849, -0.073383, (100, 100))
    assert "This WCS is a placeholder" in far.comment and far.offset_arcsec > 270


def test_sexagesimal_position_cards_are_said_in_the_unit_they_are_read_in(tmp_path, dask_client):
    """New-user trial: ``RA = '10:01:08.62'`` (read as hours, rightly) in a layout of radians was said
    to be "RA,DEC (rad)" in the cutout's COMMENT: it names the unit the values are read in."""
    layout = load_layout("sglc1-space")
    band = layout.bands[0]
    path = band_file(layout, tmp_path / "src", 100002, "VIS")
    path.parent.mkdir(parents=True)
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"], header["CRPIX2"] = 51.0, 51.0
    header["CDELT1"], header["CDELT2"] = -0.1 / 3600, 0.1 / 3600
    header["CRVAL1"], header["CRVAL2"] = 0.0, 0.0  # the challenge's placeholder WCS
    header["RA"], header["DEC"] = "10:01:08.62", "+02:18:25.3"
    fits.PrimaryHDU(cutout_image(100002, 0, band.shape), header=header).writeto(path)
    ingest(layout, tmp_path / "src", tmp_path / "s.zarr", dask_client)
    result = write_cutouts(tmp_path / "s.zarr", 100002, tmp_path / "out")
    written = fits.getheader(result.files["VIS"])
    assert (written["LHRA"], written["LHDEC"]) == pytest.approx((150.2859167, 2.3070278), abs=1e-6)
    comments = _comments(written)
    assert (
        "position cards RA (sexagesimal hours), DEC (sexagesimal deg), which ingest reads before the WCS"
        in comments
    )
    assert "(rad)" not in comments
