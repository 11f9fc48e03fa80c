"""Ingest cost per object: lenshunt's ingest against the naive astropy loop, side by side.

The naive way reads every file with ``astropy.io.fits.getdata`` into NumPy arrays in one process
and writes nothing. lenshunt discovers, reads (the fast reader of plain float images, else fitsio
or astropy), flags, keeps the header cards, compresses and writes a sharded Zarr store, commits
it and checks conservation. Both run on the same set, page cache warm, interleaved, ``--repeats``
times; medians are reported.

CPU time is the measure (the machine may be shared): lenshunt's ingest runs on an in-process Dask
cluster of one thread, so ``time.process_time`` covers all of its work. The fixed cost (store
creation, plan, commit, checks) is taken out by also ingesting ``--n-small`` objects:
per object = (CPU(n) - CPU(n_small)) / (n - n_small). Each codec in ``--codecs`` gets its own
store (``LENSHUNT_IMAGE_CODEC``).

    python -m bench.bench_ingest --source SET --repeats 3 [--codecs lz4 zstd] [--n-small 10]
    python -m bench.bench_ingest --n 1000   # simulates a set first
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


def naive_ingest(paths_by_band: dict[str, list[str]]) -> dict[str, np.ndarray]:
    from astropy.io import fits

    return {
        band: np.stack([fits.getdata(path).astype(np.float32) for path in paths])
        for band, paths in paths_by_band.items()
    }


def _timed(function, *args, **kwargs) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return time.process_time() - cpu, time.perf_counter() - wall, result


def subset(source: Path, target: Path, n: int) -> Path:
    """A set of the first ``n`` objects of ``source`` (symbolic links, the catalog copied)."""
    if target.exists():
        return target
    for band_dir in sorted((source / "Public").iterdir()):
        files = sorted(band_dir.glob("*.fits"))[:n]
        (target / "Public" / band_dir.name).mkdir(parents=True)
        for path in files:
            (target / "Public" / band_dir.name / path.name).symlink_to(path)
    for catalog in source.glob("image_catalog*.csv"):
        shutil.copy(catalog, target / catalog.name)
    return target


def set_to_measure(source: Path | None, workdir: Path, n: int) -> Path:
    """``source``, or a set of ``n`` simulated euclid-sglc2 objects (seed 7) under ``workdir`` (kept)."""
    if source is not None:
        return source
    from pipeline.simulate import simulate_set

    source = workdir / "cutouts"
    if not source.exists():
        simulate_set("euclid-sglc2", n, source, seed=7)
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=None, help="an euclid-sglc2 set (default: simulate)")
    parser.add_argument("--n", type=int, default=1000, help="objects to simulate without --source")
    parser.add_argument("--n-small", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codecs", nargs="+", default=["lz4"], help="Blosc compressors of the image arrays")
    parser.add_argument("--chunk-objects", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from distributed import Client

    from pipeline.sources import discover
    from pipeline.store import ingest
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lenshunt-bench-"))
    source = set_to_measure(args.source, workdir, args.n)
    small = subset(source, workdir / "small", args.n_small)
    manifest = discover(layout, source)
    n = len(manifest)
    paths = {band: [str(p) for p in files] for band, files in manifest.paths.items()}
    naive_ingest({b: p[:50] for b, p in paths.items()})  # imports and page cache, for both

    rows: dict[str, list[tuple[float, float]]] = {}
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        for repeat in range(args.repeats):
            cpu, wall, arrays = _timed(naive_ingest, paths)
            assert arrays["VIS"].shape[0] == n
            rows.setdefault("naive", []).append((cpu, wall))
            for codec in args.codecs:
                os.environ["LENSHUNT_IMAGE_CODEC"] = codec
                for name, set_path, expected in (("small", small, args.n_small), ("full", source, n)):
                    store = workdir / f"{codec}-{name}-{repeat}.zarr"
                    shutil.rmtree(store, ignore_errors=True)
                    cpu, wall, report = _timed(
                        ingest, layout, set_path, store, client, chunk_objects=args.chunk_objects
                    )
                    if report.n_after != expected:
                        raise RuntimeError(f"benchmark lost objects: {report.n_after} != {expected}")
                    rows.setdefault(f"{codec}-{name}", []).append((cpu, wall))
                    if name == "full":
                        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
                        rows.setdefault(f"{codec}-bytes", []).append((size, 0.0))
                    shutil.rmtree(store, ignore_errors=True)
    os.environ.pop("LENSHUNT_IMAGE_CODEC", None)

    def med(key: str, index: int = 0) -> float:
        return statistics.median(row[index] for row in rows[key])

    raw_bytes = sum(os.path.getsize(p) for files in paths.values() for p in files)
    naive_cpu = med("naive") / n
    print(record_header("Ingest per object: lenshunt against the naive astropy loop"))
    print(
        f"- set: {source} ({n} objects, {4 * n} files, {raw_bytes / 1e6:.0f} MB); medians of {args.repeats}"
    )
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| what | CPU ms/object | wall ms/object | CPU ratio naive/ours | store MB (files) |")
    print("|---|---|---|---|---|")
    print(
        f"| naive `getdata` loop (writes nothing) | {naive_cpu * 1e3:.3f} "
        f"| {med('naive', 1) / n * 1e3:.3f} | 1 | - |"
    )
    for codec in args.codecs:
        per = (med(f"{codec}-full") - med(f"{codec}-small")) / (n - args.n_small)
        per_wall = (med(f"{codec}-full", 1) - med(f"{codec}-small", 1)) / (n - args.n_small)
        print(
            f"| lenshunt ingest, images Blosc {codec}+bitshuffle, after the fixed cost | {per * 1e3:.3f} "
            f"| {per_wall * 1e3:.3f} | **{naive_cpu / per:.2f}x** | {med(f'{codec}-bytes') / 1e6:.0f} |"
        )
        print(
            f"| lenshunt ingest ({codec}), fixed cost ({args.n_small} objects) "
            f"| {med(f'{codec}-small') * 1e3:.0f} ms "
            f"| {med(f'{codec}-small', 1) * 1e3:.0f} ms | | |"
        )
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
