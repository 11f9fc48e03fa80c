"""The fast reader of plain float images gives what fitsio and astropy give, for every kind of file.

Each file kind is read by :func:`pipeline.sources.read_band` twice: as it is (the fast reader
first) and with the fast reader switched off (fitsio, then astropy). Pixels, flags, reasons,
positions and kept header cards must be equal, and the plain images must really go through the
fast reader (a spy counts what it read itself).
"""

from __future__ import annotations

import gzip
import math
import warnings

import numpy as np
import pytest
from astropy.io import fits

from pipeline.flags import Flag
from pipeline.sources import fits_io, read_band
from pipeline.sources.fast_fits import (
    NotSimpleImageError,
    RawHeader,
    card_value,
    read_simple_image,
)
from schemas.layout import CoordinateSpec

DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"), CoordinateSpec(ra="CRVAL1", dec="CRVAL2"))
RAD = (CoordinateSpec(ra="RA", dec="DEC", unit="rad"),)
SHAPE = (40, 50)


def _image(dtype=np.float32, seed=0):
    return (np.random.default_rng(seed).standard_normal(SHAPE) * 1e-11).astype(dtype)


def _wcs_header(**extra):
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"], header["CRPIX2"] = 25.5, 20.5
    header["CRVAL1"], header["CRVAL2"] = 150.25, -2.5
    header["CD1_1"], header["CD2_2"] = -2.7778e-05, 2.7778e-05
    header["BUNIT"] = "electron/s"
    header["MAGZP"] = 30.0
    for key, value in extra.items():
        header[key] = value
    return header


def _plain(path):
    fits.PrimaryHDU(_image(), _wcs_header(RA=150.1, DEC=-2.4)).writeto(path)


def _float64(path):
    fits.PrimaryHDU(_image(np.float64), _wcs_header()).writeto(path)


def _nans(path):
    image = _image()
    image[3, :7] = np.nan
    image[10, 10] = np.inf
    fits.PrimaryHDU(image, _wcs_header()).writeto(path)


def _all_nan(path):
    fits.PrimaryHDU(np.full(SHAPE, np.nan, np.float32), _wcs_header()).writeto(path)


def _odd_cards(path):
    header = _wcs_header(RA=150.1, DEC=-2.4)
    header["COMMENT"] = "a comment with = signs and 'quotes'"
    header["HISTORY"] = "made by a test"
    header["OBSERVER"] = "O'Hara"  # an escaped quote
    header["HIERARCH range x"] = 12.5
    header["LONGSTR"] = "x" * 100  # a CONTINUE card: the general readers decide
    fits.PrimaryHDU(_image(), header).writeto(path)


def _hierarch_and_d_exponent(path):
    header = _wcs_header()
    header["HIERARCH range x"] = 12.5
    fits.PrimaryHDU(_image(), header).writeto(path)
    data = bytearray(path.read_bytes())
    card = data.index(b"MAGZP   =")
    data[card : card + 80] = b"MAGZP   =              3.0D+01 / Fortran exponent".ljust(80)
    path.write_bytes(bytes(data))


def _unparsable_card(path):
    _plain(path)
    data = bytearray(path.read_bytes())
    card = data.index(b"MAGZP   =")
    data[card : card + 80] = b"MAGZP   =                12 34".ljust(80)
    path.write_bytes(bytes(data))


def _radians(path):
    header = _wcs_header(RA=math.radians(150.1), DEC=math.radians(-2.4))
    fits.PrimaryHDU(_image(), header).writeto(path)


def _scaled_float(path):
    hdu = fits.PrimaryHDU(_image(), _wcs_header())
    hdu.header["BSCALE"], hdu.header["BZERO"] = 2.0, 1e-12
    hdu.writeto(path)


def _blank_int(path):
    counts = np.arange(SHAPE[0] * SHAPE[1], dtype=np.int16).reshape(SHAPE)
    counts[0, :3] = -32768
    hdu = fits.PrimaryHDU(counts, _wcs_header())
    hdu.header["BLANK"] = -32768
    hdu.writeto(path)


def _scaled_unsigned(path):
    fits.PrimaryHDU(np.arange(SHAPE[0] * SHAPE[1], dtype=np.uint16).reshape(SHAPE), _wcs_header()).writeto(
        path
    )


def _wrong_shape(path):
    fits.PrimaryHDU(np.zeros((30, 30), np.float32), _wcs_header()).writeto(path)


def _degenerate_axis(path):
    fits.PrimaryHDU(_image()[None], _wcs_header()).writeto(path)


def _extension(path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_image(), _wcs_header())]).writeto(path)


def _tile_compressed(path):
    hdu = fits.CompImageHDU(_image(), _wcs_header(), compression_type="GZIP_2", quantize_level=0.0)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)


def _gzipped(path):
    _plain(path.with_suffix(".tmp"))
    path.write_bytes(gzip.compress(path.with_suffix(".tmp").read_bytes()))
    path.with_suffix(".tmp").unlink()


def _truncated(path):
    _plain(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])


def _truncated_header(path):
    _plain(path)
    path.write_bytes(path.read_bytes()[:1000])


def _no_end(path):
    header = fits.PrimaryHDU(_image(), _wcs_header()).header.tostring()
    path.write_bytes(header.replace("END" + " " * 77, " " * 80).encode() + _image().astype(">f4").tobytes())


