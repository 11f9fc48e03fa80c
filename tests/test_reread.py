"""A store read by older rules of reading files says so, and ``lenshunt ingest --reread`` reads it again.

Review: a store made before a reading rule changed (BAD_WCS for non-finite WCS cards, a broken
``.fits`` giving way to its whole ``.fits.gz``) kept what the old rules gave for good: an ingest
re-reads only objects whose files changed, and nothing said the store was read otherwise. Real FITS
files, a store made under the old rule by a real ingest on an in-process Dask cluster, then the real
CLI (``lenshunt info``, ``lenshunt ingest --reread``) in subprocesses.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import zarr
from astropy.io import fits
from cutouts import band_file, cutout_image, sky, write_cutout, write_set
from distributed import Client, LocalCluster

from pipeline import paths
from pipeline.flags import Flag
from pipeline.sources.duplicate_files import ChosenRead
from pipeline.store import ingest, open_store, read_attributes
from pipeline.store.reader_revision import READER_REVISION
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [840001, 840002, 840003]
REPO = Path(__file__).resolve().parents[1]


def _lenshunt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        timeout=300,
    )


def test_a_store_read_by_older_rules_says_so_and_reread_applies_todays(tmp_path, monkeypatch, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    cut = band_file(EUCLID, root, IDS[0], "VIS")
    whole = fits.getdata(cut).astype(np.float32)
    cut.with_name(cut.name + ".gz").write_bytes(gzip.compress(cut.read_bytes()))
    with open(cut, "r+b") as file:  # a .fits cut short beside its whole .fits.gz
        file.truncate(cut.stat().st_size // 2)
    store = tmp_path / "store.zarr"

    # the store as an earlier lenshunt made it: the preferred file read even when broken, no revision
    monkeypatch.setattr(
        "pipeline.store.reading.read_first_usable", lambda files, read: ChosenRead(0, read(files[0]))
    )
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        ingest(EUCLID, root, store, client)
    monkeypatch.undo()
    assert read_attributes(store).reader_revision == READER_REVISION  # a new store: today's rules
    del zarr.open_group(store, mode="r+").attrs["reader_revision"]
    assert read_attributes(store).reader_revision == 1
    assert open_store(store)["band_flags"].values[0, 0] == Flag.TRUNCATED | Flag.DUPLICATE_ID

    # nothing changed on disk: nothing is re-read, but the ingest and `lenshunt info` say why it could be
    plain = ingest(EUCLID, root, store, dask_client)
    assert plain.n_reread == 0
    note = (
        "  warning: the store's objects were read by older rules (revision 1, today's 9; revision 2: a band "
        "whose preferred file is unreadable, truncated or of another shape is read from the next of its "
        "duplicates (DUPLICATE_ID) that gives an image (2026-12-05); revision 3: an RA card beyond a turn "
        "([-360, 360] deg in the layout's unit) is unusable, as a DEC beyond a pole is (NO_COORDINATES "
        "where nothing else gives a position); a file TRUNCATED in its data keeps its header's position"
        "; the shipped sglc1 layouts declare their files' WCS a placeholder (wcs_position: false), which "
        "--reread records in the store (2026-12-05); revision 4: a band with BSCALE = 0 (every physical "
        "value BZERO) is UNREADABLE naming the card, not a blank image (CONSTANT_IMAGE); a band whose "
        "position cards (RA/DEC) are over 2 arcsec from its own WCS's world position of the image centre "
        "is flagged POSITION_MISMATCH (not where the layout's WCS is a placeholder) (2026-12-06); "
        "revision 5: header cards over the store's room are chosen, not cut in file order: the WCS core, "
        "frame, units, zero point, exposure and position cards first, a distortion (SIP, TPV) whole or left "
        "out whole with a COMMENT; a store made today holds 256 cards a band (64 before), and the PSF and "
        "noise cards "
        "(PSF_FWHM, PSF_TYPE, NOISESIG, ...) are kept (2026-12-06); revision 6: a compressed file (gzip, "
        "bzip2, xz, zip) is read to the end of its stream and its CRC checked: one that fails (a .fits.gz "
        "with bytes overwritten or a bit flipped, read before as good data with wrong pixels) is UNREADABLE, "
        "'corrupt file (its gzip stream fails its CRC check)' (2026-12-07); revision 7: a file whose image "
        "HDU carries DATASUM or CHECKSUM cards that do not match its bytes (data overwritten after it was "
        "written, read before as good data) is UNREADABLE, 'corrupt file (DATASUM 123 does not match its "
        "data: 456)'; a .fits.fz whose GZIP tile is corrupt is UNREADABLE, not TRUNCATED, and keeps its "
        "header's position (2026-12-07); revision 8: the null pixels (BLANK, ZBLANK) of an unsigned integer "
        "image (BZERO = 32768, 2**31, ...; read before as numbers, 65535 or 0, with no flag), of a BITPIX 8 "
        "image (BLANK = 0, or BZERO = -128: UNREADABLE before) and of any integer image with BLANK = 0 are "
        "NaN and flagged NULL_PIXELS (2026-12-07); revision 9: a compressed file cut in its last bytes "
        "(gzip's CRC and length, bzip2's or xz's end of stream; read before with flags 0) is TRUNCATED, "
        "'truncated file (its gzip stream ends early)', as is a cut .fits.xz (UNREADABLE 'not a FITS file' "
        "before) and a file whose whole streams hold a FITS file cut in its data or cut after a header's END "
        "card; an xz file of several streams with stream padding (null bytes) between them is read whole "
        "(UNREADABLE before); a cut compressed file keeps the position of the header its bytes before the "
        "cut hold (2026-12-07)); "
        "`lenshunt ingest --reread` reads every object again "
        "with today's rules"
    )
    assert note in plain.summary()
    info = _lenshunt("info", str(store))
    assert info.returncode == 0 and "WARNING    the store's objects were read by older rules" in info.stdout

    reread = _lenshunt("ingest", str(root), str(store), "--reread")
    assert reread.returncode == 0, reread.stderr
    assert (  # (the duplicate stays flagged DUPLICATE_ID)
        "re-read 3 stored objects (--reread: every one whose files are there): 1 came out otherwise and "
        "were rewritten (a score run scores them again); 2 of the 3 now have no flag"
    ) in reread.stdout
    assert "read by older rules" not in reread.stdout
    data = open_store(store)
    assert data["band_flags"].values[0, 0] == Flag.DUPLICATE_ID
    np.testing.assert_array_equal(data["vis"].values[0, 0], whole)
    assert read_attributes(store).reader_revision == READER_REVISION
    records = sorted(paths.repair_records_dir(store).glob("repair-*.json"))
    assert json.loads(records[-1].read_text())["rows"] == [0]  # the score run rescores that row only
    assert "WARNING" not in _lenshunt("info", str(store)).stdout
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0


def test_a_reread_leaves_objects_whose_files_are_gone_and_keeps_the_older_revision(tmp_path, dask_client):
    root = write_set(EUCLID, tmp_path / "src", IDS)
    store = tmp_path / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    del zarr.open_group(store, mode="r+").attrs["reader_revision"]
    before = open_store(store)["vis"].values[1, 0].copy()
    band_file(EUCLID, root, IDS[1], "VIS").unlink()  # a re-read would blank its VIS
    j_file, j_pixels = band_file(EUCLID, root, IDS[2], "J"), cutout_image(9, 2, EUCLID.band("J").shape)
    write_cutout(j_file, j_pixels, *sky(IDS[2]), scale_arcsec=0.3)
    report = ingest(EUCLID, root, store, dask_client, reread=True)
    assert report.n_reread == 2 and report.n_rewritten == 1  # the object with its J replaced
    np.testing.assert_array_equal(open_store(store)["vis"].values[1, 0], before)
    assert any("lost band files" in line for line in report.files_gone)
    assert read_attributes(store).reader_revision == 1  # not every object was read again
    [line] = report.older_rules  # and it says why (trial: the warning came back unexplained)
    assert line.startswith("the store's objects were read by older rules (revision 1, today's")
    assert line.endswith(
        "; this --reread left 1 object(s) as stored (files gone or failing: the lines above name them), "
        "so the store keeps its revision until they are restored and read again"
    )

    # an edited or damaged revision is the oldest (trial: a pydantic traceback); a newer one is said
    for value, expected in ((None, "older rules (revision 1,"), ("x", "older rules (revision 1,"),
                            (99, "a newer lenshunt's rules (revision 99;")):  # fmt: skip
        zarr.open_group(store, mode="r+").attrs["reader_revision"] = value
        info = _lenshunt("info", str(store))
        assert info.returncode == 0 and "Traceback" not in info.stderr, info.stderr
        assert f"WARNING    the store's objects were read by {expected}" in info.stdout


def test_a_file_replaced_keeping_its_size_and_time_is_read_again_by_reread(tmp_path, dask_client):
    """Session-45 gap: a file replaced by another of the same size and modification time is not noticed
    (the quick check rsync makes too, which keeps ``cp -p`` copies from being read again); ``--reread``
    (its help and docs/operations.md say so) reads it."""
    root = write_set(EUCLID, tmp_path / "src", IDS)
    store = tmp_path / "store.zarr"
    ingest(EUCLID, root, store, dask_client)
    j_file = band_file(EUCLID, root, IDS[2], "J")
    before = j_file.stat()
    j_pixels = cutout_image(9, 2, EUCLID.band("J").shape)
    write_cutout(j_file, j_pixels, *sky(IDS[2]), scale_arcsec=0.3)
    os.utime(j_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (j_file.stat().st_size, j_file.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert ingest(EUCLID, root, store, dask_client).n_reread == 0  # unnoticed: same size and time
    report = ingest(EUCLID, root, store, dask_client, reread=True)
    assert (report.n_reread, report.n_rewritten) == (3, 1)
    stored = open_store(store)["nir"].sel(nir_band="J").values[2]
    np.testing.assert_array_equal(stored, j_pixels.astype(np.float32))
