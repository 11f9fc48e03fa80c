"""The one place clusters are made: local workers, clear errors for the others."""

from __future__ import annotations

import json
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


def test_a_timeout_closing_the_cluster_after_the_work_is_a_warning(monkeypatch, caplog):
    """New-user trial: on a loaded machine `make demo` scored every object, then failed with a
    TimeoutError while the local cluster stopped a slow worker. An error of the work itself still raises."""
    import logging

    from distributed import LocalCluster

    closed = []

    def close_too_slowly(self, *exc_info):
        closed.append(self.close())
        raise TimeoutError  # bare, as asyncio.wait_for raises it (review: the warning said "()")

    monkeypatch.setattr(LocalCluster, "__exit__", close_too_slowly)
    with caplog.at_level(logging.WARNING, logger="lenshunt"), connect("local", n_workers=1) as client:
        assert client.submit(sum, [1, 2]).result() == 3
    assert len(closed) == 1
    assert "closing the Dask cluster timed out after the work was done (TimeoutError)" in caplog.text
    with pytest.raises(ValueError, match="the work failed"), connect("local", n_workers=1):
        raise ValueError("the work failed")
    assert len(closed) == 2


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


def test_dashboard_serves_bokeh_plots_over_http():
    """--dashboard gives a page with Dask's Bokeh plots, not "Dask needs bokeh>=3.1.0"."""
    import urllib.request

    with connect("local", n_workers=1, dashboard=True) as client:
        link = client.dashboard_link
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status")
        client.submit(sum, [1, 2]).result()
        with urllib.request.urlopen(link, timeout=20) as response:
            assert response.status == 200
            page = response.read().decode()
        assert "needs bokeh" not in page
        # A Bokeh server document: BokehJS is loaded and the document is embedded from its session.
        assert "bokeh" in page.lower() and "Bokeh.embed" in page
        base = link.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{base}/individual-plots.json", timeout=20) as response:
            plots = json.loads(response.read())
        assert {"Individual Task Stream", "Individual Progress"} <= set(plots)
        with urllib.request.urlopen(base + plots["Individual Task Stream"], timeout=20) as response:
            assert "Bokeh.embed" in response.read().decode()
