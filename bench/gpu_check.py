"""The stages of ``bench/gpu_check.sh``: ingest and scoring rates against their ceilings, in one run.

Every stage prints objects/s beside the ceilings it is compared with:

ingest (from disk, cold page cache where the machine lets root drop it)
    raw read of the set's bytes with one process per core (the disk's floor); the same reading
    code in one process (``read_objects``, warm); the naive ``astropy.io.fits.getdata`` loop in
    one process (warm); and ``lenshunt``'s ingest on a local cluster of one worker per core.
scoring (Keras on the JAX backend)
    the model alone on data already on the device (``predict_on_batch`` of device arrays); the
    same code in this process (``score_rows``: read, prepare, predict); and the pipeline
    (``score_store``) on Dask-CUDA workers (``--cluster cuda``; on a dry run, local workers). Then
    an ensemble of 3 members with test-time augmentation (24 model passes per object), in-process
    and through the pipeline.

Stages that would not fit in ``--budget-s`` are skipped and say so. The table goes to stdout and,
with the raw numbers, to ``OUT/gpu_check.md`` and ``OUT/gpu_check.json``.

    python -m bench.gpu_check --source SET --work WORK --out OUT --budget-s 400 [--dry]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import record_header


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def drop_page_cache() -> bool:
    """Drop the page cache (root on Linux); False where it is not allowed."""
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
        return True
    except OSError:
        return False


def _read_all(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            total += len(handle.read())
    return total


def raw_read_seconds(paths: list[str], workers: int) -> tuple[float, int]:
    """Seconds to read every byte of ``paths`` with ``workers`` processes; the bytes read."""
    import multiprocessing

    chunks = [paths[i::workers] for i in range(workers)]
    tic = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        total = sum(pool.map(_read_all, chunks))
    return time.perf_counter() - tic, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dry", action="store_true", help="CPU dry run: local cluster, 2 workers")
    args = parser.parse_args()
    budget = Budget(args.budget_s)
    results: dict[str, object] = {"dry": args.dry, "workers": args.workers}
    rows: list[tuple[str, str, str]] = []

    def row(stage: str, what: str, rate: float | None, note: str = "") -> None:
        text = f"{rate:,.0f}" if rate is not None else "skipped"
        rows.append((stage, what, text + (f" ({note})" if note else "")))
        print(f"   {stage:8s} {what:60s} {text} objects/s {note}", flush=True)

    from pipeline.compute import connect
    from pipeline.sources import discover
    from pipeline.store import ingest
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    manifest = discover(layout, args.source)
    n = len(manifest)
    paths = [p for files in manifest.paths.values() for p in files if p]
    results["n_objects"] = n
    workers = 2 if args.dry else args.workers

    # Ingest and its ceilings. The page cache is dropped only on the lent machine (never on a dry
    # run: on a shared machine that would slow everyone else's work).
    def cold_cache() -> bool:
        return False if args.dry else drop_page_cache()

    cold = cold_cache()
    results["cold_cache"] = cold
    seconds, n_bytes = raw_read_seconds(paths, workers)
    results["raw_read"] = {"seconds": seconds, "bytes": n_bytes}
    row(
        "ingest",
        f"raw read of the bytes, {workers} processes ({'cold' if cold else 'warm'})",
        n / seconds,
        f"{n_bytes / seconds / 1e9:.2f} GB/s",
    )
    sample = manifest.select_or_missing(manifest.object_ids[: min(n, 2000)])
    import numpy as np

    from pipeline.store.reading import read_objects

    warm = manifest.select_or_missing(manifest.object_ids[:20])
    read_objects(layout, warm, -np.ones(len(warm), dtype=np.int8))  # imports, not reading
    tic = time.process_time()
    read_objects(layout, sample, -np.ones(len(sample), dtype=np.int8))
    in_process = len(sample) / (time.process_time() - tic)
    row("ingest", "same reading code in one process (read_objects, warm)", in_process, "per core")
    try:
        from astropy.io import fits

        tic = time.process_time()
        for files in sample.paths.values():
            for path in files:
                fits.getdata(path).astype(np.float32)
        naive = len(sample) / (time.process_time() - tic)
        row("ingest", "naive astropy getdata loop, one process (warm)", naive, "per core")
    except ImportError:
        row("ingest", "naive astropy getdata loop", None, "astropy missing")
    cold = cold_cache()
    store = args.work / "store.zarr"
    shutil.rmtree(store, ignore_errors=True)
    tic = time.perf_counter()
    with connect("local", n_workers=workers) as client:
        started = time.perf_counter() - tic
        tic = time.perf_counter()
        report = ingest(layout, args.source, store, client)
        seconds = time.perf_counter() - tic
    results["ingest"] = {"seconds": seconds, "cluster_start_s": started, "cold": cold, "n": report.n_after}
    row(
        "ingest",
        f"lenshunt ingest, {workers} workers ({'cold' if cold else 'warm'})",
        n / seconds,
        f"cluster start {started:.1f} s not included",
    )

    # Scoring: the model alone on device data, the same code in-process, the pipeline on Dask-CUDA.
    from pipeline.flags import UNUSABLE
    from pipeline.models import load_bundle
    from pipeline.paths import shipped_model
    from pipeline.scoring import score_rows, score_store, warm_worker_bundle
    from pipeline.store import open_store, read_flags

    model = Path(shipped_model()).resolve()
    bundle = load_bundle(model)
    dataset = open_store(store, chunks=None)
    m = min(n, 8192)
    usable = (read_flags(dataset, slice(0, m), store=store, bands=bundle.bands) & int(UNUSABLE)) == 0
    reader = bundle.on_store(dataset.attrs["groups"])  # each band by its name, as score_rows reads them
    inputs = reader.prepare({g: dataset[g][:m].values[usable] for g in bundle.recipe.groups})
    import keras

    backend = keras.backend.backend()
    results["keras_backend"] = backend
    batch = min(args.batch_size, 64) if args.dry else args.batch_size
    arrays = {name: x[: (len(x) // batch) * batch] for name, x in inputs.items()}
    n_model = len(next(iter(arrays.values())))
    if backend == "jax" and n_model:
        import jax

        device = jax.devices()[0]
        results["device"] = str(device)
        on_device = {name: jax.device_put(x, device) for name, x in arrays.items()}
        batches = [{k: v[i : i + batch] for k, v in on_device.items()} for i in range(0, n_model, batch)]
        jax.block_until_ready(bundle.model.predict_on_batch(batches[0]))  # compile
        tic = time.perf_counter()
        outs = [bundle.model.predict_on_batch(b) for b in batches]
        jax.block_until_ready(outs)
        row(
            "score",
            f"model alone on {device.platform} data ({bundle.model_id}, batch {batch})",
            n_model / (time.perf_counter() - tic),
        )
    else:
        row("score", "model alone on device data", None, f"backend {backend}")
    warm_worker_bundle(str(model), bundle.sha256, batch)
    score_rows(str(store), 0, min(n, batch * 2), str(model), bundle.sha256, batch_size=batch, tta=False)
    tic = time.perf_counter()
    score_rows(str(store), 0, n, str(model), bundle.sha256, batch_size=batch, tta=False)
    in_process = n / (time.perf_counter() - tic)
    row("score", "same code in-process (score_rows: read, prepare, predict)", in_process)
    kind = "local" if args.dry else "cuda"
    ensemble = None
    with connect(kind, n_workers=2 if args.dry else None) as client:
        client.run(warm_worker_bundle, str(model), bundle.sha256, batch)
        out = Path(tempfile.mkdtemp(prefix="gpu-check-score-", dir=args.work))
        score_store(store, model, out / "warmup", client, batch_size=batch)  # compile on the workers
        tic = time.perf_counter()
        score_store(store, model, out / "scores", client, batch_size=batch)
        pipeline = n / (time.perf_counter() - tic)
        row(
            "score",
            f"pipeline, --cluster {kind} (score_store)",
            pipeline,
            f"{pipeline / in_process:.2f}x the in-process rate",
        )
        results["score"] = {"in_process": in_process, "pipeline": pipeline, "cluster": kind}
        if budget.left() > 60:
            from bench.bench_score import copies_ensemble

            ensemble = copies_ensemble(model, 3, out / "ensemble").resolve()
            ens = load_bundle(ensemble)
            tic = time.perf_counter()
            score_rows(str(store), 0, min(n, 4096), str(ensemble), ens.sha256, batch_size=batch, tta=True)
            ens_in = min(n, 4096) / (time.perf_counter() - tic)
            row("score", "ensemble of 3 + TTA (24 passes), in-process", ens_in)
            client.run(warm_worker_bundle, str(ensemble), ens.sha256, batch)
            tic = time.perf_counter()
            score_store(store, ensemble, out / "ensemble-scores", client, batch_size=batch, tta=True)
            ens_pipe = n / (time.perf_counter() - tic)
            row(
                "score",
                f"ensemble of 3 + TTA, pipeline --cluster {kind}",
                ens_pipe,
                f"{ens_pipe / ens_in:.2f}x in-process",
            )
            results["ensemble_tta"] = {"in_process": ens_in, "pipeline": ens_pipe}
        else:
            row("score", "ensemble of 3 + TTA", None, "out of time")
        shutil.rmtree(out, ignore_errors=True)

    header = record_header("GPU check (bench/gpu_check.sh)")
    table = [
        "| stage | measurement | objects/s |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    text = f"{header}\n- objects: {n}; cold page cache: {results['cold_cache']}\n\n" + "\n".join(table) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.md").write_text(text)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
