"""The one place clusters are made: local workers, clear errors for the others."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

import pytest

from pipeline.compute import check_cluster, connect, oversubscription_warning
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


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket closes


def test_cluster_choices_are_refused_in_one_line_before_prefect_starts(tmp_path, monkeypatch, capsys):
    """Trial: --cluster slurm:nope and an unreachable --scheduler failed after the flow had started
    (three Prefect ERROR lines, then the error), ``score`` leaving an empty output folder."""
    import flows.prefect_api
    from flows.cli import main

    def no_prefect(*args, **kwargs):
        raise AssertionError("the Prefect API was entered before the cluster was checked")

    monkeypatch.setattr(flows.prefect_api, "prefect_api", no_prefect)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no sbatch, no qsub
    port = _closed_port()
    cases = [
        (["--cluster", "slurm:nope"], "no jobqueue profile slurm:nope in "),
        (["--cluster", "pbs:cpu"], "--cluster pbs:cpu submits jobs with qsub, which is not on PATH here"),
        (["--cluster", "kubernetes"], "unknown cluster 'kubernetes': use 'local', 'cuda'"),
        (
            ["--scheduler", f"tcp://127.0.0.1:{port}"],
            f"could not reach the Dask scheduler at tcp://127.0.0.1:{port}: Connection refused. Check "
            "that it is running and reachable, or drop --scheduler to use a local cluster.",
        ),
        (
            ["--cluster", "tcp://somehost"],
            "--cluster 'tcp://somehost' is no Dask scheduler address: give one such as tcp://host:8786 "
            "(protocol, host and port), or use --cluster local.",
        ),
    ]
    out = tmp_path / "sim"
    for options, expected in cases:
        assert main(["simulate", str(out), "--layout", "sglc1-space", "--n", "2", *options]) == 1, options
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("lenshunt simulate: error: "), lines
        assert expected in lines[0], lines
    assert not out.exists()


def test_a_deployment_names_a_scheduler_it_does_not_reach_now():
    """Scheduled runs join --scheduler later: only the address's form is checked when it is served."""
    address = f"tcp://127.0.0.1:{_closed_port()}"
    check_cluster("local", address, reach=False)
    with pytest.raises(ClusterError, match="could not reach"):
        check_cluster("local", address)
    with pytest.raises(ClusterError, match="is no Dask scheduler address"):
        check_cluster("local", "tcp://", reach=False)
    # trial: a dashboard URL pasted as the scheduler's gave four tracebacks once the flow had started
    with pytest.raises(ClusterError) as refused:
        check_cluster("local", "http://127.0.0.1:8787", reach=False)
    assert str(refused.value) == (
        "--scheduler 'http://127.0.0.1:8787': 'http' is no Dask protocol (Dask speaks inproc, tcp, tls, ucx, "
        "ws, wss) (http://HOST:8787 is the dashboard's, not the scheduler's): give an address such as "
        "tcp://host:8786, or drop --scheduler to use a local cluster."
    )
    with pytest.raises(ClusterError, match="'udp' is no Dask protocol"):
        check_cluster("local", "udp://127.0.0.1:8786", reach=False)
    check_cluster("local")


