"""A file whose DATASUM or CHECKSUM cards do not match its bytes is UNREADABLE, not good data (user trial).

A cutout written with ``checksum=True`` and 40 data bytes then overwritten with 0x7f (``fitscheck``: "BAD
... Datasum verification failed") was ingested with finite pixels of 3.39e38, flags 0, and scored 0.66.
Real files (astropy, fitsio, gzip) through ``read_band`` and one real ingest.
"""

from __future__ import annotations

import gzip
import re
import warnings

import fitsio
import numpy as np
import pytest
from astropy.io import fits
from cutouts import sky, write_cutout

from pipeline.flags import Flag
from pipeline.sources import read_band
from pipeline.sources.checksums import ones_complement_sum
from pipeline.store import ingest
from pipeline.store.reader_revision import READER_REVISION, REVISIONS
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout

SHAPE = (66, 66)
DATASUM = re.compile(r"corrupt file \(DATASUM (\d+) does not match its data: (\d+)\)")


def _image(dtype="f4") -> np.ndarray:
    return (np.random.default_rng(5).normal(size=SHAPE) * 100).astype(dtype)


def _overwritten(data: bytes, at: int, count: int = 40) -> bytes:
    """The trial's file: ``count`` bytes at ``at`` overwritten with 0x7f."""
    return data[:at] + b"\x7f" * count + data[at + count :]


def _astropy_says_bad(path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(path, checksum=True) as hdus:
            for hdu in hdus:
                hdu.data  # noqa: B018 - read, as fitscheck does
    return [str(warning.message) for warning in caught if "verification failed" in str(warning.message)]


def test_overwritten_data_fail_their_datasum(tmp_path):
    fits.PrimaryHDU(_image()).writeto(tmp_path / "sound.fits", checksum=True)
    sound = read_band(tmp_path / "sound.fits", SHAPE)
    assert sound.flags & ~Flag.NO_COORDINATES == 0
    np.testing.assert_array_equal(sound.image, _image())
    raw = (tmp_path / "sound.fits").read_bytes()
    corrupt = _overwritten(raw, 2880 + 8000)
    (tmp_path / "corrupt.fits").write_bytes(corrupt)
    (tmp_path / "corrupt.fits.gz").write_bytes(gzip.compress(corrupt))  # its gzip stream itself is sound
    assert any("Datasum" in message for message in _astropy_says_bad(tmp_path / "corrupt.fits"))
    for name in ("corrupt.fits", "corrupt.fits.gz"):
        for position in (True, False, "cheap"):
            result = read_band(tmp_path / name, SHAPE, position=position)
            assert (result.image, result.flags) == (None, Flag.UNREADABLE), (name, position)
            written, found = DATASUM.fullmatch(result.reason).groups()
            header = fits.getheader(tmp_path / "sound.fits")
            assert int(written) == int(header["DATASUM"])
            assert int(found) == ones_complement_sum(corrupt[2880:]) != int(written)


def test_an_edited_header_fails_its_checksum(tmp_path):
    """The data match their DATASUM, the header not its CHECKSUM: a card changed after writing."""
    fits.PrimaryHDU(_image(), fits.Header({"BUNIT": "Jy"})).writeto(tmp_path / "a.fits", checksum=True)
    raw = (tmp_path / "a.fits").read_bytes()
    (tmp_path / "edited.fits").write_bytes(raw.replace(b"BUNIT   = 'Jy", b"BUNIT   = 'mJ", 1))
    assert _astropy_says_bad(tmp_path / "edited.fits")
    result = read_band(tmp_path / "edited.fits", SHAPE, position=False)
    checksum = fits.getheader(tmp_path / "a.fits")["CHECKSUM"]
    assert (result.flags, result.reason) == (
        Flag.UNREADABLE,
        f"corrupt file (CHECKSUM '{checksum}' does not match its header and data)",
    )


@pytest.mark.parametrize("dtype", ["f4", "f8", "i2", "i4", "u1"])
def test_sound_checksummed_files_read_as_before(tmp_path, dtype):
    """astropy's and cfitsio's sums are ours, for every reader (fast, fitsio, astropy for BLANK)."""
    image = _image(dtype)
    header = fits.Header({"BLANK": -32768}) if dtype == "i2" else None
    fits.PrimaryHDU(image, header).writeto(tmp_path / "astropy.fits", checksum=True)
    with fitsio.FITS(str(tmp_path / "fitsio.fits"), "rw", clobber=True) as hdus:
        hdus.write(image)
        hdus[0].write_checksum()
    hdus = fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(image, name="VIS"), fits.ImageHDU(image, name="NIR")]
    )
    hdus.writeto(tmp_path / "mef.fits", checksum=True)
    for name in ("astropy.fits", "fitsio.fits", "mef.fits"):
        assert not _astropy_says_bad(tmp_path / name)
        result = read_band(tmp_path / name, SHAPE, position=False, hdu="VIS" if name == "mef.fits" else None)
        assert result.flags & ~Flag.MASKED_PIXELS & ~Flag.NULL_PIXELS == 0, (name, result.reason)
        np.testing.assert_array_equal(result.image, image.astype(np.float32))
    # the band's HDU is checked, not another's: NIR's data corrupt, VIS reads as before
    raw = (tmp_path / "mef.fits").read_bytes()
    (tmp_path / "mef.fits").write_bytes(_overwritten(raw, len(raw) - 2880 - 100, 4))
    assert read_band(tmp_path / "mef.fits", SHAPE, position=False, hdu="VIS").flags == 0
    nir = read_band(tmp_path / "mef.fits", SHAPE, position=False, hdu="NIR")
    assert nir.flags == Flag.UNREADABLE and DATASUM.fullmatch(nir.reason)
    # empty cards, or none, are not checked: overwritten data read as they are (as before)
    for name, header in (("empty.fits", fits.Header({"DATASUM": "", "CHECKSUM": ""})), ("none.fits", None)):
        fits.PrimaryHDU(_image(), header).writeto(tmp_path / name)
        (tmp_path / name).write_bytes(_overwritten((tmp_path / name).read_bytes(), 2880 + 8000))
        assert read_band(tmp_path / name, SHAPE, position=False).flags == 0, name


