"""Unfinished writes a killed writer left in a store are removed by the next ingest (real Zarr, real kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from cutouts import write_set

from pipeline.store.ingestion import ingest
from pipeline.store.leftovers import unfinished_writes
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(100000, 100012))


def _killed_zarr_write(target: Path, n_bytes: int) -> None:
    """Write ``target`` as Zarr's local store writes a chunk, and SIGKILL the writer before its rename."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from zarr.storage._local import _atomic_write
        with _atomic_write(Path({str(target)!r}), "wb") as f:
            f.write(b"x" * {n_bytes}); f.flush()
            print("written", flush=True)
            time.sleep(120)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "written"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_the_next_ingest_removes_what_a_killed_write_left_and_only_that(tmp_path, dask_client):
    source = write_set(EUCLID, tmp_path / "src", IDS, {i: i % 2 for i in IDS})
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=4)
    before = open_store(store).load()
    shard = next(p for p in (store / "vis" / "c").rglob("*") if p.is_file())
    _killed_zarr_write(shard, 2_000_000)  # trial: a 165 MB *.partial stayed after a kill
    bookkeeping = store / "_lenshunt" / "reports"
    (bookkeeping / "ingest-x.json.tmp").write_text("{")  # write_json_atomic's, killed
    (bookkeeping / ".without-files.npz.4242.tmp").write_bytes(b"\0" * 10)  # temporary_beside's
    kept = [store / "vis" / "notes.partial", tmp_path / "src" / "x.0123456789abcdef0123456789abcdef.partial"]
    for path in kept:  # not a writer's temporary name, or not in the store
        path.write_text("keep")
    left = unfinished_writes(store)
    partial = [path for path in left if path.suffix == ".partial"]
    assert len(left) == 3 and len(partial) == 1 and partial[0].name.startswith(shard.name + ".")

    report = ingest(EUCLID, source, store, dask_client, chunk_objects=4)

    assert unfinished_writes(store) == []
    assert all(path.exists() for path in kept)
    assert report.leftovers == [
        "removed 3 unfinished write(s) (2.0 MB) that an interrupted writer left in the store"
    ]
    assert "  cleaned: removed 3 unfinished write(s)" in report.summary()
    assert open_store(store).load().identical(before)
    again = ingest(EUCLID, source, store, dask_client, chunk_objects=4)
    assert again.leftovers == [] and "cleaned" not in again.summary()
    np.testing.assert_array_equal(open_store(store)["object_id"].values, IDS)
