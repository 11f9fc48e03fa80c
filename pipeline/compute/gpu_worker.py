"""Set-up of a Dask-CUDA worker: confine it to its own GPU before any framework starts.

``LocalCUDACluster`` (and ``dask-cuda-worker`` under jobqueue) rotate ``CUDA_VISIBLE_DEVICES`` so
that each worker lists its own GPU first (worker 1 sees ``1,2,3,0``). TensorFlow and JAX would
still claim every listed GPU, so the plugin keeps only the first, turns on memory growth (TF) or
disables whole-memory preallocation (JAX), picks the JAX backend for Keras unless one is set,
points JAX's persistent compilation cache at a shared directory (each new batch shape costs an
XLA compile of 20-30 s for EfficientNet), and sizes CPU thread pools to the worker's share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from distributed.diagnostics.plugin import WorkerPlugin

DEFAULT_COMPILATION_CACHE = "~/.cache/lenshunt/jax-compilation-cache"


def gpu_worker_environment(environ: Mapping[str, str], *, cpu_threads: int = 4) -> dict[str, str]:
    """Environment variables a GPU worker must have, given its current environment (pure).

    >>> env = gpu_worker_environment({"CUDA_VISIBLE_DEVICES": "2,3,0,1"})
    >>> env["CUDA_VISIBLE_DEVICES"], env["KERAS_BACKEND"], env["TF_FORCE_GPU_ALLOW_GROWTH"]
    ('2', 'jax', 'true')
    """
    visible = environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    cache = environ.get("JAX_COMPILATION_CACHE_DIR", os.path.expanduser(DEFAULT_COMPILATION_CACHE))
    return {
        "CUDA_VISIBLE_DEVICES": visible,
        "KERAS_BACKEND": environ.get("KERAS_BACKEND", "jax"),
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "XLA_PYTHON_CLIENT_PREALLOCATE": environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),
        "JAX_COMPILATION_CACHE_DIR": cache,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "1",
        "OMP_NUM_THREADS": str(cpu_threads),
        "TF_NUM_INTRAOP_THREADS": str(cpu_threads),
    }


class GPUWorkerSetup(WorkerPlugin):
    """Worker plugin applying :func:`gpu_worker_environment` when the worker starts.

    It must run before the worker imports Keras, TensorFlow or JAX; lenshunt imports them only
    inside tasks, so registering the plugin right after the cluster starts is early enough.
    """

    name = "lenshunt-gpu-worker-setup"

    def __init__(self, cpu_threads: int | None = None) -> None:
        self.cpu_threads = cpu_threads

    def setup(self, worker) -> None:
        threads = self.cpu_threads or max(1, (os.cpu_count() or 4) // max(1, _n_visible_gpus()))
        env = gpu_worker_environment(os.environ, cpu_threads=threads)
        os.environ.update(env)
        os.makedirs(env["JAX_COMPILATION_CACHE_DIR"], exist_ok=True)


def _n_visible_gpus() -> int:
    return len([d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",") if d.strip()])
