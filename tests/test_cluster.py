"""The one place clusters are made: local workers, clear errors for the others."""

from __future__ import annotations

import os

import pytest

from pipeline.compute import connect
from pipeline.errors import ClusterError


def _worker_env():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_local_cluster_workers_keep_glibc_default_malloc_trim():
    with connect("local", n_workers=1) as client:
        assert len(client.scheduler_info()["workers"]) == 1
        ((malloc_trim, omp_threads),) = client.run(_worker_env).values()
        assert malloc_trim is None
        assert omp_threads == "1"
        scheduler = client.scheduler.address
        with connect(scheduler=scheduler) as joined:
            assert joined.submit(sum, [1, 2]).result() == 3


def test_unknown_cluster_and_unreachable_scheduler_are_clear_errors():
    with pytest.raises(ClusterError, match="unknown cluster 'kubernetes'"), connect("kubernetes"):
        pass
    with (
        pytest.raises(ClusterError, match="could not reach the Dask scheduler"),
        connect(scheduler="tcp://127.0.0.1:9", timeout="2s"),
    ):
        pass


def test_cuda_cluster_without_gpu_says_how_to_fix():
    pytest.importorskip("distributed")
    try:
        import dask_cuda  # noqa: F401
    except Exception:
        with pytest.raises(ClusterError, match="needs dask-cuda and a CUDA GPU"), connect("cuda"):
            pass
    else:
        pytest.skip("dask-cuda imports here: this machine has CUDA")
