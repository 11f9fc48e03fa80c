"""Reading real FITS variants, and turning bad files into flags instead of errors."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from astropy.io import fits

from pipeline.flags import UNUSABLE, Flag
from pipeline.flags import documentation as flag_documentation
from pipeline.sources import read_band
from schemas.layout import CoordinateSpec, load_layout

DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"),)
RAD = (CoordinateSpec(ra="RA", dec="DEC", unit="rad"), CoordinateSpec(ra="CRVAL1", dec="CRVAL2"))


def _image(shape=(66, 66), seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 1e-11).astype(np.float32)


def test_real_challenge_cutouts_read_unchanged(real_samples):
    for name, layout_name in [
        ("imageEUC_VIS-100002.fits", "sglc1-space"),
        ("imageSDSS_R-100002.fits", "sglc1-ground"),
    ]:
        layout = load_layout(layout_name)
        path = real_samples / name
        result = read_band(  # its WCS a declared placeholder: not compared with the cards
            path,
            (101, 101),
            masked_value=layout.masked_value,
            coordinates=layout.coordinates,
            wcs_position=layout.wcs_position,
        )
        reference = fits.getdata(path)
        assert result.flags == 0 and result.image.dtype == np.float32
        assert result.image.dtype.byteorder in "=|"  # native order, unlike astropy's >f4
        np.testing.assert_array_equal(result.image, reference.astype(np.float32))
        header = fits.getheader(path)
        assert result.ra_deg == pytest.approx(math.degrees(header["RA"]) % 360)
        assert result.dec_deg == pytest.approx(math.degrees(header["DEC"]))
        assert 1e-12 < np.abs(result.image).max() < 1e-9


def test_scaled_integers_are_unscaled(tmp_path):
    counts = np.arange(66 * 66, dtype=np.int16).reshape(66, 66)
    hdu = fits.PrimaryHDU(counts)
    hdu.header["BSCALE"], hdu.header["BZERO"] = 1e-13, 5e-12
    hdu.writeto(tmp_path / "scaled.fits")
    result = read_band(tmp_path / "scaled.fits", (66, 66))
    np.testing.assert_allclose(result.image, counts * 1e-13 + 5e-12, rtol=1e-6)


def test_big_endian_and_tile_compressed(tmp_path):
    image = _image()
    fits.PrimaryHDU(image.astype(">f4")).writeto(tmp_path / "be.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, compression_type="GZIP_2")]).writeto(
        tmp_path / "tiled.fits"
    )
    # Float tile compression quantises: the reference is what astropy decodes from the file.
    expected = {"be.fits": image, "tiled.fits": fits.getdata(tmp_path / "tiled.fits", ext=1)}
    for name, reference in expected.items():
        result = read_band(tmp_path / name, (66, 66))
        assert result.flags == Flag.NO_COORDINATES
        np.testing.assert_allclose(result.image, reference, rtol=0, atol=1e-20)
    np.testing.assert_allclose(expected["tiled.fits"], image, atol=2e-12)


def test_coordinates_in_degrees_and_radians(tmp_path):
    header = fits.Header({"RA": math.radians(-10.0), "DEC": math.radians(20.0)})
    fits.PrimaryHDU(_image(), header=header).writeto(tmp_path / "rad.fits")
    result = read_band(tmp_path / "rad.fits", (66, 66), coordinates=RAD)
    assert (result.ra_deg, result.dec_deg) == (pytest.approx(350.0), pytest.approx(20.0))
    # CRVAL without a celestial CTYPE is no sky position (FITS defaults CTYPE to linear), and a WCS
    # left incomplete (BAD_WCS: tests/test_orientation.py)
    header = fits.Header({"CRVAL1": 150.5, "CRVAL2": 2.25})
    fits.PrimaryHDU(_image(), header=header).writeto(tmp_path / "crval.fits")
    result = read_band(tmp_path / "crval.fits", (66, 66), coordinates=RAD)
    assert result.flags == Flag.NO_COORDINATES | Flag.BAD_WCS and math.isnan(result.ra_deg)
    assert "WCS cards CRVAL1, CRVAL2 without CTYPE1/CTYPE2" in result.position_problem
    # A celestial WCS centred on the image gives its CRVAL, with or without a CRVAL spec.
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 33.5, "CRPIX2": 33.5})
    header.update({"CDELT1": -1e-4, "CDELT2": 1e-4})
    fits.PrimaryHDU(_image(), header=header).writeto(tmp_path / "wcs.fits")
    for coordinates in (RAD, DEG):
        result = read_band(tmp_path / "wcs.fits", (66, 66), coordinates=coordinates)
        assert (result.ra_deg, result.dec_deg, result.flags) == (150.5, 2.25, 0)


@pytest.mark.parametrize(
    ("make", "flag", "reason"),
    [
        (lambda p: None, Flag.MISSING_FILE, "missing file"),
        (lambda p: p.write_bytes(b""), Flag.UNREADABLE, "empty file"),
        (lambda p: os.mkfifo(p), Flag.UNREADABLE, "not a regular file (a named pipe)"),  # was "empty file"
        (lambda p: p.write_bytes(b"not a fits file at all" * 200), Flag.UNREADABLE, "not a FITS file"),
        (lambda p: _truncate(p), Flag.TRUNCATED, "truncated file"),
        (
            lambda p: fits.PrimaryHDU(_image((64, 66))).writeto(p),
            Flag.WRONG_SHAPE,
            "shape (64, 66) != (66, 66)",
        ),
        (
            lambda p: fits.PrimaryHDU(np.full((66, 66), np.nan, "f4")).writeto(p),
            Flag.ALL_NONFINITE,
            "all pixels",
        ),
        (
            lambda p: fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU()]).writeto(p),
            Flag.UNREADABLE,
            "no image HDU",
        ),
        (lambda p: p.write_bytes(PNG), Flag.UNREADABLE, "not a FITS file"),
        (lambda p: _without_end_card(p), Flag.UNREADABLE, "not a FITS file"),
        (lambda p: p.write_bytes(b"SIMPLE  = T" + b" " * 69 + b"END" + b" " * 2877), Flag.UNREADABLE, ""),
        (lambda p: p.write_bytes(bytes(range(256)) * 40), Flag.UNREADABLE, "not a FITS file"),
        (lambda p: p.mkdir(), Flag.UNREADABLE, ""),
        (lambda p: _bad_bitpix(p), Flag.UNREADABLE, ""),
        (lambda p: fits.PrimaryHDU(_image((3, 66, 66))).writeto(p), Flag.WRONG_SHAPE, "3 axes"),
    ],
)
def test_bad_files_become_flags(tmp_path, make, flag, reason):
    path = tmp_path / "bad.fits"
    make(path)
    result = read_band(path, (66, 66), coordinates=DEG)
    assert result.image is None
    assert result.flags & flag
    assert reason in result.reason


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def _without_end_card(path):
    """A FITS file whose header lacks its END card: cfitsio's reader raised UnicodeDecodeError."""
    header = fits.PrimaryHDU(_image()).header.tostring()
    path.write_bytes(header.replace("END" + " " * 77, " " * 80).encode() + _image().astype(">f4").tobytes())


