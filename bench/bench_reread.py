"""Re-reading scattered changed objects: one write per run of rows (before) against one per shard (now).

A set of ``--n`` simulated euclid-sglc2 objects (seed 11) is ingested once (shards of 1024
objects); then the VIS pixels of every ``--every``-th object are multiplied by 3 (a replaced
reduction, as the trial did with astropy). Each measurement copies that store and runs
``ingest`` on it, which re-reads and rewrites the changed objects, with the store's row writer
as it was before the fix (:func:`per_run_write_rows`, a zarr write of each run of consecutive
rows, each a read-modify-write of the whole shard) and as it is now
(:func:`pipeline.store.row_writes.write_rows`), interleaved, ``--repeats`` times; medians.

The ingest runs on an in-process Dask cluster of one thread (``time.process_time`` covers all of
its work); bytes written are counted through zarr's local store. Both stores are checked equal.

    python -m bench.bench_reread --n 3000 --every 50 5 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import record_header


def per_run_write_rows(path, rows, dataset) -> None:
    """The row writer before the fix: one zarr write per run of consecutive rows."""
    import zarr

    from schemas.store import OBJECT_DIM

    group = zarr.open_group(Path(path), mode="r+")
    rows = np.asarray(rows, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    runs = [(int(run[0]), offset, len(run)) for run, offset in zip(np.split(rows, breaks), [0, *breaks])]
    for name, variable in dataset.variables.items():
        if not variable.dims or variable.dims[0] != OBJECT_DIM:
            continue
        array = group[str(name)]
        values = np.asarray(variable.values, dtype=array.dtype)
        for row, offset, n in runs:
            array[row : row + n] = values[offset : offset + n]


def _multiply_vis(source: Path, every: int) -> int:
    from astropy.io import fits

    files = sorted((source / "Public" / "EUC_VIS").glob("*.fits"))[::every]
    for path in files:
        with fits.open(path) as hdul:
            hdul[0].data = hdul[0].data * 3
            hdul.writeto(path, overwrite=True)
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--every", type=int, nargs="+", default=[50], help="change every k-th VIS file")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from distributed import Client
    from zarr.storage import LocalStore

    import pipeline.store.repair as repair
    from pipeline.simulate import simulate_set
    from pipeline.store import ingest, open_store
    from pipeline.store.row_writes import write_rows
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lenshunt-bench-reread-"))
    written = [0]
    original_set = LocalStore.set

    async def counted_set(self, key, value):
        written[0] += len(value)
        return await original_set(self, key, value)

    LocalStore.set = counted_set
    writers = {"before (a write per run of rows)": per_run_write_rows, "now (a write per shard)": write_rows}
    results: dict[tuple[int, str], list[tuple[float, float, int, int]]] = {}
    pristine, source = workdir / "pristine", workdir / "cutouts"
    if not pristine.exists():
        simulate_set("euclid-sglc2", args.n, pristine, seed=11)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        for every in args.every:
            shutil.rmtree(source, ignore_errors=True)
            shutil.copytree(pristine, source)
            base = workdir / f"base-{every}.zarr"
            shutil.rmtree(base, ignore_errors=True)
            ingest(layout, source, base, client)
            time.sleep(0.01)  # a modification time after the recorded ones
            n_changed = _multiply_vis(source, every)
            snapshots = {}
            for repeat in range(args.repeats):
                for name, writer in writers.items():
                    store = workdir / f"reread-{every}-{repeat}.zarr"
                    shutil.rmtree(store, ignore_errors=True)
                    shutil.copytree(base, store)
                    repair.write_rows = writer
                    written[0] = 0
                    cpu, wall = time.process_time(), time.perf_counter()
                    report = ingest(layout, source, store, client)
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    if not n_changed or report.n_reread != n_changed:
                        raise RuntimeError(f"re-read {report.n_reread} objects, not {n_changed}")
                    results.setdefault((every, name), []).append((cpu, wall, written[0], report.n_reread))
                    if repeat == 0:
                        snapshots[name] = open_store(store).load().drop_attrs()
                    shutil.rmtree(store, ignore_errors=True)
            first, second = snapshots.values()
            if not first.identical(second):
                raise RuntimeError("the two writers left different stores")
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)
    repair.write_rows = write_rows
    LocalStore.set = original_set

    title = "Re-reading scattered changed objects: a write per run of rows against one per shard"
    print(record_header(title))
    print(f"- {args.n} simulated euclid-sglc2 objects (seed 11), shards of 1024; medians of {args.repeats}\n")
    print("| changed (every k-th VIS) | row writer | wall s | CPU s | objects/s (wall) | MB written |")
    print("|---|---|---|---|---|---|")
    for every in args.every:
        medians = {}
        for name in writers:
            rows = results[(every, name)]
            cpu, wall, size = (statistics.median(row[i] for row in rows) for i in range(3))
            n = rows[0][3]
            medians[name] = wall
            rate = f"{n / wall:.1f}"
            print(f"| {n} (k={every}) | {name} | {wall:.1f} | {cpu:.1f} | {rate} | {size / 1e6:.0f} |")
        before, now = medians.values()
        print(f"| | **wall ratio before/now** | **{before / now:.1f}x** | | | |")
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
