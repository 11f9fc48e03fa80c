"""Null pixels of integer images, in every encoding, ingested: NaN at exactly the null pixels, NULL_PIXELS.

New-user trial: an int16 image with ``BZERO = 32768``, ``BSCALE = 1``, ``BLANK = 32767`` (unsigned
16-bit) was stored with 65535 where its nulls were, an unsigned 32-bit one (``BZERO = 2**31``,
``BLANK = -2**31``) with 0, and a RICE ``.fits.fz`` with ``ZBLANK`` alike, all with flags 0 (astropy
keeps an unsigned image's nulls as numbers). The FITS standard: ``BLANK`` (``ZBLANK``) is the stored
integer, compared before ``BZERO + BSCALE * stored``. Each file below is a real FITS file (cards
written as stored, raw integers), ingested by the real ingest; the store must hold NaN at the null
pixels, the physical value at every other pixel, and NULL_PIXELS.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from pipeline.flags import Flag
from pipeline.sources.fits_io import read_band
from pipeline.store import ingest, write_cutouts
from schemas.layout import load_layout

SPACE = load_layout("sglc1-space")
SHAPE = (101, 101)
NULLS = ((5, 5), (0, 100), (70, 3))  # away from the centre: only NULL_PIXELS, no CENTRE_NONFINITE


def _stored(dtype, zero: int, blank: int) -> np.ndarray:
    """Stored integers of ``dtype``, varied, whose physical values (``+ zero``) are exact in float32;
    ``blank`` at :data:`NULLS` (and nowhere else)."""
    steps = (np.arange(SHAPE[0] * SHAPE[1]) * 37) % (SHAPE[0] * SHAPE[1])
    if np.dtype(dtype).itemsize == 1:  # BITPIX 8: 0 .. 255 stored
        stored = (steps % 200 + 20).astype(object)
    else:
        stored = np.array([10 + int(step) - zero for step in steps], dtype=object)
    stored = stored.reshape(SHAPE)
    assert not (stored == blank).any()
    for at in NULLS:
        stored[at] = blank
    return stored.astype(dtype)


def _header(object_id: int) -> fits.Header:
    header = fits.Header()
    header["RA"], header["DEC"] = math.radians(150.0 + object_id * 1e-4), math.radians(2.0)
    return header


def _write_plain(path: Path, stored: np.ndarray, cards: dict, object_id: int) -> None:
    """A primary image of ``stored`` integers as stored (no scaling by astropy), ``cards`` added."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(stored, header=_header(object_id)).writeto(path, output_verify="silentfix")
    with fits.open(path, mode="update", do_not_scale_image_data=True) as hdus:
        hdus[0].header.update(cards)
    with fits.open(path, do_not_scale_image_data=True) as hdus:  # as stored, cards as written
        assert (hdus[0].data == stored).all()
        assert all(hdus[0].header[key] == value for key, value in cards.items())


def _expected(stored: np.ndarray, zero: float, scale: float, blank: int) -> np.ndarray:
    physical = np.array([float(int(v) * scale + zero) for v in stored.ravel()]).reshape(SHAPE)
    physical[stored == blank] = np.nan
    return physical.astype(np.float32)


def _variants(root: Path) -> dict[int, np.ndarray]:
    """Write each variant as one object's VIS file under ``root``; the expected stored image of each."""
    expected = {}
    path = {oid: root / SPACE.bands[0].path_for(oid, SPACE.id_digits) for oid in range(100001, 100020)}
    plain = [  # (object, dtype, BZERO, BSCALE, BLANK): unsigned as FITS stores them, and signed
        (100001, np.int16, 32768, 1, 32767),  # unsigned 16-bit (the trial's file)
        (100002, np.int32, 1 << 31, 1, -(1 << 31)),  # unsigned 32-bit (the trial's file)
        (100003, np.int64, 1 << 63, 1, -(1 << 63)),  # unsigned 64-bit
        (100004, np.uint8, 0, 1, 0),  # BITPIX 8 (unsigned by the standard), BLANK = 0
        (100005, np.uint8, -128, 1, 5),  # signed 8-bit: BITPIX 8 with BZERO = -128
        (100006, np.int16, 0, 1, -32768),  # signed 16-bit
        (100007, np.int16, 100, 2.5, -500),  # signed, scaled: BLANK compares to the stored -500
        (100008, np.int32, 0, 1, 0),  # BLANK = 0
        (100009, np.int64, 0, 1, 7),  # signed 64-bit
        (100010, np.int16, 32768, 1, 32767),  # the trial's file, gzipped (.fits.gz)
    ]
    for object_id, dtype, zero, scale, blank in plain:
        stored = _stored(dtype, zero, blank)
        cards = {"BLANK": blank} | ({"BZERO": zero, "BSCALE": scale} if (zero, scale) != (0, 1) else {})
        _write_plain(path[object_id], stored, cards, object_id)
        expected[object_id] = _expected(stored, zero, scale, blank)
    gz = path[100010]
    gz.with_name(gz.name + ".gz").write_bytes(gzip.compress(gz.read_bytes()))
    gz.unlink()
    # RICE tiles of an unsigned 16-bit image, its nulls named by a ZBLANK card (stored value 32767)
    stored = _stored(np.int16, 32768, 32767)
    tiled = fits.CompImageHDU(
        (stored.astype(np.int32) + 32768).astype(np.uint16), _header(100011), compression_type="RICE_1"
    )
    fz = path[100011].with_name(path[100011].name + ".fz")
    fits.HDUList([fits.PrimaryHDU(), tiled]).writeto(fz)
    with fits.open(fz, mode="update", disable_image_compression=True) as hdus:
        assert hdus[1].header["BZERO"] == 32768 and hdus[1].header["ZCMPTYPE"] == "RICE_1"
        hdus[1].header["ZBLANK"] = 32767
    expected[100011] = _expected(stored, 32768, 1, 32767)
    # RICE tiles of a signed 16-bit image with ZBLANK = -32768
    stored = _stored(np.int16, 0, -32768)
    fz = path[100012].with_name(path[100012].name + ".fz")
    fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(stored, _header(100012), compression_type="RICE_1")]
    ).writeto(fz)
    with fits.open(fz, mode="update", disable_image_compression=True) as hdus:
        hdus[1].header["ZBLANK"] = -32768
    expected[100012] = _expected(stored, 0, 1, -32768)
    expected[100013] = _zblank_column(path[100013].with_name(path[100013].name + ".fz"))
    return expected


