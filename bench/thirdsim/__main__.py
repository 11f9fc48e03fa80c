"""``python -m bench.thirdsim OUT --n N --seed S --first-id I [--workers W]``."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.thirdsim", description=__doc__)
    parser.add_argument("out", help="output directory (euclid-sglc2 layout)")
    parser.add_argument("--n", type=int, required=True, help="number of objects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    bounds = (("--n", args.n, 1), ("--seed", args.seed, 0), ("--first-id", args.first_id, 0))
    for name, value, least in bounds:
        if value < least:
            parser.error(f"{name} must be at least {least}, got {value}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"{out} exists and is not an empty directory: its old files would mix with the new set")
    from bench.thirdsim.simulate import simulate_set

    t0 = time.time()
    rows = simulate_set(args.out, args.n, args.seed, args.first_id, args.workers)
    lenses = sum(r["n_source_im"] > 0 and r["mag_eff"] > 1.6 and r["n_pix_source"] > 20 for r in rows)
    drawn = sum(r["kind"] == "lens" for r in rows)
    print(
        f"thirdsim: {len(rows)} objects in {time.time() - t0:.1f} s -> {args.out}; "
        f"{drawn} lens systems drawn, {lenses} lenses by the label rule"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
