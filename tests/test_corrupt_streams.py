"""A compressed cutout whose stream fails its checks is UNREADABLE, not good data (new-user trial).

A ``.fits.gz`` with 50 bytes zeroed mid-file, or one bit flipped (``gzip -t``: "invalid compressed
data--crc error"), was ingested with wrong pixels and flags 0 (or SOME_NONFINITE), and scored: the
readers stopped decompressing before the gzip trailer that holds the CRC. Real files (astropy, gzip,
bz2, lzma, zipfile) through ``read_band`` and one real ingest.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile

import numpy as np
import pytest
from astropy.io import fits
from cutouts import sky, write_cutout

from pipeline.flags import Flag
from pipeline.sources import read_band
from pipeline.store import ingest
from pipeline.store.reader_revision import REVISIONS
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout

SHAPE = (66, 66)
GZIP_CRC = "corrupt file (its gzip stream fails its CRC check)"


def _zipped(raw: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cutout.fits", raw)
    return buffer.getvalue()


def _plain(tmp_path) -> tuple[bytes, np.ndarray]:
    image = np.random.default_rng(3).normal(size=SHAPE).astype(np.float32)
    fits.PrimaryHDU(image).writeto(tmp_path / "plain.fits")
    return (tmp_path / "plain.fits").read_bytes(), image


def _zeroed(data: bytes) -> bytes:
    """The trial's file: 50 bytes zeroed in the middle of the compressed stream."""
    middle = len(data) // 2
    return data[:middle] + b"\x00" * 50 + data[middle + 50 :]


def _bit_flipped(data: bytes, at: int) -> bytes:
    edited = bytearray(data)
    edited[at] ^= 0x01
    return bytes(edited)


@pytest.mark.parametrize(
    "edit",
    [_zeroed, lambda data: _bit_flipped(data, len(data) // 2), lambda data: _bit_flipped(data, -6)],
    ids=["50 bytes zeroed", "one bit flipped", "CRC field flipped"],
)
def test_a_gzip_file_failing_its_crc_is_unreadable(tmp_path, edit):
    raw, image = _plain(tmp_path)
    path = tmp_path / "imageEUC_VIS-100001.fits.gz"
    path.write_bytes(edit(gzip.compress(raw)))
    for position in (True, False):
        result = read_band(path, SHAPE, position=position)
        assert (result.image, result.flags) == (None, Flag.UNREADABLE)
        assert result.reason == GZIP_CRC or result.reason.startswith("corrupt file (its gzip stream fails")


@pytest.mark.parametrize(
    ("name", "compress", "expected"),
    [
        ("a.fits.bz2", bz2.compress, "corrupt file (its bzip2 stream fails its checks: invalid data stream)"),
        ("a.fits.xz", lzma.compress, "corrupt file (its xz stream fails its checks: corrupt input data)"),
        ("a.fits.zip", _zipped, "corrupt file (its zip stream fails its CRC check)"),
        ("a.fits.fz.gz", gzip.compress, GZIP_CRC),
    ],
)
def test_every_compressed_form_is_checked_to_its_end(tmp_path, name, compress, expected):
    """bzip2 was UNREADABLE as "not a FITS file"; xz and zip files, read by astropy, were not checked;
    a gzipped tile-compressed file was read by fitsio, its outer CRC unchecked."""
    raw, image = _plain(tmp_path)
    if name.endswith(".fz.gz"):
        tiled = fits.CompImageHDU(image, compression_type="GZIP_2", quantize_level=0.0)
        fits.HDUList([fits.PrimaryHDU(), tiled]).writeto(tmp_path / "a.fits.fz")
        raw = (tmp_path / "a.fits.fz").read_bytes()
    data = compress(raw)
    (tmp_path / ("whole-" + name)).write_bytes(data)
    whole = read_band(tmp_path / ("whole-" + name), SHAPE, position=False)
    assert whole.flags == 0, name
    np.testing.assert_array_equal(whole.image, image)
    at = len(data) - 6 if name.endswith(".gz") else len(data) // 2
    (tmp_path / name).write_bytes(_bit_flipped(data, at))
    result = read_band(tmp_path / name, SHAPE, position=False)
    assert (result.image, result.flags, result.reason) == (None, Flag.UNREADABLE, expected)


def test_sound_gzip_variants_still_read(tmp_path):
    """Zero padding, several members and trailing bytes after a whole member read as before."""
    raw, image = _plain(tmp_path)
    half = len(raw) // 2
    variants = {
        "padded.fits.gz": gzip.compress(raw) + b"\x00" * 512,
        "members.fits.gz": gzip.compress(raw[:half]) + gzip.compress(raw[half:]),
        "trailing.fits.gz": gzip.compress(raw) + b"trailing junk",
    }
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        result = read_band(tmp_path / name, SHAPE, position=False)
        assert result.flags == 0, name
        np.testing.assert_array_equal(result.image, image)
    # a stream cut short is TRUNCATED as before, not corrupt
    (tmp_path / "cut.fits.gz").write_bytes(gzip.compress(raw)[:-100])
    cut = read_band(tmp_path / "cut.fits.gz", SHAPE, position=False)
    assert (cut.flags, cut.reason) == (Flag.TRUNCATED, "truncated file (its gzip stream ends early)")


def test_an_ingest_stores_a_corrupt_gzip_band_as_unreadable(tmp_path, dask_client):
    """The trial's ingest: object 100001's VIS file gzipped with one bit flipped was stored with flags 0
    and one wrong pixel; 100002's, whole, is read as before."""
    layout = load_layout("sglc1-space")
    band = layout.bands[0]
    source = tmp_path / "src"
    images = {}
    for object_id in (100001, 100002):
        path = source / band.path_for(object_id, layout.id_digits)
        images[object_id] = np.random.default_rng(object_id).normal(size=(101, 101)).astype(np.float32)
        write_cutout(path, images[object_id], *sky(object_id), "rad", scale_arcsec=0.1)
        data = gzip.compress(path.read_bytes())
        if object_id == 100001:
            data = _bit_flipped(data, len(data) // 2)
        path.with_name(path.name + ".gz").write_bytes(data)
        path.unlink()
    report = ingest(layout, source, tmp_path / "s.zarr", dask_client)
    dataset = open_store(tmp_path / "s.zarr", chunks=None)
    rows = {int(i): row for row, i in enumerate(dataset["object_id"].values)}
    assert int(dataset["flags"][rows[100001]]) & Flag.UNREADABLE
    assert int(dataset["flags"][rows[100002]]) == 0
    assert any(GZIP_CRC in reason for reason in report.reasons), report.reasons
    assert "CRC" in REVISIONS[6]
