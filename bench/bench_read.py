"""CPU per file of ingest's reading and per-file checks alone (``read_objects``: no Dask, no writes).

``read_objects`` reads every band file of the objects, flags them (pixels, BAD_WCS, positions and
POSITION_MISMATCH, PIXEL_SCALE_MISMATCH, duplicates) and keeps the header cards, in one thread. It
is most of ingest's CPU per object (bench_ingest.py measures the whole ingest, writes included), and
with nothing else in the measurement its cost per file is steady enough to compare code versions
on a shared machine: run it in each tree (``cd TREE && python -m bench.bench_read ...``; a tree
without this file: ``PYTHONPATH=TREE python /path/to/bench_read.py``), interleaved.

    python -m bench.bench_read --source SET [--n 1000] [--repeats 5]

Prints the minimum and the median over ``--repeats`` runs of CPU microseconds per file.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True, help="an euclid-sglc2 set")
    parser.add_argument("--n", type=int, default=1000, help="objects read (the first n)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from pipeline.sources import discover
    from pipeline.store.reading import read_objects
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    manifest = discover(layout, args.source)
    manifest = manifest.select_or_missing(manifest.object_ids[: args.n])
    labels = np.zeros(len(manifest), np.int8)
    n_files = sum(path is not None for paths in manifest.paths.values() for path in paths)
    read_objects(layout, manifest, labels)  # imports, page cache
    seconds = []
    for _ in range(args.repeats):
        cpu = time.process_time()
        read_objects(layout, manifest, labels)
        seconds.append(time.process_time() - cpu)
    per_file = [s / n_files * 1e6 for s in seconds]
    print(
        f"read_objects, {len(manifest)} objects, {n_files} files: CPU us/file min {min(per_file):.1f}, "
        f"median {statistics.median(per_file):.1f} (of {args.repeats})"
    )


if __name__ == "__main__":
    main()
