"""Scoring throughput through the pipeline against the same model in one process, side by side.

Four measurements on the same store, model and batch size, repeated and interleaved so that a
change in machine load hits all of them alike (the table reports medians):

``predict alone``
    ``bundle.predict`` in this process on model inputs already prepared in memory: the model's
    own ceiling here (TensorFlow uses every core through its thread pools).
``Keras predict``
    ``keras.Model.predict`` on the same inputs, the call most code reaches for; shown because it
    is far slower per batch than the ``predict_on_batch`` loop ``bundle.predict`` uses.
``same code in-process``
    ``score_rows`` over the whole store in this process: read, prepare and predict batch by batch,
    exactly the work of a score task, without Dask.
``pipeline``
    ``score_store`` on a warm local cluster made by :func:`pipeline.compute.cluster.connect` (what
    ``lenshunt score`` uses): parts, catalog in FITS and Parquet and all.

With ``--naive-cluster`` the pipeline also runs on a plain ``distributed.LocalCluster`` with
Dask's default worker settings, to show what the worker set-up in ``pipeline.compute.cluster`` buys.

``--ensemble K`` scores an ensemble of K members (copies of the model: the cost is K models'),
``--tta`` with the 8 dihedral transforms; "predict alone" then runs every member on every
transform of the prepared inputs, so the ratios stay pipeline against the same model work.
``--cluster cuda`` runs the pipeline on Dask-CUDA workers (one per GPU).

    python -m bench.bench_score --store STORE.zarr --workers 2 --batch-size 64 --repeats 3
    python -m bench.bench_score --store STORE.zarr --ensemble 3 --tta --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.machine import record_header


def timed(action: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    tic = time.perf_counter()
    action()
    return time.perf_counter() - tic


def pipeline_seconds(
    client, store: Path, model: Path, sha256: str, batch_size: int, tta: bool = False
) -> float:
    """Seconds of one ``score_store`` run into a fresh output directory, on warm workers."""
    from pipeline.scoring import score_store, warm_worker_bundle

    client.run(warm_worker_bundle, str(model), sha256, batch_size)
    out = Path(tempfile.mkdtemp(prefix="lenshunt-bench-score-"))
    try:
        seconds = timed(lambda: score_store(store, model, out, client, batch_size=batch_size, tta=tta))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return seconds


def untrained_bundle(store: Path, architecture: str, downsample: int, out: Path) -> Path:
    """A bundle of ``architecture`` with random weights and a recipe fitted on ``store`` (for timing only)."""
    import keras

    from pipeline.models import ModelCard, build_model, save_bundle
    from pipeline.preprocess import fit_recipe
    from pipeline.store import open_store, read_attributes, store_layout

    keras.utils.set_random_seed(0)
    dataset = open_store(store, chunks=None)
    layout = store_layout(read_attributes(store))
    sample = {group: dataset[group][:64].values for group in layout.groups}
    recipe = fit_recipe(sample, layout, flags=dataset["flags"][:64].values, downsample=downsample)
    card = ModelCard(
        model_id=f"bench-untrained-{architecture}",
        architecture=architecture,
        training_store=str(store),
        epochs=0,
    )
    return save_bundle(out, build_model(architecture, recipe), recipe, card)


def copies_ensemble(model: Path, k: int, out: Path) -> Path:
    """An ensemble bundle of ``k`` copies of the bundle ``model`` (same weights: timing only)."""
    from pipeline.models.ensemble import save_ensemble

    members = []
    for index in range(k):
        member = out / f"member-{index}"
        shutil.copytree(model, member)
        members.append(member)
    save_ensemble(out, members, model_id=f"bench-copies-{k}")
    return out


def model_alone(bundle, inputs: dict, batch_size: int, tta: bool) -> None:
    """Every member of ``bundle`` on every transform (8 with ``tta``) of prepared ``inputs``."""
    from pipeline.preprocess.augment import N_DIHEDRAL, dihedral

    members = getattr(bundle, "members", [bundle])
    for member in members:
        for k in range(N_DIHEDRAL if tta else 1):
            member.predict({name: dihedral(x, k) for name, x in inputs.items()} if k else inputs, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped model)")
    parser.add_argument(
        "--architecture",
        default=None,
        help="time an untrained bundle of this architecture (e.g. efficientnet_b0) instead of --model",
    )
    parser.add_argument("--downsample", type=int, default=1, help="recipe downsample with --architecture")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-cluster", action="store_true", help="also time a default LocalCluster")
    parser.add_argument("--ensemble", type=int, default=0, help="score an ensemble of K copies of the model")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (8 dihedral transforms)")
    parser.add_argument("--cluster", default="local", help="local or cuda (pipeline.compute.connect)")
    args = parser.parse_args()

    from pipeline.compute import connect
    from pipeline.flags import UNUSABLE
    from pipeline.models import load_bundle
    from pipeline.paths import shipped_model
    from pipeline.scoring import score_rows, warm_worker_bundle
    from pipeline.store import open_store, read_flags

    store = args.store.resolve()
    model = Path(args.model or shipped_model()).resolve()
    if args.architecture:
        scratch = Path(tempfile.mkdtemp(prefix="lenshunt-bench-bundle-"))
        model = untrained_bundle(store, args.architecture, args.downsample, scratch / "bundle").resolve()
    if args.ensemble:
        scratch = Path(tempfile.mkdtemp(prefix="lenshunt-bench-ensemble-"))
        model = copies_ensemble(model, args.ensemble, scratch / "ensemble").resolve()
    bundle = load_bundle(model)
    dataset = open_store(store, chunks=None)
    n = int(dataset.sizes["object"])
    usable = (read_flags(dataset, store=store, bands=bundle.bands) & int(UNUSABLE)) == 0
    reader = bundle.on_store(dataset.attrs["groups"])  # each band by its name, as score_rows reads them
    inputs = reader.prepare({g: dataset[g].values[usable] for g in bundle.recipe.groups})
    n_usable = int(usable.sum())
    warm_worker_bundle(str(model), bundle.sha256, args.batch_size)  # this process's cached bundle
    keras_model = getattr(bundle, "members", [bundle])[0].model

    keys = ("predict", "keras", "in_process", "pipeline", "naive")
    times: dict[str, list[float]] = {key: [] for key in keys}
    with connect(args.cluster, n_workers=args.workers) as client:
        for _ in range(args.repeats):
            times["predict"].append(timed(lambda: model_alone(bundle, inputs, args.batch_size, args.tta)))
            times["keras"].append(
                timed(lambda: keras_model.predict(inputs, batch_size=args.batch_size, verbose=0))
            )
            times["in_process"].append(
                timed(
                    lambda: score_rows(
                        str(store), 0, n, str(model), bundle.sha256, batch_size=args.batch_size, tta=args.tta
                    )
                )
            )
            times["pipeline"].append(
                pipeline_seconds(client, store, model, bundle.sha256, args.batch_size, args.tta)
            )
    if args.naive_cluster:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            for _ in range(args.repeats):
                times["naive"].append(
                    pipeline_seconds(client, store, model, bundle.sha256, args.batch_size, args.tta)
                )

    def rate(key: str, count: int) -> float:
        return count / statistics.median(times[key])

    predict, keras_rate = rate("predict", n_usable), rate("keras", n_usable)
    in_process, ours = rate("in_process", n), rate("pipeline", n)
    load = os.getloadavg()[0]
    print(record_header("Scoring: pipeline against the same model in one process"))
    print(
        f"- {n} objects ({n_usable} usable), model {bundle.model_id}, batch {args.batch_size}, "
        f"{args.workers} workers ({args.cluster}), median of {args.repeats}; load average after: {load:.2f}"
    )
    members = len(getattr(bundle, "members", [bundle]))
    passes = members * (8 if args.tta else 1)
    print(
        f"- members {members}, TTA {'8 transforms' if args.tta else 'off'}: {passes} model passes "
        "per object in every measurement"
    )
    print(f"- seconds per repeat: { {k: [round(t, 2) for t in v] for k, v in times.items() if v} }\n")
    print("| measurement | objects/s | pipeline ratio to it |")
    print("|---|---|---|")
    print(
        f"| `bundle.predict` alone, inputs in memory (model ceiling) | {predict:.0f} | {ours / predict:.2f} |"
    )
    print(
        f"| Keras `model.predict` of one member, one transform | {keras_rate:.0f} | {ours / keras_rate:.2f} |"
    )
    print(
        f"| same code in-process (`score_rows`: read, prepare, predict) | {in_process:.0f} | "
        f"{ours / in_process:.2f} |"
    )
    print(f"| **pipeline** (`score_store`, `pipeline.compute.cluster` workers) | {ours:.0f} | 1.00 |")
    if times["naive"]:
        naive = rate("naive", n)
        print(f"| pipeline on a default `LocalCluster` | {naive:.0f} | {ours / naive:.2f} |")


if __name__ == "__main__":
    main()
