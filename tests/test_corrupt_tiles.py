"""A tile-compressed cutout (``.fits.fz``) with a corrupt GZIP tile is UNREADABLE, read at once.

Trial: 30 bytes overwritten in a GZIP_1 tile of a full-length ``.fits.fz`` made cfitsio's read hang for
good (an ingest worker stalled), and at the start of the table's data the band was called TRUNCATED
though the file is whole; a header that was read keeps its position. astropy decodes GZIP tiles
(:func:`pipeline.sources.compressed.cfitsio_decodes`). Each read runs in a child process with a time
limit, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("offset", [6000, 11400])  # the table's data start: TRUNCATED; a tile: the hang
def test_a_corrupt_gzip_tile_is_unreadable_at_once_and_keeps_the_headers_position(tmp_path, offset):
    image = np.random.default_rng(1).normal(0, 1, (101, 101)).astype(np.float32)
    header = fits.Header({"RA": 150.25, "DEC": 2.5})
    hdus = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, header, compression_type="GZIP_1")])
    hdus.writeto(tmp_path / "sound.fits.fz")
    raw = (tmp_path / "sound.fits.fz").read_bytes()
    assert len(raw) > offset + 2880  # within the file: it is whole
    (tmp_path / "bad.fits.fz").write_bytes(raw[:offset] + b"\x7f" * 30 + raw[offset + 30 :])
    assert _read(tmp_path / "sound.fits.fz") == (0, None, 150.25, 2.5)
    flags, reason, ra, dec = _read(tmp_path / "bad.fits.fz")
    assert flags == Flag.UNREADABLE and reason.startswith("unreadable data ("), reason
    assert (ra, dec) == (150.25, 2.5)  # its header was read (trial: "no band file whose header ...")
