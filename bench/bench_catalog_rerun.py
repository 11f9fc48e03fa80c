"""What a rerun that changes nothing costs in catalog writing, and what the report's files/ costs on disk.

A score run rebuilds its catalog table at every rerun and hands it to
:func:`pipeline.catalog.write_catalog`. Before content digests it wrote the four formats again
(FITS, Parquet, VOTable, HATS); now it keeps the files that hold the same content. And
``lenshunt evaluate`` copied the catalogs (up to 64 MiB each) into ``report/files/``; now it
hard-links them. This measures both, side by side, on one synthesised catalog of ``--rows`` rows
(random scores over a 10x10 degree patch), with the code of two source trees: ``--before`` (e.g.
``git archive c6e0d50 pipeline schemas | tar -x -C /tmp/before``) and this checkout, each in its
own process, interleaved, ``--repeats`` times:

- the first write into an empty folder (what every rerun cost before);
- the rerun: ``write_catalog`` again with the same table and provenance but a new date;
- the report's ``files/``: placing the catalogs there as the evaluation does, its time and the
  bytes it adds on disk (files with one link: copies).

Only the catalog writing is timed, not the scoring, ingest or evaluation around it.

    python -m bench.bench_catalog_rerun --rows 200000 --before /tmp/before --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.machine import record_header

REPO = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, shutil, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

import pipeline
from pipeline.catalog import make_catalog_table, write_catalog
from pipeline.flags import Flag
from schemas.catalog import Provenance

rows, folder = int(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(5)
scores = rng.random(rows).astype(np.float32)
unscored = rng.random(rows) < 0.01
scores[unscored] = np.nan
flags = np.where(unscored, int(Flag.MISSING_FILE | Flag.NOT_SCORED), 0).astype(np.int32)
table = make_catalog_table(
    object_ids=np.arange(100000, 100000 + rows), ra=rng.uniform(145, 155, rows),
    dec=rng.uniform(-3, 7, rows), scores=scores, score_std=rng.uniform(0, 0.1, rows).astype(np.float32),
    flags=flags, model_id="bench-model", labels=rng.choice(np.array([-1, 0, 1], dtype=np.int8), rows),
)
provenance = Provenance(
    model_id="bench-model", model_sha256="0" * 64, store="/data/bench.zarr", layout="euclid-sglc2",
    code_version="0.1.0", date=datetime(2026, 12, 5, tzinfo=UTC), threshold=0.5, tta=False,
    n_objects=rows, n_scored=int((~unscored).sum()), extras={"batch_size": 256},
)
out = folder / "scores"
started = time.perf_counter()
write_catalog(table, out, provenance, expected_n=rows)
first = time.perf_counter() - started
later = provenance.model_copy(update={"date": provenance.date + timedelta(days=1)})
started = time.perf_counter()
written = write_catalog(table, out, later, expected_n=rows)
rerun = time.perf_counter() - started
report = out / "report"
report.mkdir()
started = time.perf_counter()
try:
    from pipeline.evaluation.downloads import report_downloads
    report_downloads(report)
except ImportError:  # the code before: copies (up to 64 MiB each)
    from pipeline.evaluation.report import _downloads
    _downloads(report)
files = time.perf_counter() - started
copied = sum(p.stat().st_size for p in (report / "files").iterdir() if p.stat().st_nlink == 1)
sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
print(json.dumps({
    "code": str(Path(pipeline.__file__).parents[1]), "first_s": first, "rerun_s": rerun,
    "files_s": files, "copied_bytes": copied, "kept": list(getattr(written, "kept", ())), "sizes": sizes,
}))
"""


def run_once(tree: Path, rows: int) -> dict:
    """One worker process on the code of ``tree``; its measurements."""
    with tempfile.TemporaryDirectory(prefix="lenshunt-bench-rerun-") as folder:
        environment = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(rows), folder],
            capture_output=True,
            text=True,
            env=environment,
            cwd=folder,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"worker on {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--before", type=Path, required=True, help="source tree of the code before")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    results: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, tree in (("before", args.before), ("after", REPO)):
            results[name].append(run_once(tree, args.rows))
            print(name, json.dumps(results[name][-1]), flush=True)
    print()
    print(record_header(f"Catalog rerun with nothing new, {args.rows} rows"))
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"- catalog sizes (bytes): {results['after'][-1]['sizes']}\n")
    print("| code | first write, s | rerun, s | report files/, s | bytes copied into files/ | kept |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        median = {
            key: statistics.median(run[key] for run in runs) for key in ("first_s", "rerun_s", "files_s")
        }
        print(
            f"| {name} | {median['first_s']:.1f} | {median['rerun_s']:.2f} | {median['files_s']:.3f} | "
            f"{runs[-1]['copied_bytes']:,} | {', '.join(runs[-1]['kept']) or '-'} |"
        )
    before = statistics.median(run["rerun_s"] for run in results["before"])
    after = statistics.median(run["rerun_s"] for run in results["after"])
    print(f"\nrerun before / after: {before / after:.0f}x")


if __name__ == "__main__":
    main()