def _bad_bitpix(path):
    fits.PrimaryHDU(_image()).writeto(path)
    data = bytearray(path.read_bytes())
    card = data.index(b"BITPIX")
    data[card : card + 80] = b"BITPIX  =                   17".ljust(80)
    path.write_bytes(bytes(data))


def _truncate(path):
    fits.PrimaryHDU(_image()).writeto(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 8000])


def test_partial_nan_and_masked_pixels_are_kept_as_nan(tmp_path):
    image = _image((101, 101))
    image[0, :5] = np.nan
    image[10:12, 10:12] = 100.0
    fits.PrimaryHDU(image).writeto(tmp_path / "masked.fits")
    result = read_band(tmp_path / "masked.fits", (101, 101), masked_value=100.0)
    assert result.flags == Flag.SOME_NONFINITE | Flag.MASKED_PIXELS | Flag.NO_COORDINATES
    assert np.isnan(result.image).sum() == 5 + 4
    assert np.isfinite(result.image[50, 50])
    assert "some pixels NaN" in (result.reason, *result.extra_reasons)


def test_pixels_hidden_at_the_centre_are_flagged_apart_from_those_elsewhere(tmp_path):
    """Trial: a NaN patch on the lens galaxy (a masked saturated core) was only SOME_NONFINITE, like
    a NaN row at the edge; the model sees sky where the lens is."""
    core = _image((200, 200))
    core[97:103, 97:103] = np.nan
    fits.PrimaryHDU(core).writeto(tmp_path / "core.fits")
    result = read_band(tmp_path / "core.fits", (200, 200), position=False)
    assert result.flags == Flag.SOME_NONFINITE | Flag.CENTRE_NONFINITE
    assert "pixels at the centre NaN, infinite, null or masked" in result.extra_reasons
    edge = _image((200, 200))
    edge[0, :] = edge[89, 89] = edge[110, 110] = np.nan  # just outside the 20-pixel central box
    fits.PrimaryHDU(edge).writeto(tmp_path / "edge.fits")
    assert read_band(tmp_path / "edge.fits", (200, 200), position=False).flags == Flag.SOME_NONFINITE
    masked = _image((101, 101))
    masked[50, 50] = 100.0  # the layout's masked value, on the centre pixel of a SLFC1 cutout
    fits.PrimaryHDU(masked).writeto(tmp_path / "masked.fits")
    result = read_band(tmp_path / "masked.fits", (101, 101), masked_value=100.0, position=False)
    assert result.flags == Flag.MASKED_PIXELS | Flag.CENTRE_NONFINITE
    for column, inside in ((45, True), (55, True), (44, False), (56, False)):  # 5 pixels each side (trial)
        masked = _image((101, 101))
        masked[50, column] = 100.0
        fits.PrimaryHDU(masked).writeto(tmp_path / f"m{column}.fits")
        flags = read_band(tmp_path / f"m{column}.fits", (101, 101), masked_value=100.0, position=False).flags
        assert bool(flags & Flag.CENTRE_NONFINITE) is inside, column
    counts = (np.arange(66 * 66) % 200).reshape(66, 66).astype(np.int16)
    counts[33, 33] = -32768
    hdu = fits.PrimaryHDU(counts)
    hdu.header["BLANK"] = -32768
    hdu.writeto(tmp_path / "blank.fits")
    result = read_band(tmp_path / "blank.fits", (66, 66), position=False)
    assert result.flags == Flag.NULL_PIXELS | Flag.CENTRE_NONFINITE
    assert "CENTRE_NONFINITE" in flag_documentation() and Flag.CENTRE_NONFINITE & UNUSABLE == 0