KINDS = {
    "plain": (_plain, True),
    "float64": (_float64, True),
    "some NaN": (_nans, True),
    "all NaN": (_all_nan, True),
    "radians": (_radians, True),
    "HIERARCH and D exponent": (_hierarch_and_d_exponent, True),
    "unparsable card": (_unparsable_card, True),  # read, then handed over at the card
    "wrong shape": (_wrong_shape, True),
    "CONTINUE and commentary cards": (_odd_cards, False),
    "scaled float": (_scaled_float, False),
    "BLANK int16": (_blank_int, False),
    "scaled unsigned": (_scaled_unsigned, False),
    "degenerate axis": (_degenerate_axis, False),
    "image in an extension": (_extension, False),
    "tile compressed": (_tile_compressed, False),
    "gzip": (_gzipped, True),  # its decompressed bytes, CRC checked (pipeline.sources.compressed)
    "truncated data": (_truncated, False),
    "truncated header": (_truncated_header, False),
    "no END card": (_no_end, False),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_reader_agrees_with_the_general_readers(tmp_path, monkeypatch, kind):
    make, fast_reads_it = KINDS[kind]
    path = tmp_path / "cutout.fits"
    make(path)
    coordinates = RAD if kind == "radians" else DEG
    read_fast = []
    real_read_fast = fits_io._read_fast

    def spy(*args):
        found = real_read_fast(*args)
        read_fast.append(found)
        return found

    monkeypatch.setattr(fits_io, "_read_fast", spy)
    fast = read_band(path, SHAPE, coordinates=coordinates)

    def refuse(*args):
        raise NotSimpleImageError("switched off")

    monkeypatch.setattr(fits_io, "_read_fast", refuse)
    general = read_band(path, SHAPE, coordinates=coordinates)
    assert bool(read_fast) == fast_reads_it
    assert (fast.flags, fast.reason, fast.extra_reasons) == (
        general.flags,
        general.reason,
        general.extra_reasons,
    )
    assert (fast.position_problem, fast.header) == (general.position_problem, general.header)
    np.testing.assert_equal(fast.ra_deg, general.ra_deg)
    np.testing.assert_equal(fast.dec_deg, general.dec_deg)
    if general.image is None:
        assert fast.image is None
    else:
        assert fast.image.dtype == np.float32 and fast.image.dtype.isnative
        np.testing.assert_array_equal(fast.image, general.image)


def test_fast_reader_pixels_equal_astropy(tmp_path):
    for make in (_plain, _float64, _nans):
        path = tmp_path / f"{make.__name__}.fits"
        make(path)
        result = read_band(path, SHAPE, coordinates=DEG)
        np.testing.assert_array_equal(
            result.image,
            np.where(np.isfinite(fits.getdata(path)), fits.getdata(path), np.nan).astype(np.float32),
        )
    path = tmp_path / "_plain.fits"
    assert read_band(path, SHAPE, coordinates=DEG).ra_deg == pytest.approx(150.1)
    assert read_band(path, SHAPE, coordinates=DEG).header.zero_point == 30.0


def test_real_challenge_cutouts_go_through_the_fast_reader(real_samples):
    for name in ("imageEUC_VIS-100002.fits", "imageSDSS_R-100002.fits"):
        image = read_simple_image(real_samples / name, (101, 101))
        reference = fits.getheader(real_samples / name)
        np.testing.assert_array_equal(image.data, fits.getdata(real_samples / name))
        for card in reference.cards:
            if card.keyword and card.keyword not in ("COMMENT", "HISTORY"):
                assert image.header[card.keyword] == card.value, card.keyword


@pytest.mark.parametrize(
    "card",
    [
        "A       =                    T / logical",
        "A       =                    F",
        "A       =                  -42 / integer",
        "A       =            1.5E-03 / real",
        "A       =             -1.5D+03",
        "A       =                  .5 ",
        "A       =                  1.  ",
        "A       = 'O''Hara  '         / escaped quote, trailing blanks",
        "A       = '  lead'",
        "A       = ''                   / empty string",
        "A       =                      / no value",
        "A       = (1.0, 2.0)           / complex",
        "A       = 12 34",
        "HIERARCH ESO DET CHIP = 'x'",
    ],
)
def test_card_values_are_astropys(card):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = fits.Card.fromstring(card.ljust(80)).value
        except Exception:  # unparsable for astropy too: the fast reader hands the file over
            with pytest.raises(NotSimpleImageError):
                card_value(card.ljust(80))
            return
    got = card_value(card.ljust(80))
    if isinstance(expected, fits.card.Undefined):
        assert got is None or isinstance(got, fits.card.Undefined)
    else:
        assert got == expected and type(got) is type(expected)


def test_raw_header_first_card_wins_and_is_case_blind():
    cards = [
        c.ljust(80)
        for c in (
            "SIMPLE  =                    T",
            "KEY     =                    1",
            "KEY     =                    2",
        )
    ]
    header = RawHeader(cards)
    assert header["key"] == 1 and "Key" in header and header.get("NOPE", 7) == 7
    assert [r["value"] for r in header.records()] == [True, 1, 2]


def test_refusals_name_the_kind(tmp_path):
    _blank_int(tmp_path / "int.fits")
    with pytest.raises(NotSimpleImageError):
        read_simple_image(tmp_path / "int.fits")
    result = read_band(tmp_path / "int.fits", SHAPE)
    assert result.flags & Flag.NULL_PIXELS
