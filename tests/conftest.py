"""Shared fixtures: a real Dask LocalCluster, a real Prefect test harness, layouts and sample sets."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

# Prefect sets up logging (logging.config.dictConfig, which closes every handler already there) on
# the first `from prefect import flow`. Done here, before any test imports TensorFlow: otherwise
# absl's log handler, created by that import with the test's captured stderr as its stream, is
# closed by a later test's first Prefect import, closing pytest's capture file with it (the run
# then fails with "I/O operation on closed file" and "lost sys.stderr").
from prefect import flow  # noqa: F401

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_SAMPLES = SHARED_DATA / "sglc1-samples"
BUNDLED_SAMPLES = Path(__file__).parent / "data" / "sglc1-samples"


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: NumPy everywhere, CuPy where a GPU is."""
    if request.param == "cupy":
        return pytest.importorskip("cupy")
    import numpy as np

    return np


@pytest.fixture(scope="session")
def dask_client():
    """A real two-worker process LocalCluster shared by the session."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        # a fresh clone's loaded run: a worker slower to exit than its nanny waits (5 s), and the last
        # test of each process "errored" at its teardown; such a worker ends with the session
        with contextlib.suppress(TimeoutError):
            cluster.close()


@pytest.fixture(scope="session")
def prefect_harness():
    """A real (temporary, SQLite-backed) Prefect API for the session's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The real first-challenge cutouts (shared/data beside the repo, or the copy in tests/data)."""
    for candidate in (REAL_SAMPLES, BUNDLED_SAMPLES):
        if (candidate / "imageEUC_VIS-100002.fits").exists():
            return candidate
    pytest.fail("real challenge samples not found in ../shared/data or tests/data")


@pytest.fixture(scope="module")
def layout():
    """A tiny two-group layout: VIS 64x64 and NIR Y, J, H 32x32 (``tiny_data.tiny_layout``)."""
    from tiny_data import tiny_layout

    return tiny_layout(vis=64, nir=32)


@pytest.fixture(scope="module")
def images(layout):
    """Four objects of :func:`layout` in flux units (``tiny_data.flux_images``, seed 5)."""
    from tiny_data import flux_images

    return flux_images(layout, n=4, seed=5)