def _serve(handle) -> tuple[str, threading.Event]:
    """A TCP server on a free local port that hands each connection to ``handle``; its address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            connection, _ = server.accept()
            handle(connection)

    threading.Thread(target=accept, daemon=True).start()
    return f"tcp://127.0.0.1:{server.getsockname()[1]}", done


def test_an_address_that_is_no_dask_scheduler_is_one_line_not_tracebacks_or_a_hang(dask_client):
    """Trial: an address answering HTTP ended in 318 lines of tracebacks (a frame length read from its
    bytes asked numpy for 3 EiB); one that accepted and never answered hung ``ingest`` for good."""

    def http(connection: socket.socket) -> None:
        connection.recv(100)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        connection.close()

    held: list[socket.socket] = []
    http_address, _ = _serve(http)
    silent_address, _ = _serve(held.append)  # accepts, reads nothing, answers nothing
    with pytest.raises(ClusterError) as answered:
        check_cluster("local", http_address, timeout=3)
    assert str(answered.value) == (
        f"{http_address} answers, but not as a Dask scheduler. Check the address (a Dask scheduler "
        "listens on port 8786 by default), or drop --scheduler to use a local cluster."
    )
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"accepts connections but gives no Dask answer in 2 s\. Check"):
        check_cluster(silent_address, timeout=2)
    assert time.monotonic() - started < 30  # not a hang
    check_cluster("local", dask_client.scheduler.address)  # a real scheduler passes
    worker = next(iter(dask_client.scheduler_info()["workers"]))
    with pytest.raises(ClusterError, match="is a Dask Worker, not a scheduler"):
        check_cluster("local", worker)


def test_cuda_without_dask_cuda_is_refused_by_the_check():
    """Trial: ``--cluster cuda`` here failed after the flow had started (two Prefect ERROR lines first)."""
    try:
        import dask_cuda  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("dask-cuda imports here")
    with pytest.raises(ClusterError, match=r"--cluster cuda needs dask-cuda and a CUDA GPU \("):
        check_cluster("cuda")


def test_a_batch_system_whose_server_is_down_is_refused_before_jobs_are_submitted(tmp_path, monkeypatch):
    """Trial: with the SLURM controller down, dask-jobqueue resubmitted ``sbatch`` every 9 s for good
    (426 lines in 90 s), and a stop ended in a traceback."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {
        "sbatch": "exit 1",
        "sinfo": "echo 'sinfo: error: Unable to contact slurm controller (connect failure)' >&2; exit 1",
    }.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(ClusterError) as down:
        check_cluster("slurm:cpu")
    assert str(down.value) == (
        "--cluster slurm:cpu: the SLURM server does not answer (`sinfo --noheader --summarize` failed: "
        "sinfo: error: Unable to contact slurm controller (connect failure)), so no worker job could "
        "start. Check that the batch system is up (ask its admins), or use --cluster local."
    )
    check_cluster("slurm:cpu", reach=False)  # a deployment: its runs submit later
    (bin_dir / "sinfo").write_text("#!/bin/sh\necho 'cpu* up infinite 1/0/0/1 node'\n")
    check_cluster("slurm:cpu")


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


def test_an_ingest_stopped_before_its_store_exists_does_not_claim_one(tmp_path):
    """Trial: a stop while the cluster started said "the regions written so far are kept in s6.zarr",
    which did not exist."""
    import argparse

    from flows.ingest import interrupted

    store = tmp_path / "s6.zarr"
    assert interrupted(argparse.Namespace(store=store)) == (
        f"nothing was written yet ({store} was not created); rerun the same command to ingest"
    )
    store.mkdir()
    assert interrupted(argparse.Namespace(store=store)).startswith(
        f"the regions written so far are kept in {store}"
    )


def test_a_small_stage_run_in_process_leaves_port_8787_alone():
    """Trial: every small ingest warned "Port 8787 is already in use ... Hosting the HTTP server on
    port N instead" while another Dask ran (its in-process client asked for 8787)."""
    import warnings

    from flows.common import EarlyStage

    with socket.socket() as busy:
        with contextlib.suppress(OSError):  # another Dask holds it already: the same case
            busy.bind(("127.0.0.1", 8787))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stage = EarlyStage(lambda client, progress: client.submit(sum, [1, 2]).result())
            assert stage.result() == 3
    assert not [str(w.message) for w in caught if "8787" in str(w.message)]


def test_more_local_workers_than_cores_is_warned_once_before_work(tmp_path, monkeypatch, capsys):
    """Trial: ``--workers 64`` on 2 cores ran 7x slower without a word."""
    import flows.prefect_api
    from flows.cli import main

    def no_prefect(*args, **kwargs):
        raise AssertionError("entered Prefect")

    monkeypatch.setattr(flows.prefect_api, "prefect_api", no_prefect)
    many = (os.cpu_count() or 1) + 1
    argv = ["simulate", str(tmp_path / "sim"), "--layout", "sglc1-space", "--n", "2", "--workers", str(many)]
    with pytest.raises(AssertionError, match="entered Prefect"):
        main(argv)  # warned before Prefect starts
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"lenshunt simulate: warning: --workers {many} starts more worker processes than the "
        f"{os.cpu_count()} cores here: they share them (slower, and each holds its own model); the "
        "default is one per core"
    ]
    assert oversubscription_warning("local", "tcp://h:8786", many) is None  # a scheduler's own workers
    assert oversubscription_warning("slurm:cpu", None, many) is None  # jobs, not local processes


