"""The score head in float64 against the model's own float32 sigmoid, side by side.

``bundle.predict`` runs the model up to the score head's input and applies the head in float64
(:mod:`pipeline.models.logits`), so that the best candidates keep distinct scores. This measures
what that costs against running the saved model as it is (its float32 sigmoid output), on the
same prepared inputs, batch size and padding, interleaved over ``--repeats`` rounds, and counts
the distinct scores among the objects above ``--top`` in each.

    python -m bench.bench_head --store demo/work/store.zarr --batch-size 64 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from bench.machine import record_header


def _float32_head(bundle, inputs: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
    """Scores from the saved model's own output (float32 sigmoid), padded batches as predict does."""
    n = len(next(iter(inputs.values())))
    out = np.empty(n, np.float32)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        batch = {}
        for name, x in inputs.items():
            padded = np.zeros((batch_size, *x.shape[1:]), x.dtype)
            padded[: stop - start] = x[start:stop]
            batch[name] = padded
        predicted = bundle.model.predict_on_batch(batch)
        predicted = predicted["score"] if isinstance(predicted, dict) else predicted
        out[start:stop] = np.asarray(predicted).reshape(-1)[: stop - start]
    return out


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped model)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--top", type=float, default=0.99, help="score above which values are counted")
    args = parser.parse_args(argv)

    from pipeline.models import load_bundle
    from pipeline.paths import shipped_model
    from pipeline.store import open_store

    bundle = load_bundle(args.model or shipped_model())
    dataset = open_store(args.store)
    inputs = bundle.prepare({group: dataset[group].values for group in bundle.recipe.groups})
    inputs = {name: np.ascontiguousarray(np.nan_to_num(x), dtype=np.float32) for name, x in inputs.items()}
    n = len(next(iter(inputs.values())))
    runs = {
        "float32 sigmoid (the saved model's output)": lambda: _float32_head(bundle, inputs, args.batch_size),
        "float64 head (bundle.predict)": lambda: bundle.predict(inputs, batch_size=args.batch_size),
    }
    for run in runs.values():  # warm: trace once
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            tic = time.perf_counter()
            scores[name] = run()
            times[name].append(time.perf_counter() - tic)
    low, high = scores.values()
    print(record_header("Score head in float64 against the float32 sigmoid"))
    print(f"- {n} objects, batch {args.batch_size}, {args.repeats} interleaved rounds; medians\n")
    print("| scoring | objects/s | distinct scores above", args.top, "| objects at exactly 1.0 |")
    print("|---|---|---|---|")
    for (name, values), score in zip(times.items(), scores.values(), strict=True):
        top = score[score > args.top]
        print(
            f"| {name} | {n / statistics.median(values):.0f} | {np.unique(top).size} of {top.size} "
            f"| {int((score == 1.0).sum())} |"
        )
    plain, ours = (statistics.median(values) for values in times.values())
    ratio = ours / plain
    print(f"\ntime ratio float64 head / float32 sigmoid: {ratio:.3f}")
    print(f"largest score difference: {float(np.max(np.abs(high.astype(np.float64) - low))):.2e}")


if __name__ == "__main__":
    main()
