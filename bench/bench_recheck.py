"""What noticing replaced band files costs a re-ingest: file tables against reading every file again.

Every ingest records each band file's size and modification time (:mod:`pipeline.store.file_records`)
and the next ingest compares them with the files on disk, so that a cutout replaced after it was
ingested is read again. The naive way to notice a replaced file without records is to read every
file again (``astropy.io.fits.getdata``). Side by side on one set, page cache warm, interleaved,
``--repeats`` times (medians):

- a whole re-ingest of the unchanged set (discovery, the comparison, the label catalog, the
  conservation check; nothing is read or written);
- the comparison alone (:func:`pipeline.store.repair.changed_objects`: one ``os.stat`` per file and
  the saved tables);
- the naive full re-read.

    python -m bench.bench_recheck --n 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_ingest import naive_ingest, set_to_measure
from bench.machine import record_header


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    wall = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - wall, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=None, help="an euclid-sglc2 set (default: simulate)")
    parser.add_argument("--n", type=int, default=2000, help="objects to simulate without --source")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from distributed import Client

    from pipeline.sources import discover
    from pipeline.store import ingest
    from pipeline.store.repair import changed_objects
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lenshunt-bench-"))
    source = set_to_measure(args.source, workdir, args.n)
    manifest = discover(layout, source)
    n = len(manifest)
    paths = {band: [p for p in files if p] for band, files in manifest.paths.items()}
    n_files = sum(len(files) for files in paths.values())
    store = workdir / "store.zarr"
    shutil.rmtree(store, ignore_errors=True)
    rows: dict[str, list[float]] = {}
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        ingest(layout, source, store, client)
        naive_ingest({band: files[:50] for band, files in paths.items()})  # imports and page cache
        for _ in range(args.repeats):
            seconds, report = _timed(ingest, layout, source, store, client)
            if report.n_reread or report.n_added:
                raise RuntimeError("the set changed during the benchmark")
            rows.setdefault("reingest", []).append(seconds)
            seconds, changes = _timed(changed_objects, store, discover(layout, source))
            if changes.rows.size:
                raise RuntimeError("the comparison found changes in an unchanged set")
            rows.setdefault("compare", []).append(seconds)
            seconds, _ = _timed(naive_ingest, paths)
            rows.setdefault("naive", []).append(seconds)
    tables = sum(path.stat().st_size for path in store.glob("_lenshunt/ingest/*/region-*.files.npz"))

    def med(key: str) -> float:
        return statistics.median(rows[key])

    print(record_header("Noticing replaced files: file tables against reading every file again"))
    print(f"- set: {source} ({n} objects, {n_files} files); medians of {args.repeats}, wall time")
    print(f"- file tables: {tables / 1e3:.0f} kB ({tables / n:.0f} bytes per object)")
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| what | wall s | ms per 1000 objects | naive / this |")
    print("|---|---|---|---|")
    for key, what in (
        ("reingest", "re-ingest of the unchanged set (`ingest`, whole)"),
        ("compare", "the comparison alone (`changed_objects`)"),
        ("naive", "naive: read every file again (`getdata` loop)"),
    ):
        print(f"| {what} | {med(key):.2f} | {med(key) / n * 1e6:.0f} | **{med('naive') / med(key):.1f}x** |")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
