"""Fixed cost of the ``lenshunt`` command: ``--help``, ``info`` and ``ingest`` of a tiny set.

Each command runs as a whole process, ``--repeats`` times, interleaved with the same commands of
another checkout (``--other``, e.g. the code before a change, unpacked with ``git archive``), and
reports medians of wall time, CPU time (the process and its children: servers, Dask workers)
and, for ``ingest``, the time from the start to the first ``open`` of a FITS file of the set
(``strace -f``, openat only, filtered in the kernel with ``--seccomp-bpf``).

    python -m bench.bench_startup --source SET10 --repeats 3 [--other /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import record_header

_STAMP = re.compile(r"^\d+\s+(\d+\.\d+)\s")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str], code: Path | None, trace_fits_under: Path | None = None) -> dict:
    """Wall and CPU seconds of one command; ``first_read`` when ``trace_fits_under`` is given."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "flows.cli", *argv]
    log = None
    if trace_fits_under is not None and shutil.which("strace"):
        log = Path(tempfile.mkstemp(prefix="lenshunt-strace-")[1])
        command = ["strace", "-f", "-ttt", "--seccomp-bpf", "-e", "trace=openat", "-o", str(log), *command]
    cpu = _children_cpu()
    started = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=code)
    wall = time.time() - started
    out = {"wall": wall, "cpu": _children_cpu() - cpu, "rc": result.returncode}
    if result.returncode != 0:
        out["error"] = result.stderr[-2000:]
    if log is not None:
        first = None
        prefix = str(trace_fits_under)
        for line in log.read_text().splitlines():
            if prefix in line and ".fits" in line:
                match = _STAMP.match(line)
                if match:
                    first = float(match.group(1)) - started
                    break
        out["first_read"] = first
        log.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True, help="a tiny euclid-sglc2 set (10 objects)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="pass --workers N to ingest (0: the default)")
    parser.add_argument("--other", type=Path, default=None, help="another checkout to compare (PYTHONPATH)")
    parser.add_argument("--no-trace", action="store_true", help="do not time the first FITS read")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lenshunt-startup-"))
    codes = {"this": None, **({"other": args.other} if args.other else {})}
    results: dict[tuple[str, str], list[dict]] = {}
    for repeat in range(args.repeats):
        for label, code in codes.items():
            store = work / f"{label}-{repeat}.zarr"
            workers = ["--workers", str(args.workers)] if args.workers else []
            ingest = run_once(
                ["ingest", str(args.source), str(store), *workers],
                code,
                None if args.no_trace else args.source.resolve(),
            )
            results.setdefault((label, "ingest"), []).append(ingest)
            results.setdefault((label, "--help"), []).append(run_once(["--help"], code))
            results.setdefault((label, "info"), []).append(run_once(["info", str(store)], code))
    print(record_header("CLI fixed cost (whole processes, medians)"))
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| code | command | wall s | CPU s (with children) | first FITS read s | runs ok |")
    print("|---|---|---|---|---|---|")
    for (label, name), runs in results.items():
        ok = [r for r in runs if r["rc"] == 0]
        if not ok:
            print(f"| {label} | {name} | failed: {runs[0].get('error', '')[-300:]!r} | | | 0 |")
            continue
        firsts = [r["first_read"] for r in ok if r.get("first_read") is not None]
        first = f"{statistics.median(firsts):.2f}" if firsts else "-"
        print(
            f"| {label} | {name} | {statistics.median(r['wall'] for r in ok):.2f} "
            f"| {statistics.median(r['cpu'] for r in ok):.2f} | {first} | {len(ok)}/{len(runs)} |"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