@pytest.mark.parametrize(
    ("values", "reason"),
    [((np.inf,), "some pixels infinite"), ((-np.inf, np.nan), "some pixels NaN and some infinite")],
)
def test_infinite_pixels_are_called_infinite(tmp_path, values, reason):
    """New-user trial: a file with one inf pixel was reported as 'some pixels NaN' (review: also
    when masked pixels, set to NaN first, were there)."""
    image = _image((101, 101))
    image[3, : len(values)] = values
    image[50, 50] = 100.0  # masked
    fits.PrimaryHDU(image).writeto(tmp_path / "inf.fits")
    result = read_band(tmp_path / "inf.fits", (101, 101), masked_value=100.0)
    assert result.flags & Flag.SOME_NONFINITE and np.isnan(result.image).sum() == len(values) + 1
    assert reason in (result.reason, *result.extra_reasons)


@pytest.mark.parametrize(
    ("where", "flag", "reason"),
    [
        ("all", Flag.ALL_NONFINITE, "all pixels NaN, infinite, null or masked (values beyond float32"),
        ("some", Flag.SOME_NONFINITE, "some pixels (values beyond float32's range, |x| > 3.4e+38"),
        ("some+nan", Flag.SOME_NONFINITE, "some pixels NaN (values beyond float32's range"),
    ],
)
def test_float64_pixels_beyond_float32_are_said_so_without_a_console_warning(tmp_path, where, flag, reason):
    """New-user trial: a float64 image of finite pixels near 1e289 was 'all pixels NaN, infinite, null
    or masked', and NumPy's 'overflow encountered in cast' reached the console."""
    image = _image((101, 101)).astype(np.float64)
    if where == "all":
        image[:] = np.linspace(1e288, 1e289, image.size).reshape(image.shape)
    else:
        image[3, :4] = -1e300
    if where == "some+nan":
        image[5, 5] = np.nan
    fits.PrimaryHDU(image).writeto(tmp_path / "big.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the read
        result = read_band(tmp_path / "big.fits", (101, 101), position=False)
    assert result.flags & flag
    assert (result.reason or "").startswith(reason) or any(r.startswith(reason) for r in result.extra_reasons)
    if result.image is not None:
        assert np.isnan(result.image).sum() == 4 + (where == "some+nan")


def _with_position(hdu):
    hdu.header["RA"], hdu.header["DEC"] = 150.0, 2.0
    return hdu


@pytest.mark.parametrize(
    ("bitpix_dtype", "bscale", "bzero", "blank"),
    [
        (np.int16, None, None, -32768),
        (np.int16, 1e-13, 5e-12, -32768),
        (np.int16, 2.0, 10.0, -32768),
        (np.int32, None, None, -2147483648),
        (np.int32, 0.5, -3.0, -999),
        (np.uint8, 0.1, 0.0, 255),
    ],
)
def test_null_pixels_of_integer_images_become_nan(tmp_path, bitpix_dtype, bscale, bzero, blank):
    counts = (np.arange(66 * 66) % 200).reshape(66, 66).astype(bitpix_dtype)
    counts[3, 4] = counts[10, :7] = blank
    hdu = _with_position(fits.PrimaryHDU(counts))
    hdu.header["BLANK"] = blank
    if bscale is not None:
        hdu.header["BSCALE"], hdu.header["BZERO"] = bscale, bzero
    hdu.writeto(tmp_path / "blank.fits", output_verify="silentfix")
    result = read_band(tmp_path / "blank.fits", (66, 66), coordinates=DEG)
    assert result.flags == Flag.NULL_PIXELS
    assert "null pixels (BLANK)" in result.extra_reasons
    null = counts == blank
    assert np.isnan(result.image[null]).all() and null.sum() == 8
    expected = counts.astype(np.float64) * (bscale or 1.0) + (bzero or 0.0)
    np.testing.assert_allclose(result.image[~null], expected[~null], rtol=1e-6)


def test_null_pixels_of_tile_compressed_integer_images(tmp_path):
    counts = np.arange(66 * 66, dtype=np.int16).reshape(66, 66)
    counts[0, 0] = -32768
    compressed = fits.CompImageHDU(counts, compression_type="RICE_1")
    compressed.header["BLANK"] = -32768
    _with_position(compressed)
    fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(tmp_path / "blank.fits.fz")
    result = read_band(tmp_path / "blank.fits.fz", (66, 66), coordinates=DEG)
    assert result.flags == Flag.NULL_PIXELS and np.isnan(result.image[0, 0])
    np.testing.assert_array_equal(result.image.ravel()[1:], counts.ravel()[1:])
    # Every pixel null: no usable image, flagged as such.
    hdu = _with_position(fits.PrimaryHDU(np.full((66, 66), -1, np.int16)))
    hdu.header["BLANK"] = -1
    hdu.writeto(tmp_path / "all.fits")
    result = read_band(tmp_path / "all.fits", (66, 66), coordinates=DEG)
    assert result.image is None and result.flags == Flag.NULL_PIXELS | Flag.ALL_NONFINITE


def test_integer_image_without_blank_keeps_every_value(tmp_path):
    counts = np.full((66, 66), -32768, np.int16)
    counts[0, 0] = 5  # one value throughout would be a blank filler (CONSTANT_IMAGE)
    _with_position(fits.PrimaryHDU(counts)).writeto(tmp_path / "plain.fits")
    result = read_band(tmp_path / "plain.fits", (66, 66), coordinates=DEG)
    assert result.flags == 0 and (result.image == counts).all()


def test_degenerate_axes_and_inherited_header(tmp_path):
    image = _image()
    fits.PrimaryHDU(image[np.newaxis, np.newaxis]).writeto(tmp_path / "degenerate.fits")
    result = read_band(tmp_path / "degenerate.fits", (66, 66))
    assert result.flags == Flag.NO_COORDINATES
    np.testing.assert_array_equal(result.image, image)
    # INHERIT = T: the extension's position comes from the primary header.
    primary = fits.PrimaryHDU(header=fits.Header({"RA": 12.5, "DEC": -4.0}))
    extension = fits.ImageHDU(image, header=fits.Header({"INHERIT": True}))
    fits.HDUList([primary, extension]).writeto(tmp_path / "inherit.fits")
    result = read_band(tmp_path / "inherit.fits", (66, 66), coordinates=DEG)
    assert (result.ra_deg, result.dec_deg, result.flags) == (12.5, -4.0, 0)
    extension.header["INHERIT"] = False
    fits.HDUList([primary, extension]).writeto(tmp_path / "no-inherit.fits")
    assert read_band(tmp_path / "no-inherit.fits", (66, 66), coordinates=DEG).flags == Flag.NO_COORDINATES


@pytest.mark.parametrize(
    "directory",
    [
        *("sglc2 [copy]", "a(1)", "x+1", "!bang", "~tilde", "with space", "ünï", "mem:", "http:"),
        *("a[1:2]", "$HOME", "-"),
    ],
)
def test_any_legal_path_reads(tmp_path, directory):
    image = _image()
    path = tmp_path / directory / "imageEUC_Y-100001.fits"
    path.parent.mkdir()
    _with_position(fits.PrimaryHDU(image)).writeto(path)
    result = read_band(path, (66, 66), coordinates=DEG)
    assert (result.flags, result.ra_deg) == (0, 150.0)
    np.testing.assert_array_equal(result.image, image)


def test_compressed_files_read_equal_to_plain(tmp_path):
    import bz2
    import gzip

    image = _image()
    _with_position(fits.PrimaryHDU(image)).writeto(tmp_path / "plain.fits")
    raw = (tmp_path / "plain.fits").read_bytes()
    (tmp_path / "a.fits.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "a.fits.bz2").write_bytes(bz2.compress(raw))
    tiled = _with_position(fits.CompImageHDU(image, compression_type="GZIP_2", quantize_level=0.0))
    fits.HDUList([fits.PrimaryHDU(), tiled]).writeto(tmp_path / "a.fits.fz")
    (tmp_path / "a.fits.fz.gz").write_bytes(gzip.compress((tmp_path / "a.fits.fz").read_bytes()))
    (tmp_path / "[b].fits.gz").write_bytes(gzip.compress(raw))
    plain = read_band(tmp_path / "plain.fits", (66, 66), coordinates=DEG)
    for name in ["a.fits.gz", "a.fits.bz2", "a.fits.fz", "a.fits.fz.gz", "[b].fits.gz"]:
        result = read_band(tmp_path / name, (66, 66), coordinates=DEG)
        assert (result.flags, result.ra_deg, result.dec_deg) == (0, 150.0, 2.0), name
        np.testing.assert_array_equal(result.image, plain.image)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.99])
