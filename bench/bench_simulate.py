"""Benchmark the simulator: objects/s in-process (one core) and on a local Dask cluster.

Imports and the first render are paid before timing (on every worker too), so the numbers are
the steady-state rates a long run sees. Prints one markdown table row per setting: wall-clock
objects/s, CPU seconds per object (the in-process CPU time, or the workers' CPU time summed; it
does not depend on what else loads the machine), and the wall time of a 100k set on 16 idle
cores extrapolated from that CPU time (objects are independent and each worker writes its own
files, so the work scales with cores).

Usage::

    python bench/bench_simulate.py --layout euclid-sglc2 --n 200 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.compute import connect
from pipeline.simulate import simulate_batch, simulate_set
from pipeline.simulate.config import SimulationConfig
from schemas.layout import load_layout

WARM_ID = 999_000


def _warm(layout_name: str, out_dir: str) -> int:
    """Import everything and render one object (runs in the bench process or on a worker)."""
    simulate_batch([WARM_ID], load_layout(layout_name), out_dir, 0, SimulationConfig())
    return os.getpid()


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_cluster(args: argparse.Namespace, scratch: Path, trim: str | None) -> tuple:
    """One LocalCluster run; ``trim`` None unsets the MALLOC_TRIM_THRESHOLD_ Dask gives workers.

    Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in workers (and in this process's environ).
    That turns off glibc's dynamic mmap threshold, so every large numpy temporary is a fresh
    mmap with page faults: measured here at about 2x the CPU time per object.
    """
    import dask
    import distributed  # noqa: F401  (loads its config defaults before they are overridden)

    overrides = {} if trim else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    if not trim:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set(overrides), connect("local", n_workers=args.workers) as client:
        client.wait_for_workers(args.workers)
        client.run(_warm, args.layout, str(scratch / "warm"))
        cpu = sum(client.run(_cpu_seconds).values())
        out = scratch / f"dask-{'default' if trim else 'untrimmed'}"
        summary = simulate_set(args.layout, args.n, out, client=client, batch_size=args.batch_size)
        cpu = sum(client.run(_cpu_seconds).values()) - cpu
    label = f"LocalCluster {args.workers} workers, MALLOC_TRIM_THRESHOLD_ {trim or 'unset'}"
    return label, args.workers, summary, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="euclid-sglc2")
    parser.add_argument("--n", type=int, default=200, help="objects per setting")
    parser.add_argument("--n-local", type=int, default=None, help="objects in-process (default --n / 2)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args(argv)

    scratch = Path(args.out or tempfile.mkdtemp(prefix="bench-simulate-"))
    scratch.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        _warm(args.layout, str(scratch / "warm"))
        n_local = args.n_local or max(1, args.n // 2)
        cpu = _cpu_seconds()
        local = simulate_set(args.layout, n_local, scratch / "local", batch_size=args.batch_size)
        rows.append(("in-process", 1, local, _cpu_seconds() - cpu))
        rows.extend(_run_cluster(args, scratch, trim) for trim in (None, "65536 (Dask default)"))
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)

    print(
        "| layout | setting | objects | wall s | objects/s | CPU s/object | "
        "100k on 16 idle cores, from CPU time (min) |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting, _cores, summary, cpu in rows:
        cpu_per_object = cpu / summary.n_objects
        minutes = 100_000 * cpu_per_object / 16 / 60
        print(
            f"| {args.layout} | {setting} | {summary.n_objects} | {summary.seconds:.1f} | "
            f"{summary.objects_per_second:.1f} | {cpu_per_object:.3f} | {minutes:.1f} |"
        )
    print(f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
