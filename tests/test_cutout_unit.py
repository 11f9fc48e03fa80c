"""Simulated files and cutouts carry a ``BUNIT`` that ``astropy.nddata.CCDData.read`` reads.

Trial: ``lenshunt simulate`` wrote ``BUNIT = 'flux'``, which the store kept and ``lenshunt cutout``
gave back; ``CCDData.read`` raised "BUNIT (flux) cannot be interpreted as valid unit" on both. Stores
ingested from such files must still give cutouts a reader opens.
"""

from __future__ import annotations

import astropy.units as u
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from pipeline.simulate import simulate_set
from pipeline.sources.headers import SIMULATED_PIXEL_UNIT as PIXEL_UNIT
from pipeline.store import ingest, write_cutouts
from schemas.layout import load_layout

LAYOUT = load_layout("euclid-sglc2")
FIRST = 100000


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    simulate_set("euclid-sglc2", 2, root, seed=4)
    return root


def test_simulated_files_have_a_fits_standard_unit(simulated):
    path = simulated / LAYOUT.band("VIS").path_for(FIRST, LAYOUT.id_digits)
    header = fits.getheader(path)
    assert header["BUNIT"] == PIXEL_UNIT
    assert u.Unit(header["BUNIT"], format="fits") == u.adu  # FITS standard 4.0, sec. 4.3
    assert CCDData.read(path).unit == u.adu
    assert "MAGZP" in header  # what a unit is, in AB magnitudes


def test_cutouts_carry_the_stores_unit_and_an_old_flux_unit_is_mended(simulated, tmp_path, dask_client):
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, simulated, store, dask_client)
    result = write_cutouts(store, FIRST, tmp_path / "new")
    assert CCDData.read(result.files["VIS"]).unit == u.adu
    # an older simulator's files: BUNIT 'flux' ('scaled flux' under a flux draw), kept by the store
    for band in LAYOUT.bands:
        for object_id, value in ((FIRST, "flux"), (FIRST + 1, "scaled flux")):
            path = simulated / band.path_for(object_id, LAYOUT.id_digits)
            fits.setval(path, "BUNIT", value=value, comment="flux-like, AB zero point MAGZP")
    old = tmp_path / "old.zarr"
    ingest(LAYOUT, simulated, old, dask_client)
    for object_id in (FIRST, FIRST + 1):
        files = write_cutouts(old, object_id, tmp_path / "old").files
        for path in files.values():
            header = fits.getheader(path)
            assert header["BUNIT"] == "adu", header.get("BUNIT")
            assert "older lenshunt simulate" in " ".join(header["COMMENT"])
            assert CCDData.read(path).unit == u.adu


def test_another_unit_is_kept_as_the_input_wrote_it_readable_or_not():
    """Only the older simulator's ``'flux'`` is mended; an input's own unit string is its record of the
    unit, kept (a first version left out ``e-/s``, which tests/test_header_room.py's cards carry)."""
    from pipeline.store.cutout_unit import readable_unit

    for value in ("flux", "e-/s", "ELECTRONS/S", "electron/s", "uJy", "adu", "10**(-6) Jy"):
        header = fits.Header({"BUNIT": value, "MAGZP": 24.5})  # 'flux' not from the simulator
        assert readable_unit(header) is None and header["BUNIT"] == value and "COMMENT" not in header