def _zblank_column(path: Path) -> np.ndarray:
    """RICE tiles of one row each of an int32 image whose nulls are named per tile by a ZBLANK column:
    -7 in rows 5 and 70, -9 in row 0; -7 elsewhere is a value. The expected image."""
    stored = _stored(np.int32, 0, -7)
    stored[0, 100] = -9
    stored[40, 40] = -7  # row 40's tile names no null: a value
    tiled = fits.CompImageHDU(stored, _header(100013), compression_type="RICE_1", tile_shape=(1, SHAPE[1]))
    fits.HDUList([fits.PrimaryHDU(), tiled]).writeto(path)
    with fits.open(path, disable_image_compression=True) as hdus:
        table = hdus[1]
        column = np.full(SHAPE[0], -(1 << 31), np.int32)  # a value no pixel has
        column[[5, 70]], column[0] = -7, -9
        columns = [fits.Column(name=c.name, format=c.format, array=table.data[c.name]) for c in table.columns]
        columns.append(fits.Column(name="ZBLANK", format="J", array=column))
        new = fits.BinTableHDU.from_columns(columns)
        for card in table.header.cards:
            if card.keyword.startswith("Z") or card.keyword in ("EXTNAME", "RA", "DEC"):
                new.header[card.keyword] = (card.value, card.comment)
    fits.HDUList([fits.PrimaryHDU(), new]).writeto(path, overwrite=True)
    expected = stored.astype(np.float32)
    for at in NULLS:
        expected[at] = np.nan
    return expected


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict[int, np.ndarray]]:
    root = tmp_path_factory.mktemp("nulls") / "src"
    return root, _variants(root)


def test_every_integer_encoding_reads_its_nulls_as_nan(source):
    """Each reader (fitsio, astropy) through read_band: NaN exactly at the nulls, the rest exact."""
    root, expected = source
    for object_id, image in expected.items():
        (path,) = (root / "Band1").glob(f"imageEUC_VIS-{object_id}.fits*")
        read = read_band(path, SHAPE, coordinates=SPACE.coordinates)
        assert read.flags == Flag.NULL_PIXELS, (object_id, read.reason, read.extra_reasons)
        assert "null pixels (BLANK)" in read.extra_reasons
        np.testing.assert_array_equal(read.image, image, err_msg=str(object_id))
        assert np.isnan(read.image).sum() == len(NULLS), object_id


def test_ingest_stores_integer_nulls_as_nan_with_null_pixels(source, tmp_path, dask_client):
    root, expected = source
    store = tmp_path / "s.zarr"
    report = ingest(SPACE, root, store, dask_client)
    assert report.n_added == len(expected)
    with xr.open_zarr(store, consolidated=False) as ds:
        ids = ds["object_id"].values.tolist()
        for object_id, image in expected.items():
            row = ids.index(object_id)
            assert int(ds["flags"].values[row]) == Flag.NULL_PIXELS, object_id
            stored = ds["vis"].values[row, 0]
            np.testing.assert_array_equal(stored, image, err_msg=str(object_id))
            assert [tuple(at) for at in np.argwhere(np.isnan(stored))] == sorted(NULLS), object_id
    assert f"{len(expected):>6}  NULL_PIXELS" in report.summary()
    # `lenshunt cutout` writes them back as float32 NaN, counted and said (LHNNAN and its COMMENT), with
    # no scaling or BLANK card of the input that would change the float pixels read back
    for object_id in (100001, 100003, 100005, 100007, 100011, 100013):
        written = write_cutouts(store, object_id, tmp_path / "out").files["VIS"]
        with fits.open(written) as hdus:
            header, data = hdus[0].header, hdus[0].data
            assert data.dtype == np.dtype(">f4") and header["LHNNAN"] == len(NULLS), object_id
            assert not {"BLANK", "BZERO", "BSCALE"} & set(header), object_id
            assert "null (BLANK)" in " ".join(str(header["COMMENT"]).split())
            np.testing.assert_array_equal(data, expected[object_id], err_msg=str(object_id))
