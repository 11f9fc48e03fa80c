"""A tile-compressed cutout (``.fits.fz``) with a corrupt GZIP tile is UNREADABLE, read at once.

Trial: 30 bytes overwritten in a GZIP_1 tile of a full-length ``.fits.fz`` made cfitsio's read hang for
good (an ingest worker stalled), and at the start of the table's data the band was called TRUNCATED
though the file is whole; a header that was read keeps its position. astropy decodes GZIP tiles
(:func:`pipeline.sources.compressed.cfitsio_decodes`). Each read runs in a child process with a time
limit, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import bz2
import json
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.flags import Flag

REPO = Path(__file__).resolve().parents[1]
READ = (
    "import json, sys\n"
    "from pipeline.sources import read_band\n"
    "from schemas.layout import load_layout\n"
    "r = read_band(sys.argv[1], (101, 101), coordinates=load_layout('euclid-sglc2').coordinates)\n"
    "print(json.dumps([int(r.flags), r.reason, r.ra_deg, r.dec_deg]))\n"
)


def _read(path: Path) -> tuple[int, str | None, float, float]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", READ, str(path)], capture_output=True, text=True, cwd=REPO, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path.name} did not end in 120 s (cfitsio's hang on a corrupt tile)")
    assert done.returncode == 0, done.stderr[-2000:]
    return tuple(json.loads(done.stdout))


@pytest.mark.parametrize(  # the table's data start: TRUNCATED; a tile: the hang
    ("offset", "why"),
    [(6000, "it gives another number of pixels than the tile holds"), (11400, "its data end early")],
)
def test_a_corrupt_gzip_tile_is_unreadable_at_once_and_keeps_the_headers_position(tmp_path, offset, why):
    image = np.random.default_rng(1).normal(0, 1, (101, 101)).astype(np.float32)
    header = fits.Header({"RA": 150.25, "DEC": 2.5})
    hdus = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, header, compression_type="GZIP_1")])
    hdus.writeto(tmp_path / "sound.fits.fz")
    raw = (tmp_path / "sound.fits.fz").read_bytes()
    assert len(raw) > offset + 2880  # within the file: it is whole
    (tmp_path / "bad.fits.fz").write_bytes(raw[:offset] + b"\x7f" * 30 + raw[offset + 30 :])
    assert _read(tmp_path / "sound.fits.fz") == (0, None, 150.25, 2.5)
    flags, reason, ra, dec = _read(tmp_path / "bad.fits.fz")
    assert flags == Flag.UNREADABLE  # a corrupt file (trial: zlib's words, "unreadable data (...)")
    assert reason == f"corrupt file (a compressed GZIP_1 tile of HDU 1 does not decompress: {why})"
    assert (ra, dec) == (150.25, 2.5)  # its header was read (trial: "no band file whose header ...")


@pytest.mark.parametrize(
    ("compression", "back", "why"),
    [
        ("GZIP_1", 3000, "invalid data, invalid bit length repeat"),
        ("GZIP_2", 800, "invalid data, invalid distance code"),
        ("GZIP_2", 3000, "it fails its CRC check"),
        ("RICE_1", 3000, "hit end of compressed byte stream"),
        ("HCOMPRESS_1", 800, "qtree_decode64: bad format code"),
        ("HCOMPRESS_1", 15000, "qtree_decode64: bad format code"),
    ],
)
def test_a_tile_that_does_not_decompress_says_so_in_words(tmp_path, compression, back, why):
    """Trial: ingest gave ``unreadable data (error: Error -3 while decompressing data)``, zlib's words;
    a corrupt tile is a corrupt file, as a gzip stream that fails its CRC is, and the reason says which
    HDU's tile does not decompress and why."""
    image = np.random.default_rng(1).normal(0, 1, (101, 101)).astype(np.float32)
    if compression != "GZIP_1":  # integers: RICE and HCOMPRESS are lossless on them
        image = (image * 1000).astype(np.int32)
    hdus = fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(image, fits.Header({"RA": 1.5}), compression_type=compression)]
    )
    hdus.writeto(tmp_path / "sound.fits.fz")
    raw = (tmp_path / "sound.fits.fz").read_bytes()
    offset = len(raw) - back  # within the tiles' heap
    (tmp_path / "bad.fits.fz").write_bytes(raw[:offset] + b"\x7f" * 30 + raw[offset + 30 :])
    flags, reason, _, _ = _read(tmp_path / "bad.fits.fz")
    assert flags == Flag.UNREADABLE
    assert reason == f"corrupt file (a compressed {compression} tile of HDU 1 does not decompress: {why})"


@pytest.mark.parametrize("kind", ["bzip2", "xz"])
def test_a_later_stream_damaged_at_its_start_is_corrupt_not_trailing_bytes(tmp_path, kind):
    """Review: Python's bz2 and lzma readers take a later stream of a file that fails within its first
    8 kB for trailing junk, and the file for its first stream alone (called truncated); it is corrupt.
    Bytes after the last stream that are no stream stay ignored, as bzip2 and xz do."""
    from pipeline.sources import read_band
    from schemas.layout import load_layout

    compress = bz2.compress if kind == "bzip2" else lzma.compress
    image = np.random.default_rng(2).normal(0, 1, (101, 101)).astype(np.float32)
    fits.PrimaryHDU(image, fits.Header({"RA": 150.25, "DEC": 2.5})).writeto(tmp_path / "plain.fits")
    plain = (tmp_path / "plain.fits").read_bytes()
    first, second = compress(plain[:-5760]), compress(plain[-5760:])  # two streams, as pbzip2 writes
    assert len(second) < 8192  # within the first read of the stream after the first

    def band(name: str, data: bytes):
        (tmp_path / name).write_bytes(data)
        return read_band(tmp_path / name, (101, 101), coordinates=load_layout("euclid-sglc2").coordinates)

    sound = band("sound.fits.x", first + second)
    assert sound.flags == 0 and np.array_equal(sound.image, image)
    assert band("trailing.fits.x", first + second + b"\0" * 100 + b"junk").flags == 0
    damaged = second[:200] + bytes(byte ^ 0x55 for byte in second[200:230]) + second[230:]
    bad = band("bad.fits.x", first + damaged)
    assert bad.flags == Flag.UNREADABLE
    assert bad.reason.startswith(f"corrupt file (its {kind} stream fails its "), bad.reason
