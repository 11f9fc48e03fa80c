"""What a person sees in the terminal: progress bars with rate and ETA, no TensorFlow start-up
noise or Dask shutdown tracebacks, and one final summary with rounded metrics."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from cutouts import write_set

from flows.common import format_metric
from pipeline.compute import connect
from pipeline.compute.quiet import native_stderr_filtered
from schemas.layout import load_layout

NOISE_MARKERS = (
    "absl::InitializeLog",
    "port.cc",
    "cpu_feature_guard",
    "Worker process still alive",
    "Failed to communicate with scheduler",
    "Port 8787 is already in use",
)


@pytest.mark.prefect
def test_progress_bar_shows_count_rate_and_eta(prefect_harness):
    from prefect import flow

    from flows.common import progress_reporter

    stream = io.StringIO()

    @flow
    def regions():
        with progress_reporter("ingest regions", stream=stream, bar=True) as progress:
            for done in range(5):
                progress(done, 4)

    regions()
    text = stream.getvalue()
    assert "ingest regions: 100%" in text and "4/4" in text
    assert re.search(r"\d+(\.\d+)? ?region/s", text), text  # the rate
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", text), text  # elapsed < remaining (ETA)


@pytest.mark.prefect
def test_an_ingests_reread_has_a_progress_bar_of_its_own(prefect_harness):
    """The ingest's callback called with a third argument (``"re-read regions"``, as a re-read of
    stored objects does) draws a bar titled so, and the ingest regions after it their own (trial:
    a re-read printed nothing for minutes)."""
    from prefect import flow

    from flows.common import progress_reporter

    stream = io.StringIO()

    @flow
    def reread_then_regions():
        with progress_reporter("ingest regions", stream=stream, bar=True) as progress:
            for done in range(4):
                progress(done, 3, "re-read regions")
            for done in range(3):
                progress(done, 2, "ingest regions")

    reread_then_regions()
    text = stream.getvalue()
    assert "re-read regions: 100%" in text and "3/3" in text
    assert "ingest regions: 100%" in text and "2/2" in text
    assert text.index("re-read regions") < text.index("ingest regions")


def test_native_stderr_filter_keeps_real_messages(capfd):
    with native_stderr_filtered():
        os.write(
            2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        )
        os.write(2, b"I0000 00:00:1796004077.714048   25070 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E real error from native code\n")
        print("a Python warning", file=sys.stderr)
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["E real error from native code", "a Python warning"]


def _tensorflow_op() -> float:
    import tensorflow as tf

    return float(tf.reduce_sum(tf.ones((2, 2))))


def test_workers_start_tensorflow_and_shut_down_quietly(capfd):
    with connect("local", n_workers=1) as client:
        assert client.submit(_tensorflow_op).result() == 4.0
    err = capfd.readouterr().err
    assert not [marker for marker in NOISE_MARKERS if marker in err], err[-3000:]


async def _heartbeat_meeting(error: OSError, dask_worker=None) -> str:
    """Run the worker's real heartbeat against a scheduler connection that raises ``error``."""
    scheduler = dask_worker.scheduler

    class Closed:
        async def heartbeat_worker(self, **_):
            raise error

    dask_worker.scheduler = Closed()
    try:
        await dask_worker.heartbeat()
    finally:
        dask_worker.scheduler = scheduler
    return str(dask_worker.status)


def test_a_local_workers_heartbeat_closed_under_it_logs_no_traceback(capfd):
    """CI: a SIGTERM that cancelled ``serve``'s run printed a worker's "Failed to communicate with
    scheduler during heartbeat." traceback: the scheduler closed its connections before the worker
    read its close message. A local cluster's scheduler is the lenshunt process's own; a heartbeat
    that timed out still shows."""
    from functools import partial

    from distributed.comm.core import CommClosedError

    with connect("local", n_workers=1) as client:
        closed = CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker>: Stream is closed")
        assert list(client.run(partial(_heartbeat_meeting, closed)).values()) == ["Status.running"]
        client.run(partial(_heartbeat_meeting, OSError("Timed out trying to connect")))
    err = capfd.readouterr().err
    assert err.count("Failed to communicate with scheduler during heartbeat") == 1, err[-3000:]
    assert "Timed out trying to connect" in err and "Stream is closed" not in err, err[-3000:]


@pytest.mark.prefect
def test_cli_prints_the_final_summary_once(tmp_path):
    source = write_set(load_layout("euclid-sglc2"), tmp_path / "src", [500001, 500002])
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(tmp_path / "ph")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    command = [
        sys.executable,
        "-m",
        "flows.cli",
        "ingest",
        str(source),
        str(tmp_path / "s.zarr"),
        "--workers",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert output.count("discovered 2, already in store 0") == 1, output[-3000:]
    assert not [marker for marker in NOISE_MARKERS if marker in output], output[-3000:]


def test_metrics_are_rounded_for_people():
    assert format_metric(0.9772079772079771) == "0.9772"
    assert format_metric(0.5) == "0.5" and format_metric(1.0) == "1" and format_metric(None) == "n/a"
    # trial: AUROC 0.99996 printed as 1 (perfect), an undefined one as None
    assert format_metric(0.99996) == "0.99996" and format_metric(float("nan")) == "n/a"
    assert format_metric(0.000012) == "1.2e-05" and format_metric(3) == "3"
