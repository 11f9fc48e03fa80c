"""One Gaussian against class-conditional Gaussians for ``ood_score``, measured side by side.

``pipeline.models.features`` models a bundle's pooled training features either as one Gaussian
(mean and Ledoit-Wolf covariance of all fit objects) or, as Lee et al. 2018 (arXiv:1807.03888) do,
as one Gaussian per class with a tied covariance, an object's distance being from the nearest class
mean. Both are fitted here on the same training-split objects of a bundle's training store (the
split ``lenshunt train`` made: ``--val-fraction``, ``--seed``) and calibrated on the same validation
objects; each labelled held-out store is then scored once, and per method the script prints the
share flagged UNLIKE_TRAINING (lenses and non-lenses apart, per kind of non-lens where the truth
catalog names kinds), the AUROC of all and of the objects not flagged, and how many of the 50
highest-scored non-lenses are flagged.

Usage::

    python -m bench.ood_classes BUNDLE TRAIN_STORE --domain randomised=STORE --domain thirdsim=STORE ...
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from pipeline.evaluation.metrics import evaluate
from pipeline.models.bundle import load_bundle
from pipeline.models.features import FeatureStats, features, fit_feature_stats, load_feature_stats
from pipeline.preprocess.arrays import usable_objects
from pipeline.store.columns import read_flags
from pipeline.store.zarr_store import open_store
from pipeline.training.domain_breakdown import KIND_COLUMN, truth_columns
from pipeline.training.heldout import score_store_in_process
from pipeline.training.splits import make_split

TOP = 50


def store_features(bundle, store: str) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Rows of the usable objects of ``store`` and their pooled features (n, D) float64."""
    dataset = open_store(store, chunks=None)
    rows = np.flatnonzero(np.asarray(usable_objects(read_flags(dataset, store=store, bands=bundle.bands))))
    reader = bundle.on_store(dataset.attrs["groups"])
    parts = []
    for start in range(0, rows.size, 256):
        batch = rows[start : start + 256]
        images = {group: dataset[group][batch].values for group in bundle.groups}
        parts.append(features(bundle, reader.prepare(images)))
    return rows, np.concatenate(parts).astype(np.float64)


def describe(name: str, method: str, labels, scores, ood, kinds) -> str:  # type: ignore[no-untyped-def]
    """One markdown row of a method on a domain."""
    flagged = ood > 1
    lenses, others = labels == 1, labels == 0
    like = ~flagged
    auroc_all = evaluate(labels, scores).auroc
    auroc_like = evaluate(labels[like], scores[like]).auroc if like.any() else float("nan")
    top = np.argsort(-np.where(others, scores, -np.inf))[:TOP]
    kind_text = ""
    if kinds is not None:
        parts = []
        for kind in sorted({str(k) for k in kinds[others]}):
            members = others & (kinds.astype(str) == kind)
            parts.append(f"{kind} {flagged[members].mean():.0%}")
        kind_text = ", ".join(parts)
    return (
        f"| {name} | {method} | {flagged.mean():.3f} | {flagged[lenses].mean():.3f} | "
        f"{flagged[others].mean():.3f} | {auroc_all:.3f} | {auroc_like:.3f} | "
        f"{int(flagged[top].sum())}/{top.size} | {kind_text} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ood_classes", description=__doc__.split("\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("train_store")
    parser.add_argument("--domain", action="append", default=[], help="NAME=STORE (labelled)")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bundle = load_bundle(args.bundle)
    dataset = open_store(args.train_store, chunks=None)
    split = make_split(
        dataset["object_id"].values,
        dataset["label"].values,
        dataset["flags"].values,
        seed=args.seed,
        val_fraction=args.val_fraction,
    )
    tic = time.perf_counter()
    methods: dict[str, FeatureStats] = {}
    for method, by_class in (("one Gaussian", False), ("per class", True)):
        methods[method] = fit_feature_stats(
            bundle,
            args.train_store,
            rows=split.train_rows,
            calibration_rows=split.val_rows,
            by_class=by_class,
        )
    shipped = load_feature_stats(args.bundle)
    print(
        f"fitted in {time.perf_counter() - tic:.0f} s; threshold one Gaussian "
        f"{methods['one Gaussian'].threshold:.2f} (bundle's own {shipped.threshold:.2f}), per class "
        f"{methods['per class'].threshold:.2f}"
    )
    print(
        "\n| domain | method | flagged | of the lenses | of the non-lenses | AUROC (all) "
        f"| AUROC (not flagged) | top-{TOP} non-lenses flagged | flagged per kind of non-lens |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for entry in args.domain:
        name, store = entry.split("=", 1)
        scored = score_store_in_process(bundle, store)
        rows, pooled = store_features(bundle, store)
        labels, scores = scored.label[rows], scored.score[rows]
        truth, _ = truth_columns(store)
        kinds = truth[KIND_COLUMN][rows] if KIND_COLUMN in truth else None
        for method, stats in methods.items():
            ood = stats.squared_distance(pooled) / stats.threshold
            print(describe(name, method, labels, scores, ood, kinds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
