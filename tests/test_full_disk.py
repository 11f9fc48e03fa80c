"""A full disk says where it was writing, in one line, with no Dask worker's traceback block.

Trial: ``lenshunt run`` into a full 3 MB tmpfs printed a ``distributed.worker - ERROR - Compute
Failed`` block with the traceback as text, then ``error: a file: No space left on device``; so
did ``lenshunt evaluate`` on an output folder with 2.7 MB free. A write (not an open) that fails
on a full disk raises ``OSError(ENOSPC)`` with no file name. A full disk cannot be made portably
in a test without root (a tmpfs mount), so these tests raise exactly that at the lowest writer
they can reach: the real CLI runs as a subprocess with the shard writer (ingest) or the gallery
writer (evaluate) replaced by one that raises ``OSError(ENOSPC, ...)`` without a file name, and a
real process ``LocalCluster`` with the CLI's worker preload runs a task that raises it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cutouts import write_set
from test_inspect import write_run
from test_training import LAYOUT

from pipeline.store import ingest
from schemas.layout import load_layout

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[1]
IDS = list(range(640000, 640012))
FULL = "No space left on device; free space on that disk, or write elsewhere"

#: ``lenshunt`` with the writer ``{module}.{name}`` failing as a full disk does, with no file name.
PLANTED = """
import errno, os, sys, {module}
def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
{module}.{name} = full
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _lenshunt_on_a_full_disk(module: str, name: str, args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the CLI's temporary server
    code = PLANTED.format(module=module, name=name)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=300
    )


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if " error" in line.lower()]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_a_full_disk_in_an_ingest_names_the_store(tmp_path):
    source = write_set(load_layout("euclid-sglc2"), tmp_path / "src", IDS, {i: i % 2 for i in IDS})
    store = tmp_path / "store.zarr"
    result = _lenshunt_on_a_full_disk(
        "pipeline.store.shards",
        "write_whole_shard",
        ["ingest", str(source), str(store)],
    )
    line = _one_error_line(result)
    assert line == f"lenshunt ingest: error: writing in {store}: {FULL}", line


def test_a_full_disk_in_an_evaluation_names_the_output_folder(tmp_path, dask_client):
    source = write_set(LAYOUT, tmp_path / "src", IDS, {i: i % 2 for i in IDS})
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run")
    result = _lenshunt_on_a_full_disk(
        "pipeline.evaluation.gallery", "render_gallery_pngs", ["evaluate", str(run), "--store", str(store)]
    )
    line = _one_error_line(result)
    assert line == f"lenshunt evaluate: error: writing in {run}: {FULL}", line


def test_a_full_disk_in_a_runs_evaluation_names_the_scores_folder_and_its_fix(tmp_path):
    """Trial: ``lenshunt run`` whose report filled the disk was told to chmod or chattr its folder."""
    source = write_set(load_layout("euclid-sglc2"), tmp_path / "src", IDS, {i: i % 2 for i in IDS})
    work = tmp_path / "work"
    result = _lenshunt_on_a_full_disk(
        "pipeline.evaluation.gallery", "render_gallery_pngs", ["run", str(source), str(work), "--workers=1"]
    )
    line = _one_error_line(result)
    assert f"could not be written in full: writing in {work / 'scores'}: {FULL}; then `lenshunt" in line, line
    assert "chmod" not in line, line


WORKER = """
import errno, os
import dask
from distributed import Client, LocalCluster

def full_disk():
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

def bug():
    raise ValueError("a planted bug")

if __name__ == "__main__":
    with dask.config.set({"distributed.worker.preload": ["flows.worker_signals"]}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster, Client(cluster) as client:
            for function in (full_disk, bug):
                try:
                    client.submit(function, pure=False).result()
                except Exception as exc:
                    print("raised", type(exc).__name__, flush=True)
"""


def test_a_worker_logs_no_compute_failed_block_for_a_full_disk_but_does_for_a_bug(tmp_path):
    """The worker's "Compute Failed" record (ERROR, the traceback as text) of a deterministic failure
    is dropped: the exception reaches the client, and the CLI says it in one line. A bug keeps it."""
    script = tmp_path / "worker_failures.py"
    script.write_text(textwrap.dedent(WORKER))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["raised OSError", "raised ValueError"], result.stdout
    assert result.stderr.count("Compute Failed") == 1, result.stderr[-3000:]
    assert "a planted bug" in result.stderr and "No space left on device" not in result.stderr, result.stderr


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory, dask_client):
    root = tmp_path_factory.mktemp("scored")
    source = write_set(LAYOUT, root / "src", IDS, {i: i % 2 for i in IDS})
    store = root / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    return store, write_run(store, root / "run")


