"""Compressed cutouts of several streams, padded or cut short, as real tools write them (review).

gzip (several members: ``cat a.gz b.gz``; zero padding), bzip2 (several streams: ``cat``, pbzip2) and
xz (several streams, stream padding: null bytes, a multiple of four, between and after them) files
that are whole read as their plain file does; one cut short inside its last stream is TRUNCATED
saying which stream ends early; one with a byte flipped is corrupt. Found in review: a file cut in its
last bytes (gzip's trailer, bzip2's end-of-stream marker, xz's index and footer: the pixels before
them whole) was read with flags 0; a cut ``.fits.xz`` was UNREADABLE "not a FITS file" (or "no image
HDU"); a valid xz file with stream padding was UNREADABLE "unreadable data (TypeError: buffer is too
small ...)", as was a file whose streams are whole but hold a FITS file cut in its data; a file cut
after its header's END card, inside that 2880-byte block, was "not a FITS file". Real files written
by Python's gzip, bz2 and lzma and, where installed, the gzip, pigz, bzip2, pbzip2, lbzip2 and xz
commands, read through ``read_band`` and one real ingest.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from cutouts import sky, write_cutout

from pipeline.flags import Flag
from pipeline.sources import read_band
from pipeline.sources.truncation import cut_short
from pipeline.store import ingest
from pipeline.store.reader_revision import READER_REVISION, REVISIONS
from pipeline.store.zarr_store import open_store
from schemas.layout import CoordinateSpec, load_layout

SHAPE = (120, 120)
DEG = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"),)
COMPRESS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


def _plain(tmp_path, extension: bool = False) -> tuple[bytes, np.ndarray]:
    """A float cutout with RA/DEC cards (in an extension: the general readers read it)."""
    image = np.random.default_rng(5).normal(size=SHAPE).astype(np.float32)
    header = fits.Header({"RA": 150.0, "DEC": 2.0})
    hdus = (
        [fits.PrimaryHDU(), fits.ImageHDU(image, header)] if extension else [fits.PrimaryHDU(image, header)]
    )
    fits.HDUList(hdus).writeto(tmp_path / "plain.fits", overwrite=True)
    return (tmp_path / "plain.fits").read_bytes(), image


def _streams(kind: str, raw: bytes, padding: bytes = b"") -> list[bytes]:
    """``raw`` in three streams (members) of ``kind``, each followed by ``padding``."""
    third = len(raw) // 3
    parts = (raw[:third], raw[third : 2 * third], raw[2 * third :])
    return [COMPRESS[kind](part) + padding for part in parts]


def _read(path, data: bytes):
    path.write_bytes(data)
    return read_band(path, SHAPE, coordinates=DEG)


def _tool(*command: str):
    """A compressor command writing to stdout, or a skip where it is not installed."""
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    return lambda raw: subprocess.run(command, input=raw, capture_output=True, check=True).stdout


@pytest.mark.parametrize("extension", [False, True], ids=["primary image", "image in an extension"])
def test_xz_stream_padding_is_read_as_xz_does(tmp_path, extension):
    """Three xz streams each followed by 4 (or 8) null bytes: ``xz -d`` reads them all; they were read
    as the first stream's bytes alone, UNREADABLE "unreadable data (TypeError: buffer is too small ...)".
    Padding of other than a multiple of four bytes before a stream is corrupt, as xz says."""
    raw, image = _plain(tmp_path, extension)
    for padding in (b"\0" * 4, b"\0" * 8):
        result = _read(tmp_path / "padded.fits.xz", b"".join(_streams("xz", raw, padding)))
        assert (result.flags, result.ra_deg) == (0, 150.0), result.reason
        np.testing.assert_array_equal(result.image, image)
    first, second, third = _streams("xz", raw)
    bad = _read(tmp_path / "bad.fits.xz", first + b"\0" * 3 + second + third)
    assert (bad.flags, bad.reason) == (
        Flag.UNREADABLE,
        "corrupt file (its xz stream fails its checks: corrupt input data)",
    )


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("gzip", ("pigz", "-c", "-b", "32")),
        ("bzip2", ("pbzip2", "-c", "-b1", "-p2")),
        ("bzip2", ("lbzip2", "-c", "-n2")),
        ("xz", ("xz", "-c", "-T2", "--block-size=20000")),
        ("gzip", ("gzip", "-c")),
        ("bzip2", ("bzip2", "-c")),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else value,
)
def test_real_tools_output_whole_cut_and_flipped(tmp_path, kind, command):
    """Each tool's output read whole; ``cat`` of its outputs of the file's thirds (and xz's and gzip's
    with padding) read whole; cut inside its last stream (by 1 byte, 12 bytes, half that stream)
    TRUNCATED naming the stream; a byte flipped inside its last stream corrupt."""
    compress = _tool(*command)
    raw, image = _plain(tmp_path)
    third = len(raw) // 3
    parts = [compress(part) for part in (raw[:third], raw[third : 2 * third], raw[2 * third :])]
    padding = {"gzip": b"\0" * 512, "bzip2": b"", "xz": b"\0" * 4}[kind]
    whole = {
        "one": compress(raw),
        "cat": b"".join(parts),
        "padded": b"".join(part + padding for part in parts),
    }
    for name, data in whole.items():
        result = _read(tmp_path / f"{name}.fits.x", data)
        assert (result.flags, result.reason, result.ra_deg) == (0, None, 150.0), name
        np.testing.assert_array_equal(result.image, image)
        assert cut_short(tmp_path / f"{name}.fits.x") == ""
    for name in ("one", "cat"):
        data, last = whole[name], len(whole[name]) - (len(parts[-1]) if name == "cat" else len(whole["one"]))
        for cut in (1, 12, (len(data) - last) // 2):
            result = _read(tmp_path / "cut.fits.x", data[:-cut])
            expected = f"truncated file (its {kind} stream ends early)"
            assert (result.image, result.flags, result.reason) == (None, Flag.TRUNCATED, expected), (
                name,
                cut,
            )
            if kind != "bzip2" or name == "cat" or cut == 1:  # bzip2 gives no byte of a block cut short
                assert result.ra_deg == 150.0  # the header's position, as for a plain file cut in its data
        flipped = bytearray(data)
        flipped[(last + len(data)) // 2] ^= 0xFF
        result = _read(tmp_path / "flipped.fits.x", bytes(flipped))
        assert (result.image, result.flags) == (None, Flag.UNREADABLE), name
        assert result.reason.startswith(f"corrupt file (its {kind} stream fails its "), result.reason


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
@pytest.mark.parametrize("extension", [False, True], ids=["primary image", "image in an extension"])
def test_a_stream_cut_in_its_last_bytes_is_truncated(tmp_path, kind, extension):
    """The last bytes of a file's last stream cut (gzip's CRC and length, bzip2's end-of-stream marker
    and CRC, xz's index and footer; or its next stream's magic, 2 bytes of it): the pixels before the cut
    are whole, but the stream ends early. It was read with flags 0 (and a .fits.xz cut anywhere was
    UNREADABLE "not a FITS file" or "no image HDU"; a cut 2 bytes into the last stream "truncated file").
    The header's position is kept where the bytes before the cut hold the header (a cut .fits.gz had none;
    bzip2 gives no byte of a block cut short)."""
    raw, _ = _plain(tmp_path, extension)
    expected = f"truncated file (its {kind} stream ends early)"
    streams = _streams(kind, raw)
    single, multi = COMPRESS[kind](raw), b"".join(streams)
    for name, data in {
        "tail 1": single[:-1],
        "tail 4": single[:-4],
        "tail 12": single[:-12],
        "multi tail 4": multi[:-4],
        "multi, half the last": multi[: -len(streams[-1]) // 2],
        "multi, 2 bytes of the last": multi[: -len(streams[-1]) + 2],
    }.items():
        result = _read(tmp_path / "cut.fits.x", data)
        assert (result.image, result.flags, result.reason) == (None, Flag.TRUNCATED, expected), name
        if (kind, name) != ("bzip2", "tail 12"):  # bzip2 gives no byte of its one block cut short
            assert (result.ra_deg, result.dec_deg) == (150.0, 2.0), (
                name
            )  # the header read from the bytes before
        assert cut_short(tmp_path / "cut.fits.x") == expected.removeprefix("truncated file (")[:-1], name


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_whole_streams_of_a_cut_fits_file_are_truncated(tmp_path, kind):
    """A file whose streams are whole but hold a FITS file cut in its data (its last stream missing: cut
    at a stream's end; bzip2 streams with null bytes between them, which bzip2 stops at) was UNREADABLE
    "unreadable data (TypeError: buffer is too small for requested array)"; a plain file so cut is
    TRUNCATED "truncated file"."""
    for extension in (False, True):
        raw, _ = _plain(tmp_path, extension)
        first, second, _third = _streams(kind, raw)
        result = _read(tmp_path / "short.fits.x", first + second)
        assert (result.image, result.flags, result.reason) == (None, Flag.TRUNCATED, "truncated file")
    if kind == "bzip2":
        nulls = b"".join(_streams(kind, raw, b"\0" * 4))
        assert _read(tmp_path / "nulls.fits.x", nulls).flags == Flag.TRUNCATED


@pytest.mark.parametrize("kind", ["plain", "gzip", "bzip2", "xz"])
def test_a_file_cut_after_its_end_card_inside_its_block_is_truncated(tmp_path, kind):
    """A cutout's first 1000 bytes, its header's END card at byte 480 (its block's padding and its data
    cut): "not a FITS file (OSError: Empty or corrupt FITS file)"; the same as two whole streams."""
    raw, _ = _plain(tmp_path)
    assert raw.index(b"END" + b" " * 77) < 1000
    expected = "truncated file (its header ends at byte 1000, short of its 2880-byte block)"
    compress = COMPRESS.get(kind, bytes)
    datas = [compress(raw[:1000])] + (
        [compress(raw[:500]) + compress(raw[500:1000])] if kind != "plain" else []
    )
    for data in datas:
        result = _read(tmp_path / "cut.fits.x", data)
        assert (result.image, result.flags, result.reason) == (None, Flag.TRUNCATED, expected)


def test_an_ingest_stores_a_stream_cut_in_its_trailer_as_truncated(tmp_path, dask_client):
    """Object 100001's VIS file gzipped with its last 4 bytes (the length) cut was stored with flags 0;
    100002's, bzip2 in three streams (as pbzip2 writes), and 100003's, gzip in three members followed by
    zero padding, are whole and read as before; 100004's, ``.fits.xz`` in three padded streams, is found
    by discovery (review: the reader read xz, discovery found no ``.xz`` name: MISSING_FILE) and whole."""
    layout = load_layout("sglc1-space")
    band = layout.bands[0]
    source = tmp_path / "src"
    for object_id, suffix in ((100001, ".gz"), (100002, ".bz2"), (100003, ".gz"), (100004, ".xz")):
        path = source / band.path_for(object_id, layout.id_digits)
        image = np.random.default_rng(object_id).normal(size=(101, 101)).astype(np.float32)
        write_cutout(path, image, *sky(object_id), "rad", scale_arcsec=0.1)
        kind = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}[suffix]
        data = {
            100001: gzip.compress(path.read_bytes())[:-4],
            100002: b"".join(_streams(kind, path.read_bytes())),
            100003: b"".join(_streams(kind, path.read_bytes(), b"\0" * 4)) + b"\0" * 1024,
            100004: b"".join(_streams(kind, path.read_bytes(), b"\0" * 8)),
        }[object_id]
        path.with_name(path.name + suffix).write_bytes(data)
        path.unlink()
    report = ingest(layout, source, tmp_path / "s.zarr", dask_client)
    dataset = open_store(tmp_path / "s.zarr", chunks=None)
    flags = {int(i): int(dataset["flags"][row]) for row, i in enumerate(dataset["object_id"].values)}
    assert flags[100001] & Flag.TRUNCATED and not flags[100001] & Flag.UNREADABLE
    assert (flags[100002], flags[100003], flags[100004]) == (0, 0, 0)
    row = list(dataset["object_id"].values).index(100004)
    expected = np.random.default_rng(100004).normal(size=(101, 101)).astype(np.float32)
    np.testing.assert_array_equal(dataset[band.name.lower()].values[row, 0], expected)
    assert any("truncated file (its gzip stream ends early)" in reason for reason in report.reasons), report
    assert "stream padding" in REVISIONS[READER_REVISION]


@pytest.mark.parametrize("extension", [False, True], ids=["primary image", "image in an extension"])
def test_a_padded_xz_file_over_the_in_memory_limit_reads_whole(tmp_path, monkeypatch, extension):
    """Review: a valid xz file with stream padding whose bytes are over the in-memory limit (64 MiB; lowered
    here, a real file that size being slow to make) was TRUNCATED "truncated file": astropy read it with its
    own xz reader, which stops at the padding. A cut one of that size keeps its header's position."""
    import pipeline.sources.fits_io as fits_io

    monkeypatch.setattr(fits_io, "_FAST_MAX_BYTES", 1000)
    raw, image = _plain(tmp_path, extension)
    result = _read(tmp_path / "padded.fits.xz", b"".join(_streams("xz", raw, b"\0" * 4)))
    assert (result.flags, result.ra_deg) == (0, 150.0), result.reason
    np.testing.assert_array_equal(result.image, image)
    cut = _read(tmp_path / "cut.fits.xz", b"".join(_streams("xz", raw, b"\0" * 4))[:-200])
    assert (cut.flags, cut.reason, cut.ra_deg) == (
        Flag.TRUNCATED,
        "truncated file (its xz stream ends early)",
        150.0,
    )
