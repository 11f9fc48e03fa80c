"""Header checks remembered by their cards (pipeline.sources.card_memo) give what they give afresh.

Ingest checks every band's WCS (BAD_WCS), pixel scale and aspect (PIXEL_SCALE_MISMATCH), unit and
zero point. The files of a set repeat those cards, so for headers of the fast reader the answers are
remembered by the card images read; these tests hold the remembered answers to the fresh ones (and
the pixel scale to astropy's) on real FITS files, odd WCS included, and check that the work is done
once per distinct set of cards (before: once per file).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from pipeline.sources import headers, wcs_check
from pipeline.sources.fast_fits import NotSimpleImageError, RawHeader, read_simple_image
from pipeline.sources.fits_io import read_band
from schemas.layout import CoordinateSpec

SAMPLES = Path(__file__).parent / "data" / "sglc1-samples"
DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"), CoordinateSpec(ra="CRVAL1", dec="CRVAL2"))
BASE = {"CRPIX1": 33.5, "CRPIX2": 33.5, "CRVAL1": 150.0, "CRVAL2": 2.0, "BUNIT": "Jy", "MAGZP": 23.9}
TAN = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"}
S = 0.1 / 3600
HEADERS = {
    "CDELT": {**TAN, "CDELT1": -S, "CDELT2": S, "RADESYS": "ICRS", "CUNIT1": "deg", "CUNIT2": "deg"},
    "CD rotated": {**TAN, "CD1_1": -S * 0.8, "CD1_2": S * 0.6, "CD2_1": S * 0.6, "CD2_2": S * 0.8},
    "CD one element": {**TAN, "CD1_1": -S},
    "PC and CDELT, oblong": {
        **TAN,
        "CDELT1": -0.07 / 3600,
        "CDELT2": 0.143 / 3600,
        "PC1_1": 0.7071,
        "PC1_2": -0.7071,
        "PC2_1": 0.7071,
        "PC2_2": 0.7071,
    },
    "CROTA2": {**TAN, "CDELT1": -S, "CDELT2": S, "CROTA2": 30.0},
    "SIP": {
        "CTYPE1": "RA---TAN-SIP",
        "CTYPE2": "DEC--TAN-SIP",
        "CDELT1": -S,
        "CDELT2": S,
        "A_ORDER": 2,
        "B_ORDER": 2,
        "A_2_0": 1e-6,
        "B_0_2": -1e-6,
    },
    "galactic, arcsec": {
        "CTYPE1": "GLON-CAR",
        "CTYPE2": "GLAT-CAR",
        "CUNIT1": "arcsec",
        "CUNIT2": "arcsec",
        "CDELT1": -0.2,
        "CDELT2": 0.2,
    },
    "FK5": {**TAN, "CDELT1": -S, "CDELT2": S, "RADESYS": "FK5", "EQUINOX": 2000.0},
    "no WCS": {},
    "linear": {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CDELT1": 1.0, "CDELT2": 1.0},
    "unknown projection, zero scale": {"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CDELT1": 0.0},
    "singular CD": {**TAN, "CD1_1": 1e-5, "CD1_2": 2e-5, "CD2_1": 1e-5, "CD2_2": 2e-5},
    "unknown frame": {**TAN, "CDELT1": -S, "CDELT2": S, "RADESYS": "XYZ"},
    "other zero point": {**TAN, "CDELT1": -S, "CDELT2": S, "ZP": 25.0, "PHOTZP": 30.0, "MAGZP": None},
    "CDELT text": {**TAN, "CDELT1": "abc", "CDELT2": S},
    "CD turned, no diagonal": {**TAN, "CD1_2": S, "CD2_1": S},
    "DEC first, CROTA1": {
        "CTYPE1": "DEC--TAN",
        "CTYPE2": "RA---TAN",
        "CRVAL1": 2.0,
        "CRVAL2": 150.0,
        "CDELT1": S,
        "CDELT2": -S,
        "CROTA1": 30.0,
    },
    "LONPOLE": {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CDELT1": -S, "CDELT2": S, "LONPOLE": 150.0},
}


def _write(path: Path, cards: dict) -> Path:
    header = fits.Header({**BASE, **{key: value for key, value in cards.items() if value is not None}})
    for key in [key for key, value in cards.items() if value is None]:
        header.remove(key, ignore_missing=True)
    image = np.random.default_rng(1).standard_normal((66, 66)).astype(np.float32)
    fits.PrimaryHDU(image, header).writeto(path, overwrite=True)
    return path


def _files(tmp_path: Path) -> list[Path]:
    files = [_write(tmp_path / f"h{i}.fits", cards) for i, cards in enumerate(HEADERS.values())]
    return files + sorted(SAMPLES.glob("*.fits"))


def _raw_header(path: Path) -> RawHeader:
    try:
        return read_simple_image(path).header
    except NotSimpleImageError:  # a file of the general readers: its primary header's cards
        with fits.open(path) as hdus:
            text = "".join(card.image for card in hdus[0].header.cards)
        return RawHeader([text[i : i + 80] for i in range(0, len(text), 80)])


def _astropy_header(path: Path) -> fits.Header:
    with fits.open(path) as hdus:
        return hdus[0].header.copy()


REMEMBERED = [
    wcs_check.card_defect,
    headers._read_values,
    headers.longest_pixel_side_deg,
    headers.pixel_matrix_deg,
]


class _Recording:
    """A header that records the keywords read, and refuses to be read as a whole."""

    def __init__(self, header: RawHeader) -> None:
        self.header, self.read = header, set()

    def __contains__(self, keyword: str) -> bool:
        self.read.add(keyword.upper())
        return keyword in self.header

    def __getitem__(self, keyword: str) -> object:
        self.read.add(keyword.upper())
        return self.header[keyword]

    def get(self, keyword: str, default: object = None) -> object:
        self.read.add(keyword.upper())
        return self.header.get(keyword, default)


@pytest.mark.parametrize("function", REMEMBERED, ids=lambda f: f.__name__)
def test_a_remembered_check_reads_only_the_keywords_it_is_remembered_by(tmp_path, function):
    for path in _files(tmp_path):
        recording = _Recording(_raw_header(path))
        function.uncached(recording)
        assert recording.read <= set(function.keywords), (path.name, recording.read - set(function.keywords))


@pytest.mark.parametrize("function", REMEMBERED, ids=lambda f: f.__name__)
def test_remembered_answers_are_the_fresh_ones_and_astropy_headers_agree(tmp_path, function):
    files = _files(tmp_path)
    for _ in range(2):  # the second round is answered from memory
        for path in files:
            raw, astropy_header = _raw_header(path), _astropy_header(path)
            fresh = function.uncached(_raw_header(path))
            assert _same(function(raw), fresh), path.name
            assert _same(function(astropy_header), fresh), path.name


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


def test_the_pixel_scale_agrees_with_astropy_on_odd_wcs(tmp_path):
    for name, cards in HEADERS.items():
        if "CTYPE1" not in cards or wcs_check.wcs_defect(cards) or "LINEAR" in cards["CTYPE1"]:
            continue
        path = _write(tmp_path / "scale.fits", cards)
        summary = headers.summarise_header(read_simple_image(path).header)
        expected = math.sqrt(proj_plane_pixel_area(WCS(_astropy_header(path)).celestial))
        assert summary.pixel_scale_arcsec == pytest.approx(expected * 3600, rel=1e-9), name


def test_a_changed_card_is_not_answered_from_memory(tmp_path):
    good = _write(tmp_path / "good.fits", HEADERS["CDELT"])
    zero = _write(tmp_path / "zero.fits", {**HEADERS["CDELT"], "CDELT1": 0.0})
    for path, defect in ((good, None), (zero, "a singular pixel matrix (CDELT1 = 0)"), (good, None)):
        assert wcs_check.wcs_defect(read_simple_image(path).header) == defect
    assert headers.summarise_header(read_simple_image(zero).header).pixel_scale_arcsec != pytest.approx(0.1)


def test_files_sharing_their_wcs_cards_are_checked_once(tmp_path, monkeypatch):
    """Before: every file's WCS, pixel matrix and zero point were worked out afresh (about 40 us a file)."""
    calls = {"matrix": 0, "scale": 0}
    matrix_defect, pixel_matrix = wcs_check._matrix_defect, headers._pixel_matrix

    def counted_defect(header):  # type: ignore[no-untyped-def]
        calls["matrix"] += 1
        return matrix_defect(header)

    def counted_matrix(values):  # type: ignore[no-untyped-def]
        calls["scale"] += 1
        return pixel_matrix(values)

    monkeypatch.setattr(wcs_check, "_matrix_defect", counted_defect)
    monkeypatch.setattr(headers, "_pixel_matrix", counted_matrix)
    cards = {**HEADERS["CDELT"], "CDELT1": -0.1234 / 3600, "CDELT2": 0.1234 / 3600}  # new to the memory
    for i in range(12):  # each file its own position, as the cutouts of a set
        path = _write(tmp_path / f"c{i}.fits", {**cards, "CRVAL1": 150 + i / 100, "RA": 150 + i / 100})
        result = read_band(path, (66, 66), coordinates=DEG)
        assert result.flags == 0 and result.ra_deg == pytest.approx(150 + i / 100)
        assert result.header.pixel_scale_arcsec == pytest.approx(0.1234)
    assert calls == {"matrix": 1, "scale": 1}


def test_a_simple_files_cards_are_checked_without_building_its_records(tmp_path, monkeypatch):
    """Before: every file read by the fast reader had its header made into fitsio-style records (about
    50 of the 135 us of reading a file) only to look for cards astropy cannot parse; such a card
    still hands the file to the general readers, which name it."""
    from pipeline.sources.fast_fits import RawHeader

    built = []
    records = RawHeader.records
    monkeypatch.setattr(RawHeader, "records", lambda self: built.append(1) or records(self))
    path = _write(tmp_path / "plain.fits", {**HEADERS["CDELT"], "RA": 150.0, "DEC": 2.0})
    result = read_band(path, (66, 66), coordinates=DEG)
    assert (result.flags, result.header.bunit, built) == (0, "Jy", [])
    raw = path.read_bytes()
    card = fits.Card("BUNIT", "Jy").image.encode("ascii")
    path.write_bytes(raw.replace(card, b"BUNIT   =                1.2.3".ljust(80)))
    result = read_band(path, (66, 66), coordinates=DEG)
    assert result.image is not None and result.flags == 0
    assert any("unparsable card(s) BUNIT" in reason for reason in result.extra_reasons)