@pytest.mark.parametrize(
    ("command", "module", "name"),
    [
        ("simulate", "pipeline.simulate.runner", "write_fits"),
        ("cutout", "astropy.io.fits", "PrimaryHDU.writeto"),
        ("inspect", "pyarrow.parquet", "write_table"),  # grades.parquet (pipeline.evaluation.grade_export)
    ],
)
def test_a_full_disk_in_a_command_without_a_stage_names_its_output_folder(
    command, module, name, scored_run, tmp_path
):
    """Trial: ``simulate``, ``train``, ``cutout`` and ``inspect`` said "a file: No space left on
    device"; each names the folder it writes (its ``WRITES_IN`` argument, flows.cli)."""
    store, run = scored_run
    out = tmp_path / "out"
    args = {
        "simulate": ["simulate", str(out), "--n", "2", "--in-process"],
        "cutout": ["cutout", str(store), str(IDS[0]), "--out", str(out)],
        "inspect": ["inspect", str(run), "--export", "--inspector", "ann"],
    }[command]
    result = _lenshunt_on_a_full_disk(module, name, args)
    line = _one_error_line(result)
    folder = run if command == "inspect" else out  # inspect writes its grades in the run
    assert line == f"lenshunt {command}: error: writing in {folder}: {FULL}", line


#: ``lenshunt`` whose FITS writers fail as they do on a full disk: no errno (review trial, a tmpfs).
PLANTED_NO_ERRNO = """
import collections, shutil, sys
import astropy.io.fits, fitsio
import pipeline.atomic
def cfitsio_full(path, *args, **kwargs):
    open(path, "wb").write(b"SIMPLE  =" + b" " * 90)  # part of a file, as a full disk leaves
    raise OSError("FITSIO status = 106: error writing to FITS file")
def astropy_full(self, path, *args, **kwargs):
    open(path, "wb").write(b"SIMPLE  =" + b" " * 90)
    raise OSError("Not enough space on disk: requested 160000, available 0. ")
Usage = collections.namedtuple("Usage", "total used free")
fitsio.write = cfitsio_full
astropy.io.fits.PrimaryHDU.writeto = astropy_full
pipeline.atomic.shutil.disk_usage = lambda path: Usage(600 * 1024, 600 * 1024, 0)
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["simulate", "cutout"])
def test_a_fits_writers_full_disk_error_without_errno_is_said_and_leaves_no_part_file(
    command, scored_run, tmp_path
):
    """Review trial (a 600 KB tmpfs): ``simulate`` ended in a traceback of cfitsio's ``FITSIO status =
    106``, ``cutout`` in astropy's ``Not enough space on disk`` and left a 100 KB part of its file."""
    store, _ = scored_run
    out = tmp_path / "out"
    args = {
        "simulate": ["simulate", str(out), "--n", "2", "--in-process"],
        "cutout": ["cutout", str(store), str(IDS[0]), "--out", str(out)],
    }[command]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [sys.executable, "-c", PLANTED_NO_ERRNO, *args], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=300,
    )  # fmt: skip
    assert _one_error_line(result) == f"lenshunt {command}: error: writing in {out}: {FULL}"
    assert not [path for path in out.rglob("*") if path.is_file() and path.suffix in (".fits", ".tmp")]


def test_only_a_nearly_full_disk_makes_cfitsios_write_error_a_full_disk(tmp_path, monkeypatch):
    import errno
    import shutil

    from pipeline.atomic import full_disk_as_enospc

    def failing(text: str, number: int | None = None):
        with full_disk_as_enospc(tmp_path):
            raise OSError(text) if number is None else OSError(number, text)

    with pytest.raises(OSError, match="FITSIO status = 106") as caught:  # a disk with room: another error
        failing("FITSIO status = 106: error writing to FITS file")
    assert caught.value.errno is None
    with pytest.raises(OSError, match="No space left on device") as caught:
        failing("Not enough space on disk: requested 10, available 0")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename is None
    with pytest.raises(OSError, match="Input/output error") as caught:
        failing("Input/output error", errno.EIO)
    assert caught.value.errno == errno.EIO  # a real errno stays
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=4096))
    with pytest.raises(OSError, match="No space left on device") as caught:
        failing("FITSIO status = 106: error writing to FITS file")
    assert caught.value.errno == errno.ENOSPC
