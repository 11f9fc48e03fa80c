"""Test-time BatchNorm adaptation (AdaBN): a bundle's BatchNorm statistics re-estimated on a target set.

AdaBN (Li et al. 2016, arXiv 1603.04779) replaces each BatchNorm layer's moving mean and variance,
which describe the training domain, by those of the unlabelled target cutouts, leaving every weight
as trained; under a shift of the inputs' statistics alone it recovers part of the lost accuracy. The
statistics are the plain mean over batches of the target set in training mode
(:func:`pipeline.training.batchnorm.recalibrate_batch_norm`, "precise BN").

    python -m bench.adapt_bn BUNDLE NAME=STORE [NAME=STORE ...] [--batch-size 64] [--seed 0]

For each store it prints the AUROC of the bundle as trained, adapted on all its cutouts, adapted on
its non-lenses alone (a survey's blind set holds about one lens in a thousand), and adapted on its
first half and scored on the second (no cutout both adapts and is scored). bench/RESULTS.md, "test-time
BatchNorm adaptation".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np

__all__ = ["adapted_scores", "main", "target_batches"]


def target_batches(
    inputs: dict[str, np.ndarray], rows: np.ndarray, batch_size: int, seed: int
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``batch_size`` of the given ``rows`` of prepared ``inputs``, in a seeded random order;
    the last incomplete batch is dropped (its statistics would weigh as much as a whole batch's)."""
    order = np.random.default_rng(seed).permutation(np.asarray(rows))
    for start in range(0, order.size - batch_size + 1, batch_size):
        chosen = np.sort(order[start : start + batch_size])
        yield {name: values[chosen] for name, values in inputs.items()}


def adapted_scores(
    bundle, inputs: dict[str, np.ndarray], rows: np.ndarray, *, batch_size: int = 64, seed: int = 0
) -> np.ndarray:
    """``score`` of every prepared input after adapting the bundle's BatchNorm statistics on ``rows``.

    The bundle's model is restored to its trained statistics afterwards.

    Raises
    ------
    ValueError
        If ``rows`` give no whole batch.
    """
    from pipeline.training.batchnorm import batch_norm_layers, recalibrate_batch_norm

    model = bundle.model
    layers = batch_norm_layers(model)
    saved = [(layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy()) for layer in layers]
    try:
        if recalibrate_batch_norm(model, target_batches(inputs, rows, batch_size, seed)) == 0:
            raise ValueError(f"{len(rows)} rows give no batch of {batch_size}")
        return np.asarray(bundle.predict_outputs(inputs, batch_size=128)["score"]).reshape(-1)
    finally:
        for layer, (mean, variance) in zip(layers, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    from pipeline.flags import UNUSABLE
    from pipeline.models.bundle import load_bundle
    from pipeline.store import open_store, read_column, read_flags

    parser = argparse.ArgumentParser(prog="python -m bench.adapt_bn", description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("stores", nargs="+", metavar="NAME=STORE", help="labelled stores")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bundle = load_bundle(args.bundle)
    print(
        "| set | objects | as trained | adapted on all | on non-lenses "
        "| on the first half, scored on the second (as trained) |"
    )
    print("|---|---|---|---|---|---|")
    for named in args.stores:
        name, _, store = named.partition("=")
        dataset = open_store(store, chunks=None)
        keep = (read_flags(dataset, store=store, bands=bundle.bands) & int(UNUSABLE)) == 0
        label = read_column(dataset, "label")[keep].astype(int)
        reader = bundle.on_store(dataset.attrs["groups"])  # each band by its name
        inputs = reader.prepare({group: read_column(dataset, group)[keep] for group in bundle.groups})
        n = label.size
        trained = np.asarray(bundle.predict_outputs(inputs, batch_size=128)["score"]).reshape(-1)

        def auroc(scores: np.ndarray, rows: np.ndarray | None = None, label: np.ndarray = label) -> str:
            rows = np.arange(label.size) if rows is None else rows
            return f"{roc_auc_score(label[rows], scores[rows]):.3f}"

        options = {"batch_size": args.batch_size, "seed": args.seed}
        every = adapted_scores(bundle, inputs, np.arange(n), **options)
        negatives = adapted_scores(bundle, inputs, np.flatnonzero(label == 0), **options)
        half, rest = np.arange(n // 2), np.arange(n // 2, n)
        first_half = adapted_scores(bundle, inputs, half, **options)
        print(
            f"| {name} | {n} | {auroc(trained)} | {auroc(every)} | {auroc(negatives)} | "
            f"{auroc(first_half, rest)} ({auroc(trained, rest)}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
