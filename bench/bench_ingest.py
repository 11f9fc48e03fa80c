"""Ingest throughput: lenshunt's ingest on a local Dask cluster against the naive way.

The naive way reads every file with ``astropy.io.fits.getdata`` into NumPy arrays in one process
(and writes nothing). lenshunt discovers, reads with fitsio on Dask workers, flags, and writes a
sharded, compressed Zarr store. Both run on the same simulated set, side by side, in one run.

    python -m bench.bench_ingest --n 1000 --workers 2 --chunk-objects 256
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import record_header


def naive_ingest(layout, root: Path, object_ids) -> dict[str, np.ndarray]:
    from astropy.io import fits

    arrays = {}
    for band in layout.bands:
        arrays[band.name] = np.stack(
            [fits.getdata(root / band.path_for(i, layout.id_digits)).astype(np.float32) for i in object_ids]
        )
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--chunk-objects",
        type=int,
        default=256,
        help="objects per shard = per ingest task; a set needs several per worker to use them all",
    )
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from pipeline.simulate import simulate_set
    from pipeline.store import ingest
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lenshunt-bench-"))
    source = workdir / "cutouts"
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        if not source.exists():
            simulate_set(layout, args.n, source, seed=7, client=client)
        object_ids = sorted(int(p.stem.split("-")[-1]) for p in (source / "Public/EUC_VIS").glob("*.fits"))
        naive_ingest(layout, source, object_ids[:50])  # warm the page cache and imports alike

        tic = time.perf_counter()
        arrays = naive_ingest(layout, source, object_ids)
        naive_seconds = time.perf_counter() - tic

        store = workdir / "bench.zarr"
        shutil.rmtree(store, ignore_errors=True)
        client.run(lambda: __import__("pipeline.store.ingestion"))  # imports on workers are not ingest time
        tic = time.perf_counter()
        report = ingest(layout, source, store, client, chunk_objects=args.chunk_objects)
        ours_seconds = time.perf_counter() - tic
    n = len(object_ids)
    if report.n_after != n or arrays["VIS"].shape[0] != n:
        raise RuntimeError("benchmark lost objects")
    naive_rate, ours_rate = n / naive_seconds, n / ours_seconds
    print(record_header("Ingest: lenshunt vs naive astropy getdata"))
    print(
        f"| set | naive getdata, 1 process | lenshunt ingest, {args.workers} workers, shards of "
        f"{args.chunk_objects} | ratio |"
    )
    print("|---|---|---|---|")
    print(
        f"| euclid-sglc2, {n} objects ({4 * n} files) | {naive_rate:.0f} objects/s ({naive_seconds:.1f} s) "
        f"| {ours_rate:.0f} objects/s ({ours_seconds:.1f} s) | {ours_rate / naive_rate:.2f}x |"
    )


if __name__ == "__main__":
    main()