def test_truncated_compressed_file_is_flagged_truncated(tmp_path, fraction):
    """New-user trial: a cut-off ``.fits.gz`` was flagged UNREADABLE, "not a FITS file"."""
    import bz2
    import gzip

    fits.PrimaryHDU(_image()).writeto(tmp_path / "plain.fits")
    raw = (tmp_path / "plain.fits").read_bytes()
    for name, compress, kind in (
        ("cut.fits.gz", gzip.compress, "gzip"),
        ("cut.fits.bz2", bz2.compress, "bzip2"),
    ):
        data = compress(raw)
        (tmp_path / name).write_bytes(data[: int(len(data) * fraction)])
        result = read_band(tmp_path / name, (66, 66))
        assert result.image is None and result.flags == Flag.TRUNCATED, name
        assert result.reason == f"truncated file (its {kind} stream ends early)"
    # an image in an extension, cut off: astropy found only the empty primary (review)
    extension = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_image())]).writeto(extension)
    data = gzip.compress(extension.read_bytes())
    (tmp_path / "ext.fits.gz").write_bytes(data[: int(len(data) * fraction)])
    cut = read_band(tmp_path / "ext.fits.gz", (66, 66))
    assert cut.flags == Flag.TRUNCATED and cut.reason == "truncated file (its gzip stream ends early)"
    # a whole compressed file of garbage is no truncated FITS file
    (tmp_path / "junk.fits.gz").write_bytes(gzip.compress(b"not a fits file at all" * 200))
    junk = read_band(tmp_path / "junk.fits.gz", (66, 66))
    assert junk.flags == Flag.UNREADABLE and "not a FITS file" in junk.reason


