"""Simulated first-challenge files carry the challenge's placeholder WCS, as its real files do.

Both sglc1 layouts declare ``wcs_position: false``: every real file's WCS is a placeholder,
``CRVAL1 = CRVAL2 = 0`` at the centre, and the position is in the RA/DEC cards (radians) alone. The
simulator wrote a true WCS centred on the object there, so a simulated set's kept headers and its
``lenshunt cutout`` files read otherwise than the real set's (no placeholder said). The real files in
``shared/data/sglc1-samples`` are compared with files simulated in the same layouts.
"""

from __future__ import annotations

import math

import pytest
from astropy.io import fits

from pipeline.simulate import simulate_set
from pipeline.sources import read_band
from pipeline.store.cutout_position import DECLARED_PLACEHOLDER, position_check
from schemas.layout import load_layout

STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "COMMENT", ""}
REAL = {"sglc1-space": "imageEUC_VIS-100002.fits", "sglc1-ground": "imageSDSS_R-100002.fits"}


def _read(path, layout, band):  # type: ignore[no-untyped-def]
    return read_band(
        path,
        band.shape,
        masked_value=layout.masked_value,
        coordinates=layout.coordinates,
        wcs_position=layout.wcs_position,
    )


@pytest.mark.parametrize("layout_name", sorted(REAL))
def test_simulated_sglc1_files_read_as_the_real_ones(layout_name, real_samples, tmp_path):
    layout = load_layout(layout_name)
    band = layout.bands[0]  # the band of the real sample
    real_path = real_samples / REAL[layout_name]
    simulate_set(layout, 2, tmp_path, seed=4)
    simulated_path = tmp_path / band.path_for(100000, layout.id_digits)
    real, simulated = fits.getheader(real_path), fits.getheader(simulated_path)

    # every card of the real header is in the simulated one, with its value (the position cards aside)
    for card in real.cards:
        if card.keyword in STRUCTURAL or card.keyword in ("RA", "DEC"):
            continue
        assert card.keyword in simulated, card.keyword
        value = simulated[card.keyword]
        if isinstance(card.value, str):
            assert value.strip() == card.value.strip(), card.keyword
        else:
            assert value == pytest.approx(card.value, rel=1e-6, abs=1e-12), card.keyword

    # the reader keeps the same WCS and the position of the RA/DEC cards, in both
    read_real, read_simulated = _read(real_path, layout, band), _read(simulated_path, layout, band)
    assert read_real.flags == read_simulated.flags == 0
    kept_real, kept_simulated = read_real.header, read_simulated.header
    assert kept_simulated.pixel_scale_arcsec == pytest.approx(kept_real.pixel_scale_arcsec, rel=1e-6)
    assert (kept_simulated.rotation_deg, kept_simulated.parity) == (kept_real.rotation_deg, kept_real.parity)
    assert read_simulated.ra_deg == pytest.approx(math.degrees(simulated["RA"]) % 360)
    assert read_simulated.dec_deg == pytest.approx(math.degrees(simulated["DEC"]))

    # `lenshunt cutout` says of both that the WCS is the layout's placeholder
    for header, read in ((real, read_real), (simulated, read_simulated)):
        check = position_check(
            header, read.ra_deg, read.dec_deg, band.shape, layout.coordinates, layout.wcs_position
        )
        assert check is not None and DECLARED_PLACEHOLDER in " ".join(check.comment.split())


def test_a_layout_with_a_true_wcs_keeps_it_centred_on_the_object(tmp_path):
    layout = load_layout("euclid-sglc2")
    simulate_set(layout, 1, tmp_path, seed=4)
    header = fits.getheader(tmp_path / layout.bands[0].path_for(100000, layout.id_digits))
    assert (header["CRVAL1"], header["CRVAL2"]) != (0.0, 0.0)
    assert "WCSAXES" not in header and "CD1_1" not in header
