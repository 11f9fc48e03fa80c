"""Training throughput on CPU: the streamed training loop against its two parts alone.

Side by side in one run, on the same store, recipe and model (``lenshunt train``'s defaults:
robust scaling, observing and dihedral augmentation):

- *batches*: preparing training batches alone (block reads, augmentation, recipe), images/s, with
  NumPy's BLAS at its default thread count and at one thread;
- *model*: ``train_on_batch`` alone on batches already in memory (the model's ceiling here);
- *loop*: ``lenshunt train``'s loop (``fit`` on the streamed ``PyDataset``), median over epochs
  after the first (which includes tracing), validation excluded; with BLAS at its default thread
  count (the loop before the fix) and at one thread (what ``fit_model`` now sets).

The store is a labelled lenshunt store, or a set simulated and ingested on the spot with ``--n``.

    python bench/bench_train.py --n 1000            # simulate 1000 euclid-sglc2 objects first
    python bench/bench_train.py --store runs/train.zarr --steps 40 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as a file (python bench/bench_train.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import record_header


def simulated_store(n: int, workdir: Path, workers: int) -> Path:
    """Simulate ``n`` euclid-sglc2 objects (seed 11) and ingest them; reuse them if already there."""
    from distributed import Client, LocalCluster

    from pipeline.simulate import simulate_set
    from pipeline.store import ingest
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    store = workdir / "train.zarr"
    if (store / "zarr.json").exists():
        return store
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        simulate_set(layout, n, workdir / "cutouts", seed=11, client=client)
        ingest(layout, workdir / "cutouts", store, client)
    return store


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, default=None, help="a labelled lenshunt store")
    parser.add_argument("--n", type=int, default=1000, help="objects to simulate when no --store")
    parser.add_argument("--workdir", type=Path, default=None, help="where to simulate (default: a temp dir)")
    parser.add_argument("--architecture", default="small_cnn")
    parser.add_argument("--downsample", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="batches per epoch (and per part timing)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--read-workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from pipeline.models import build_model
    from pipeline.store import open_store
    from pipeline.training import TrainConfig, fit_store_recipe, load_split
    from pipeline.training.dataset import BatchPlan, BlockReader, TrainingStream, ValidationSet
    from pipeline.training.loop import compile_model, fit_model

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lenshunt-bench-train-"))
    store = args.store or simulated_store(args.n, workdir, workers=os.cpu_count() or 1)
    config = TrainConfig(
        architecture=args.architecture,
        downsample=args.downsample,
        batch_size=args.batch_size,
        steps_per_epoch=args.steps,
        epochs=args.epochs,
        patience=args.epochs,
        read_workers=args.read_workers,
    )
    split = load_split(store, config)
    recipe = fit_store_recipe(store, split, config)
    dataset = open_store(store, chunks=None)
    labels = dataset["label"].values
    reader = BlockReader(dataset, list(recipe.groups), cache_blocks=config.cache_blocks, bands=recipe.groups)
    train_labels = labels[split.train_rows]
    plan = BatchPlan(
        split.train_rows[train_labels == 0],
        split.train_rows[train_labels == 1],
        args.batch_size,
        reader.block_rows,
        0,
    )
    stream = TrainingStream(reader, plan, labels, recipe, augment=True, seed=0, observing=config.observing)

    from threadpoolctl import threadpool_limits

    stream.batch(0)

    def batch_rate(first: int) -> tuple[float, list]:
        tic = time.perf_counter()
        made = [stream.batch(index) for index in range(first, first + args.steps)]
        return args.steps * args.batch_size / (time.perf_counter() - tic), made

    batch_default, batches = batch_rate(1)
    with threadpool_limits(limits=1, user_api="blas"):
        batch_one, _ = batch_rate(1 + args.steps)

    keras.utils.set_random_seed(0)
    model = build_model(args.architecture, recipe)
    compile_model(model, config.learning_rate)
    model.train_on_batch(*batches[0])  # trace once
    tic = time.perf_counter()
    for inputs, y in batches:
        model.train_on_batch(inputs, y)
    model_rate = args.steps * args.batch_size / (time.perf_counter() - tic)

    loops = {}
    for blas_threads in (None, 1):  # BLAS default (a thread per core), then lenshunt's setting
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = build_model(args.architecture, recipe)
        compile_model(model, config.learning_rate)
        validation = ValidationSet(
            reader, split.val_rows[: 4 * args.batch_size], labels, recipe, args.batch_size
        )
        fit = fit_model(model, stream, validation, config, log=print, blas_threads=blas_threads)
        speeds = [epoch["images_per_s"] for epoch in fit.history[1:]] or [fit.images_per_s]
        loops[blas_threads] = float(np.median(speeds))

    shape = recipe.input_shapes()
    print()
    print(record_header("Training throughput (CPU, TensorFlow backend)"))
    print(
        "| model, input | batches alone (BLAS default / 1 thread) | model alone (`train_on_batch`) "
        "| training loop, BLAS default | training loop, BLAS 1 thread (lenshunt) |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {args.architecture} {model.count_params()} weights, {shape}, batch {args.batch_size}, "
        f"{recipe.scaling}, observing augmentation {'on' if stream.observing else 'off'} "
        f"| {batch_default:.0f} / {batch_one:.0f} images/s | {model_rate:.0f} images/s "
        f"| {loops[None]:.0f} images/s | {loops[1]:.0f} images/s |"
    )


if __name__ == "__main__":
    main()