def test_a_tile_compressed_file_checks_its_tables_sums(tmp_path):
    """A .fits.fz's DATASUM is of its table's compressed bytes: a tile that still decompresses (the
    bytes changed) fails it; a sound one reads as before."""
    image = _image("i4")
    tiled = fits.CompImageHDU(image, compression_type="HCOMPRESS_1")
    fits.HDUList([fits.PrimaryHDU(), tiled]).writeto(tmp_path / "a.fits.fz", checksum=True)
    sound = read_band(tmp_path / "a.fits.fz", SHAPE, position=False)
    assert sound.flags == 0
    np.testing.assert_array_equal(sound.image, image.astype(np.float32))
    raw = (tmp_path / "a.fits.fz").read_bytes()
    (tmp_path / "b.fits.fz").write_bytes(_overwritten(raw, len(raw) - 2880 - 1000, 30))
    result = read_band(tmp_path / "b.fits.fz", SHAPE, position=False)
    assert result.flags == Flag.UNREADABLE and DATASUM.fullmatch(result.reason), result.reason


def test_an_ingest_stores_a_band_failing_its_datasum_as_unreadable(tmp_path, dask_client):
    """The trial's ingest: object 100001's VIS file with 40 data bytes overwritten was stored with flags 0
    (and scored); 100002's, whole, is read as before."""
    layout = load_layout("sglc1-space")
    band = layout.bands[0]
    source = tmp_path / "src"
    for object_id in (100001, 100002):
        path = source / band.path_for(object_id, layout.id_digits)
        image = np.random.default_rng(object_id).normal(size=(101, 101)).astype(np.float32)
        write_cutout(path, image, *sky(object_id), "rad", scale_arcsec=0.1)
        with fits.open(path) as hdus:
            hdus.writeto(path, overwrite=True, checksum=True)
        if object_id == 100001:
            path.write_bytes(_overwritten(path.read_bytes(), 2880 + 20000))
    report = ingest(layout, source, tmp_path / "s.zarr", dask_client)
    dataset = open_store(tmp_path / "s.zarr", chunks=None)
    rows = {int(i): row for row, i in enumerate(dataset["object_id"].values)}
    assert int(dataset["flags"][rows[100001]]) & Flag.UNREADABLE
    assert int(dataset["flags"][rows[100002]]) == 0
    assert any(DATASUM.search(reason) for reason in report.reasons), report.reasons
    assert "DATASUM" in REVISIONS[7] and READER_REVISION >= 7
