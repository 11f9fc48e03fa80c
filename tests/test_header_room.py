"""Headers with many distortion cards keep every card that defines the data, and a whole WCS.

Trial: ingest kept the first 64 kept cards of a header in file order, so a TAN-SIP order-4 header
with its inverse (74 cards) lost ``RADESYS``, ``EQUINOX``, ``BUNIT``, ``MAGZP``, ``EXPTIME``,
``GAIN``, ``RA``, ``DEC`` and its last SIP terms: the store said units '' and the cutout had a
wrong (partly distorted) WCS, unsaid. Real FITS files are ingested on a real Dask cluster and
written back with ``lenshunt cutout``; the cutout's WCS must map pixels (off-centre, where the
distortion matters) to the input's sky positions exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from cutouts import band_file, write_set

from flows.cli import main
from pipeline.sources.card_choice import DISTORTION_DROPPED, choose_cards
from pipeline.store import ingest, open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
OBJECT = 500002
DATA_CARDS = {"RADESYS": "ICRS", "EQUINOX": 2000.0, "BUNIT": "e-/s", "MAGZP": 24.5, "EXPTIME": 565.0}
DESCRIBING = {"GAIN": 3.1, "PSF_FWHM": 0.17, "PSF_TYPE": "moffat", "NOISESIG": 0.002}
# pixels off the centre (0-based), where a distortion moves the sky position most
PIXELS = np.array([[0.0, 0.0], [199.0, 199.0], [0.0, 199.0], [199.0, 0.0], [30.0, 170.0], [99.5, 99.5]])


def sip_cards(order: int = 4) -> dict:
    """A TAN-SIP distortion of ``order`` with its inverse (order 4: 52 cards)."""
    cards: dict = {"A_ORDER": order, "B_ORDER": order, "AP_ORDER": order, "BP_ORDER": order}
    terms = [(p, q) for p in range(order + 1) for q in range(order + 1 - p) if p + q >= 2]
    for prefix, sign in (("A", 1), ("B", -1), ("AP", -1), ("BP", 1)):
        cards.update({f"{prefix}_{p}_{q}": sign * 0.03 / 60.0 ** (p + q - 1) for p, q in terms})
    return cards


def tpv_cards() -> dict:
    """The TPV polynomial PV1_0..39 and PV2_0..39 (80 cards), identity plus small terms."""
    return {
        f"PV{axis}_{m}": (1.0 if m == 1 else 0.0 if m in (0, 2, 3) else 0.3 / m)
        for axis in (1, 2)
        for m in range(40)
    }


def distorted_set(root, distortion: dict, ctype_suffix: str):
    """One object of euclid-sglc2 whose VIS file has the distortion, the data cards (after it, as the
    trial's file had them) and the simulator's PSF and noise cards."""
    source = write_set(EUCLID, root / "src", [OBJECT])
    path = band_file(EUCLID, source, OBJECT, "VIS")
    with fits.open(path) as hdus:
        header, image = hdus[0].header.copy(), hdus[0].data.copy()
    header["CTYPE1"], header["CTYPE2"] = "RA---" + ctype_suffix, "DEC--" + ctype_suffix
    header.update(distortion)
    header.update(DATA_CARDS)
    header.update(DESCRIBING)
    fits.PrimaryHDU(image, header=header).writeto(path, overwrite=True)
    return source, path


def world(header) -> np.ndarray:
    return WCS(header).all_pix2world(PIXELS, 0)


@pytest.mark.parametrize(
    ("distortion", "suffix"), [(sip_cards(), "TAN-SIP"), (tpv_cards(), "TPV")], ids=["sip-order-4", "tpv-80"]
)
def test_many_distortion_cards_keep_the_data_cards_and_the_whole_wcs(
    distortion, suffix, tmp_path, dask_client, capsys
):
    source, path = distorted_set(tmp_path, distortion, suffix)
    original = fits.getheader(path)
    undistorted = original.copy()
    for key in distortion:
        del undistorted[key]
    undistorted["CTYPE1"], undistorted["CTYPE2"] = "RA---TAN", "DEC--TAN"
    corner_shift = np.abs(world(original) - world(undistorted))[:4].max() * 3600
    assert corner_shift > 0.05, corner_shift  # the distortion matters off-centre (arcsec)
    store = tmp_path / "s.zarr"
    report = ingest(EUCLID, source, store, dask_client)
    assert not [reason for reason in report.reasons if "left out" in reason]
    assert open_store(store).attrs["band_units"]["VIS"] == "e-/s"  # trial: ''
    assert main(["cutout", str(store), str(OBJECT), "--out", str(tmp_path / "cut")]) == 0
    capsys.readouterr()
    written = fits.getheader(tmp_path / "cut" / f"{OBJECT}_VIS.fits")
    for key in [*distortion, *DATA_CARDS, *DESCRIBING, "RA", "DEC", "CTYPE1", "CRPIX1", "CRVAL2"]:
        assert written[key] == original[key], key
    np.testing.assert_array_equal(world(written), world(original))
    assert WCS(written).wcs.compare(WCS(original).wcs)


def test_a_store_with_less_room_drops_the_distortion_whole_and_keeps_the_data_cards(
    tmp_path, dask_client, monkeypatch, capsys
):
    """A store made before the room grew (64 cards a band): the SIP terms do not fit with the data
    cards, so they are left out whole (the WCS is the undistorted TAN, said in a COMMENT, the ingest
    reasons and the cutout's line), never cut part way, and no data card is lost to them."""
    import pipeline.store.zarr_store as zarr_store

    source, path = distorted_set(tmp_path, sip_cards(), "TAN-SIP")
    original = fits.getheader(path)
    store = tmp_path / "old.zarr"
    with monkeypatch.context() as patch:
        patch.setattr(zarr_store, "HEADER_BYTES", 64 * 80)  # the store as lenshunt made it before
        zarr_store.create_store(store, EUCLID, source=str(source))
    report = ingest(EUCLID, source, store, dask_client)
    assert open_store(store)["header_cards"].shape[-1] == 64 * 80
    (reason,) = [reason for reason in report.reasons if reason.startswith("VIS: header cards")]
    assert "SIP distortion (52 cards) left out whole" in reason
    assert report.n_flagged == 0  # said all the same (the report lists reasons of flagged objects only)
    assert (
        "  warning: VIS: 1 object(s)' kept header cards did not all fit the store (a store made today holds "
        "256), 1 of them losing their distortion whole; e.g. header cards over the store's 64 per band"
    ) in report.summary()
    assert open_store(store).attrs["band_units"]["VIS"] == "e-/s"
    assert main(["cutout", str(store), str(OBJECT), "--out", str(tmp_path / "cut")]) == 0
    printed = capsys.readouterr().out
    assert "written with the undistorted WCS" in printed
    assert "ingest the files into a new store, which holds them" in printed
    written = fits.getheader(tmp_path / "cut" / f"{OBJECT}_VIS.fits")
    for key in [*DATA_CARDS, *DESCRIBING, "RA", "DEC", "CRPIX1", "CRVAL2", "CDELT1"]:
        assert written[key] == original[key], key
    assert not [key for key in written if key.startswith(("A_", "B_", "AP_", "BP_"))]  # none, not part
    assert (written["CTYPE1"], written["CTYPE2"]) == ("RA---TAN", "DEC--TAN")
    assert any(str(line).startswith(DISTORTION_DROPPED) for line in written["COMMENT"])
    centre = WCS(written).all_pix2world([[99.5, 99.5]], 0)
    np.testing.assert_allclose(centre, WCS(original).all_pix2world([[99.5, 99.5]], 0), rtol=0, atol=1e-12)


def test_a_distortion_larger_than_a_new_store_is_not_sent_to_a_new_store(tmp_path, dask_client, capsys):
    """Trial: a SIP of order 10 with its inverse (260 cards) in a store made today was left out whole,
    rightly, but the cutout's line said to ingest into a new store, which holds no more."""
    source, _ = distorted_set(tmp_path, sip_cards(10), "TAN-SIP")
    store = tmp_path / "s.zarr"
    ingest(EUCLID, source, store, dask_client)
    assert main(["cutout", str(store), str(OBJECT), "--out", str(tmp_path / "cut")]) == 0
    printed = capsys.readouterr().out
    assert "written with the undistorted WCS" in printed and "new store" not in printed
    assert "its header has more cards than a store holds (256 a band)" in printed


def _image(key: str, value) -> str:
    return fits.Card(key, value).image


def test_cards_that_define_the_data_come_before_those_that_describe_it():
    """Over the room, the WCS core, frame, units and calibration are kept before FILTER or the PSF
    cards wherever they stand in the file, and the cards chosen keep their file order."""
    describing = [_image("FILTER", "VIS"), _image("PSF_FWHM", 0.2), _image("SEEING", 0.2), _image("NX", 200)]
    data = [_image("CTYPE1", "RA---TAN"), _image("CTYPE2", "DEC--TAN"), _image("BUNIT", "e-/s")]
    data += [_image("MAGZP", 24.5), _image("RADESYS", "ICRS")]
    chosen, note = choose_cards(describing + data, 6)
    keys = [chosen[i : i + 8].decode().strip() for i in range(0, len(chosen), 80)]
    assert keys == ["FILTER", "CTYPE1", "CTYPE2", "BUNIT", "MAGZP", "RADESYS"]
    assert "3 other card(s) left out (NX, PSF_FWHM, SEEING)" in note
    assert choose_cards(describing + data, 9) == ("".join(describing + data).encode(), None)


def test_a_tpv_distortion_that_does_not_fit_is_left_out_whole():
    """The PV polynomial of a TPV projection is left out whole (CTYPE becomes TAN); PV cards of
    another projection are its parameters, kept with the core."""
    core = [_image("CTYPE1", "RA---TPV"), _image("CTYPE2", "DEC--TPV"), _image("BUNIT", "Jy")]
    pv = [_image(f"PV{axis}_{m}", 0.1) for axis in (1, 2) for m in range(5)]
    chosen, note = choose_cards(core + pv, 8)
    header = fits.Header.fromstring(chosen.decode())
    assert (header["CTYPE1"], header["CTYPE2"], header["BUNIT"]) == ("RA---TAN", "DEC--TAN", "Jy")
    assert "PV1_0" not in header and "TPV distortion (10 cards) left out whole" in note
    zpn = [_image("CTYPE1", "RA---ZPN"), _image("CTYPE2", "DEC--ZPN")]
    chosen, note = choose_cards(zpn + pv + [_image("FILTER", "r")], 12)
    assert fits.Header.fromstring(chosen.decode())["PV2_4"] == 0.1 and note.endswith("(FILTER)")
