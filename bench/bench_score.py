"""Scoring throughput through the pipeline against the same model's predict in one process.

The reference loads the store's images into memory, prepares them with the bundle's recipe, and
times ``bundle.predict`` alone on those arrays (the model's ceiling in one process, using every
core through TensorFlow's thread pools). The pipeline run times ``score_store`` on a warm local
Dask cluster: reading the store, preprocessing, inference with a fixed batch shape, parts and the
catalog. Same model, same objects, side by side in one run.

    python -m bench.bench_score --store demo/work/store.zarr --workers 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.machine import record_header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from pipeline.bundle import load_bundle
    from pipeline.flags import UNUSABLE
    from pipeline.paths import shipped_model
    from pipeline.score_run import score_store
    from pipeline.scoring import worker_bundle
    from pipeline.store import open_store

    model = args.model or shipped_model()
    bundle = load_bundle(model)
    dataset = open_store(args.store)
    usable = (dataset["flags"].values & int(UNUSABLE)) == 0
    groups = {g: dataset[g].values[usable] for g in bundle.recipe.groups}
    n = int(usable.sum())

    warm = bundle.prepare({g: x[: args.batch_size] for g, x in groups.items()})
    bundle.predict(warm, batch_size=args.batch_size)  # build and trace the model first
    tic = time.perf_counter()
    inputs = bundle.prepare(groups)
    prepared = time.perf_counter()
    bundle.predict(inputs, batch_size=args.batch_size)
    predict_seconds = time.perf_counter() - prepared
    same_work_seconds = time.perf_counter() - tic

    out = Path(tempfile.mkdtemp(prefix="lenshunt-bench-score-"))
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=args.threads_per_worker, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(worker_bundle, str(Path(model).resolve()), bundle.sha256)  # model built once per worker
        tic = time.perf_counter()
        result = score_store(args.store, model, out, client, batch_size=args.batch_size)
        pipeline_seconds = time.perf_counter() - tic
    shutil.rmtree(out, ignore_errors=True)
    assert result.n_scored == n, (result.n_scored, n)
    ref_rate, same_rate = n / predict_seconds, n / same_work_seconds
    ours_rate = result.n_objects / pipeline_seconds
    print(record_header("Scoring: pipeline vs in-process predict"))
    print(
        "| objects | model | in-process `predict` alone (model inputs in memory) | in-process prepare + "
        f"predict (store images in memory) | pipeline, {args.workers} workers | ratio to predict alone "
        "| ratio to prepare + predict |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {n} | {bundle.model_id} | {ref_rate:.0f} objects/s ({predict_seconds:.1f} s) | "
        f"{same_rate:.0f} objects/s ({same_work_seconds:.1f} s) | "
        f"{ours_rate:.0f} objects/s ({pipeline_seconds:.1f} s; read {result.seconds_read:.1f} s, "
        f"prepare + model {result.seconds_model:.1f} s summed over workers) | {ours_rate / ref_rate:.2f} "
        f"| {ours_rate / same_rate:.2f} |"
    )


if __name__ == "__main__":
    main()