def test_masked_pixels_alone_are_only_masked(tmp_path):
    """New-user trial: every masked ground cutout was also flagged SOME_NONFINITE, 'some pixels
    infinite', though its file held neither NaN nor inf."""
    image = _image((101, 101))
    image[10:12, 10:12] = 100.0
    fits.PrimaryHDU(image).writeto(tmp_path / "masked.fits")
    result = read_band(tmp_path / "masked.fits", (101, 101), masked_value=100.0, position=False)
    assert result.flags == Flag.MASKED_PIXELS and np.isnan(result.image).sum() == 4
    assert [reason for reason in (result.reason, *result.extra_reasons) if reason] == ["masked pixels"]
    integer = (np.arange(101 * 101).reshape(101, 101) % 7).astype(np.int16)
    integer[0, 0] = 100
    fits.PrimaryHDU(integer).writeto(tmp_path / "int.fits")  # integers: no false NULL_PIXELS either
    assert (
        read_band(tmp_path / "int.fits", (101, 101), masked_value=100.0, position=False).flags
        == Flag.MASKED_PIXELS
    )


@pytest.mark.parametrize("kept", [30, 1000, 2319])
def test_a_file_cut_inside_its_header_is_truncated(real_samples, tmp_path, kept):
    """Trial: the real challenge VIS file cut to its first 1000 bytes (``SIMPLE = T``, no END card) was
    UNREADABLE, "not a FITS file (OSError: Empty or corrupt FITS file)"; a file cut in its data was
    TRUNCATED. Plain, gzip and bzip2; and an extension's header cut (it was "no image HDU")."""
    import bz2
    import gzip

    raw = (real_samples / "imageEUC_VIS-100002.fits").read_bytes()
    assert raw.startswith(b"SIMPLE  =                    T") and raw.index(b"END" + b" " * 77) == 2320
    expected = f"truncated file (its header ends at byte {kept}, before its END card)"
    for name, compress in (
        ("cut.fits", bytes),
        ("cut.fits.gz", gzip.compress),
        ("cut.fits.bz2", bz2.compress),
    ):
        (tmp_path / name).write_bytes(compress(raw[:kept]))
        result = read_band(tmp_path / name, (101, 101))
        assert (result.image, result.flags, result.reason) == (None, Flag.TRUNCATED, expected), name
    extension = tmp_path / "ext.fits"
    header = fits.getheader(real_samples / "imageEUC_VIS-100002.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_image((101, 101)), header)]).writeto(extension)
    (tmp_path / "ext-cut.fits").write_bytes(extension.read_bytes()[: 2880 + kept])
    cut = read_band(tmp_path / "ext-cut.fits", (101, 101))
    ext_expected = f"truncated file (the header of HDU 1 ends at byte {2880 + kept}, before its END card)"
    assert (cut.flags, cut.reason) == (Flag.TRUNCATED, ext_expected)
    # a file cut whole blocks into its data, and one that is no FITS file, are as before
    (tmp_path / "data-cut.fits").write_bytes(raw[:5760])
    assert read_band(tmp_path / "data-cut.fits", (101, 101)).reason == "truncated file"
    (tmp_path / "text.fits").write_bytes(b"SIMPLE? no. " * 300)
    assert (
        read_band(tmp_path / "text.fits", (101, 101)).reason
        == "not a FITS file (OSError: No SIMPLE card found)"
    )