def test_a_scheduler_without_workers_is_waited_for_with_a_word_then_refused(monkeypatch, caplog):
    """Trial: ``--scheduler`` of a scheduler with no worker left ``score regions: 0/1`` for good."""
    import logging

    from distributed import LocalCluster

    from pipeline.compute import cluster

    monkeypatch.setattr(cluster, "WORKER_WAIT_S", 1.5)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        address = empty.scheduler_address
        with (
            caplog.at_level(logging.WARNING, logger="lenshunt"),
            pytest.raises(ClusterError) as refused,
            connect(scheduler=address),
        ):
            pass
        assert str(refused.value) == (
            f"no worker joined the Dask scheduler at {address} in 1.5 s: start one (`dask worker {address}`)"
        )
        assert (
            f"no worker has joined the Dask scheduler at {address} yet: waiting up to 0.025 min"
            in caplog.text
        )
        caplog.clear()
        empty.scale(1)  # one joins: no wait, no word
        empty.wait_for_workers(1, timeout=30)
        monkeypatch.setattr(cluster, "WORKER_WAIT_S", 30.0)
        with connect(scheduler=address) as client:
            client.wait_for_workers(1, timeout=30)
            assert client.submit(sum, [1, 2]).result() == 3
        assert "no worker" not in caplog.text


_FROZEN_SCHEDULER = """
import os, signal, subprocess, sys, time
from pipeline.compute import connect

address = sys.argv[1]
port = address.rsplit(":", 1)[1]
dask = [sys.executable, "-m", "distributed.cli."]
quiet = {"stderr": subprocess.DEVNULL}
scheduler = subprocess.Popen([*dask[:2], dask[2] + "dask_scheduler", "--host", "127.0.0.1", "--port", port,
                              "--dashboard-address", "127.0.0.1:0"], **quiet)
worker = subprocess.Popen([*dask[:2], dask[2] + "dask_worker", address, "--nthreads", "1", "--no-nanny"],
                          **quiet)
try:
    with connect(scheduler=address, timeout="120s") as client:
        print("summed", client.submit(sum, [1, 2]).result(), flush=True)
        os.kill(scheduler.pid, signal.SIGSTOP)  # frozen: it neither answers nor closes the connection
    print("the run ended", flush=True)
finally:
    os.kill(scheduler.pid, signal.SIGCONT)
    scheduler.kill()
    worker.kill()
"""


@pytest.mark.slow
def test_a_run_that_joined_a_scheduler_which_froze_still_ends(tmp_path):
    """Trial: a joined ``--scheduler`` that froze (SIGSTOP, a hung host) after the work held the end of
    the run without end (its client's unregistering of the version guard waited for an answer). Each
    request at the end waits at most ``EXIT_S``; the run ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    script = tmp_path / "frozen.py"
    script.write_text(_FROZEN_SCHEDULER)
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(script), address], capture_output=True, text=True, timeout=240, cwd=os.getcwd()
    )  # without the bound it never ends: the timeout fails the test
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["summed 3", "the run ended"], result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_the_cluster_state_tasks_timeout_at_close_is_left_off_and_other_callback_errors_kept(caplog):
    """Fresh-user trial: on a loaded machine a cluster's close cancelled its state task and tornado logged
    "Exception in callback ... SpecCluster._correct_state_internal() ... exception=TimeoutError()" at ERROR
    with two tracebacks on serve's console, before lenshunt's one warning, after a firing that completed.
    Once a cluster is closed through :func:`connect`, that record is left off; any other is kept."""
    import asyncio
    import logging

    with connect("local", n_workers=1):
        pass  # its close installs the filter
    tornado = logging.getLogger("tornado.application")
    state = (
        "Exception in callback functools.partial(<bound method IOLoop._discard_future_result of "
        "<tornado.platform.asyncio.AsyncIOMainLoop>>, <Task finished name='Task-1' "
        "coro=<SpecCluster._correct_state_internal() done> exception=TimeoutError()>)"
    )
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        for error in (TimeoutError(), asyncio.CancelledError()):
            tornado.error(state, exc_info=(type(error), error, None))
        tornado.error(state, exc_info=(ValueError, ValueError("a real one"), None))
        tornado.error("Exception in callback <other>", exc_info=(TimeoutError, TimeoutError(), None))
    kept = [
        (record.getMessage()[:30], type(record.exc_info[1]).__name__ if record.exc_info else None)
        for record in caplog.records
        if record.name == "tornado.application"
    ]
    assert kept == [
        ("Exception in callback functool", "ValueError"),
        ("Exception in callback <other>", "TimeoutError"),
    ]
