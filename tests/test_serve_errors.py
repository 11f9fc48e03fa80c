"""``lenshunt serve`` fails in one line, as ``lenshunt run`` does, and creates nothing when it fails.

Trial: an unknown ``--timezone`` printed a 56-line pydantic traceback; a Prefect server that was
down printed a misleading "deployment ... on URL" line, a warning, and a 112-line ``httpx``
traceback. Every argument a schedule or deployment takes is checked before anything is created
(the fast tests run the real CLI, :func:`flows.cli.main`, with ``PREFECT_API_URL`` at a port where
nothing listens). The slow test serves on a real ``prefect server start`` and stops that server
under it: serve ends within seconds with one line, not Prefect's tracebacks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from test_cli_process import _default_sigint
from test_schedule import free_port, small_bundle, started_prefect_server, terminate  # noqa: F401

from flows.cli import main

pytestmark = pytest.mark.prefect


@pytest.fixture
def no_server(monkeypatch):
    """PREFECT_API_URL at a local port where nothing listens."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--cron", "0 2 * * *", "--timezone", "Mars/Olympus"], "--timezone 'Mars/Olympus' is not an IANA"),
        (["--interval", "60", "--timezone", "Mars/Olympus"], "--timezone 'Mars/Olympus' is not an IANA"),
        (["--cron", "0 2 * * *", "--timezone", ""], "--timezone '' is not an IANA"),
        (["--cron", "0 25 * * *"], "invalid --cron '0 25 * * *'"),
        (["--cron", "0 2 30 2 *"], "--cron '0 2 30 2 *' never fires (no such date)"),  # trial
        (["--cron", "0 2 * * * *"], "--cron '0 2 * * * *' has 6 fields: give the 5 of minute"),  # trial
        (["--interval", "nan"], "--interval must be a number of seconds, at least 1, not nan"),
        (["--interval", "inf"], "--interval must be a number of seconds, at least 1, not inf"),
        (["--interval", "0.0000001"], "at least 1, not 1e-07"),
        (["--interval", "1e300"], "--interval 1e+300 is too long"),
        (["--cron", "0 2 * * *", "--name", "a/b"], "--name 'a/b' has /"),
        (["--cron", "0 2 * * *", "--name", " "], "--name must not be empty"),
        (["--interval", "60", "--catalog", "/nope/t.csv"], "label catalog /nope/t.csv does not exist"),
    ],
)
def test_serve_refuses_a_wrong_schedule_or_name_in_one_line(tmp_path, no_server, capsys, extra, expected):
    source = tmp_path / "incoming"
    source.mkdir()
    argv = ["serve", "--source", str(source), "--workdir", str(tmp_path / "work"), *extra]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lenshunt serve: error: "), captured.err[-3000:]
    assert expected in lines[0], lines
    assert captured.out == ""  # no "deployment ... on URL" line: nothing was made


@pytest.mark.parametrize(
    ("variable", "value", "default"),
    [("LENSHUNT_SERVE_SERVER_GRACE_S", "soon", "60"), ("LENSHUNT_SERVE_SLOW_SERVER_S", "-1", "360")],
)
def test_serve_refuses_a_wrong_wait_before_it_makes_anything(
    tmp_path, no_server, capsys, monkeypatch, variable, value, default
):
    monkeypatch.setenv(variable, value)
    source = tmp_path / "incoming"
    source.mkdir()
    argv = ["serve", "--source", str(source), "--workdir", str(tmp_path / "work"), "--interval", "60"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"lenshunt serve: error: {variable}={value!r} is not a number of seconds (>= 0); "
        f"unset it for {default}"
    ), captured.err
    assert captured.out == "" and not (tmp_path / "work").exists()


def test_a_server_that_accepts_but_does_not_answer_is_slow_and_one_that_refuses_is_gone():
    """serve tells the two apart by its health check (:func:`flows.prefect_api.unanswered`): a
    listening socket nobody reads (a stopped or busy server: the kernel still accepts the connection)
    times out; a port where nothing listens refuses."""
    import socket

    from flows.prefect_api import unanswered
    from flows.server_health import timed_out

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        why = unanswered(f"http://127.0.0.1:{silent.getsockname()[1]}/api", timeout=0.5)
    assert why.startswith("ReadTimeout: ") and timed_out(why), why
    why = unanswered(f"http://127.0.0.1:{free_port()}/api", timeout=0.5)
    assert why.startswith("ConnectError: ") and not timed_out(why), why


@pytest.fixture
def answering_server():
    """A real HTTP server on a free port whose ``/api/health`` answers the status the test sets."""
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        status = 200

        def do_GET(self):
            self.send_response(Health.status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Health, f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "waited"), [(503, True), (502, True), (429, True), (500, False), (404, False)]
)
def test_a_server_that_answers_busy_is_waited_for_and_one_that_answers_an_error_is_not(
    answering_server, status, waited
):
    """A review: a health check answered 503 (a server overloaded or restarting behind a proxy) was
    taken for a server gone and the run in flight killed, though the run's own Prefect client retries
    408, 429, 502 and 503; those are waited for as a slow server is, other errors are not."""
    from flows.prefect_api import unanswered
    from flows.server_health import timed_out, waited_for

    handler, url = answering_server
    assert unanswered(url, timeout=5) == ""
    handler.status = status
    why = unanswered(url, timeout=5)
    assert why.startswith("HTTPStatusError: ") and f"'{status} " in why, why
    assert waited_for(why) is waited and not timed_out(why), why


_BUSY_SERVER_SCRIPT = """
import os, subprocess, sys, asyncio, threading
from flows.failures import PrefectApiError
from flows.serve_runner import ServedRunner, slow_server_s

runs = []

class Runner:
    started = False
    async def start(self):
        runs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))  # in flight
        await asyncio.Event().wait()

alive = []
slow_server_s()  # Prefect's settings imported before the clock starts
watch = threading.Timer(4.0, lambda: alive.append(runs[0].poll() is None))  # past serve's grace (1 s)
watch.start()
served = ServedRunner(Runner(), deployment_id=None, health=lambda: sys.argv[1])
try:
    served.serve()
except PrefectApiError as exc:
    watch.join()
    print("ended:", exc, "|", served.stop_report, "| the run's exit:", runs[0].wait(timeout=30), "|", alive)
"""


@pytest.mark.parametrize("status", [503, 500])
def test_serve_waits_out_a_busy_server_past_its_grace_and_kills_at_once_on_an_error(tmp_path, status):
    """serve's own loop, in a process of its own (it kills its descendants), over a server whose health
    check answers ``status``: with 503 the run in flight (a real child process) lives on past serve's
    grace (1 s) until the slow-server wait (8 s) ends; with 500 it is killed at the second check and
    serve ends after its grace. (A review: serve's 60 s grace ended it and the run before the 360 s
    a run's Prefect client waits on a slow server.)"""
    why = f"HTTPStatusError: Server error '{status} Whatever' for url 'http://127.0.0.1:1/api/health'"
    env = {**os.environ, "LENSHUNT_SERVE_SERVER_GRACE_S": "1", "LENSHUNT_SERVE_SLOW_SERVER_S": "8"}
    result = subprocess.run(
        [sys.executable, "-c", _BUSY_SERVER_SCRIPT, why], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warning = result.stderr.splitlines()[0]
    cannot_report = "the run in flight cannot report to the server: its 1 process(es) killed"
    if status == 503:
        assert "it is busy, not gone: a run in flight is waited for up to 8 s" in warning, warning
        ends = "within 8 s (LENSHUNT_SERVE_SERVER_GRACE_S, LENSHUNT_SERVE_SLOW_SERVER_S)"
        assert warning.endswith(f"serve ends unless it answers {ends}"), warning
        assert cannot_report in result.stderr, result.stderr  # at 8 s
        ended = f"ended: {why} | 1 process(es) of the runs in flight killed | the run's exit: -9 | [True]"
        assert result.stdout.strip() == ended, result.stdout
    else:
        assert "it refused or failed the request, so it is taken for gone" in warning, warning
        assert warning.endswith("serve ends unless it answers within 1 s (LENSHUNT_SERVE_SERVER_GRACE_S)")
        assert cannot_report in result.stderr, result.stderr
        assert result.stdout.strip().endswith("the run's exit: -9 | [False]"), result.stdout


def test_serve_on_a_server_that_does_not_answer_says_so_in_one_line_and_prints_nothing_else(tmp_path):
    """The real console script, as the operator ran it: one line, as ``lenshunt run`` says it."""
    source = tmp_path / "incoming"
    source.mkdir()
    url = f"http://127.0.0.1:{free_port()}/api"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve", "--source", str(source), "--workdir",
         str(tmp_path / "work"), "--cron", "0 2 * * *"],
        env={**os.environ, "PREFECT_API_URL": url}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout == "", result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"lenshunt serve: error: PREFECT_API_URL={url} does not answer ("), lines
    assert "start that server" in lines[0]
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_serve_ends_in_one_line_when_its_server_goes_away(tmp_path):
    """Trial: serve went on after its server stopped, printing Prefect's cancellation-observer
    tracebacks (150 lines in 8 s), and a Ctrl-C then waited on the server. Now it warns at once
    and, the server not back within its grace (``LENSHUNT_SERVE_SERVER_GRACE_S``, 60 s unless
    set; 3 s here), ends, exit 1, with one line that says what to do; nothing else."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, server):
        serve = _serve(tmp_path, env, "gone", grace_s=3, log_path=log_path)
        try:
            _wait_for_line(log_path, "waiting for scheduled runs", serve)
            _wait_until_polled(api.url, "gone", serve, log_path)
            os.killpg(server.pid, signal.SIGKILL)  # the server goes (a SIGTERM waited on its connections)
            server.wait(timeout=60)
            stopped_at = time.monotonic()
            serve.wait(timeout=60)
            took = time.monotonic() - stopped_at
        finally:
            terminate(serve, timeout=30)
    text = log_path.read_text()
    assert serve.returncode == 1, text
    assert took < 30, f"{took:.0f} s\n{text}"
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("lenshunt serve: deployment lenshunt-run/gone on "), text
    assert lines[1].startswith("lenshunt serve: waiting for scheduled runs"), text
    assert len(lines) == 4, text
    assert lines[2].startswith("lenshunt serve: warning: the Prefect server does not answer ("), text
    assert lines[2].endswith("serve ends unless it answers within 3 s (LENSHUNT_SERVE_SERVER_GRACE_S)"), text
    assert lines[3].startswith(f"lenshunt serve: error: PREFECT_API_URL={api.url} stopped answering ("), text
    assert "serve stopped (no run was in flight); start that server and serve again" in lines[3], text
    assert "Traceback" not in text


@pytest.mark.slow
def test_serve_waits_out_a_restart_of_its_server(tmp_path):
    """A review: serve ended two seconds into any outage of its server, a restart included. A server
    stopped and started again on its port within the grace is said (a warning, then "answers
    again") and serve goes on: a later stop of serve is the usual one line, exit 143."""

    from test_schedule import Api

    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, server):
        serve = _serve(tmp_path, env, "restarted", grace_s=120, log_path=log_path)
        again = None
        try:
            _wait_for_line(log_path, "waiting for scheduled runs", serve)
            # the runner has started once it polled (killed while it started, it ends serve in one line
            # instead: test_a_server_gone_while_the_runner_starts_...)
            _wait_until_polled(api.url, "restarted", serve, log_path)
            os.killpg(server.pid, signal.SIGKILL)  # a SIGTERM waited over 60 s on serve's connections once
            server.wait(timeout=60)
            _wait_for_line(log_path, "does not answer", serve)
            again = _server_again(api.url, env)
            _wait_for_line(log_path, "answers again", serve, timeout=150)
            assert Api(api.url).deployment_id("restarted") is not None
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=90)
        finally:
            terminate(serve, timeout=30)
            if again is not None:
                terminate(again, timeout=30)
    text = log_path.read_text()
    assert serve.returncode == 143, text
    assert "Traceback" not in text and "error:" not in text, text
    assert [line for line in text.splitlines() if line.startswith("lenshunt serve: stopped")], text


def _wait_for_line(path, text: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert process.poll() is None and time.monotonic() < deadline, path.read_text()
        time.sleep(0.5)


def _wait_until_polled(url: str, name: str, process: subprocess.Popen, log_path, timeout: float = 120) -> str:
    """Wait until serve's runner has polled deployment ``name`` (status READY); its id. A server killed
    before that ends serve as a runner that failed to start (its own test), not as one that lost its
    server (flake hunt: the few milliseconds of the runner's websocket handshake)."""
    from test_schedule import Api

    deployment = Api(url).deployment_id(name)
    deadline = time.monotonic() + timeout
    while Api(url).call("GET", f"/deployments/{deployment}")["status"] != "READY":
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.5)
    return deployment


def _server_again(url: str, env: dict) -> subprocess.Popen:
    """A Prefect server started again on the port of ``url``, with the database of ``env``'s home."""
    import shutil
    from pathlib import Path

    port = url.rsplit(":", 1)[1].split("/")[0]
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    return subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", port],
        env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _serve(tmp_path, env: dict, name: str, grace_s: float, log_path) -> subprocess.Popen:
    """``lenshunt serve`` of an empty folder every hour, its output to ``log_path``."""
    source = tmp_path / "incoming"
    source.mkdir()
    command = [
        sys.executable, "-m", "flows.cli", "serve", "--source", str(source),
        "--workdir", str(tmp_path / "work"), "--interval", "3600", "--name", name,
    ]  # fmt: skip
    with log_path.open("w") as log:
        return subprocess.Popen(
            command, env={**env, "LENSHUNT_SERVE_SERVER_GRACE_S": str(grace_s)}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_sigint,
        )  # fmt: skip


def _serve_a_run(tmp_path, env: dict, name: str, bundle, log_path, **extra_env: str) -> subprocess.Popen:
    """``lenshunt serve`` every 5 s of a labelled set of 20 cutouts with ``bundle`` on one worker, its
    output to ``log_path``; ``extra_env`` (e.g. its grace) set for it."""
    from test_schedule import EUCLID, FIRST, LABELS, write_set

    source = write_set(EUCLID, tmp_path / "incoming", FIRST, {i: LABELS[i] for i in FIRST})
    command = [
        sys.executable, "-m", "flows.cli", "serve", "--source", str(source),
        "--workdir", str(tmp_path / "work"), "--interval", "5", "--name", name,
        "--model", str(bundle), "--workers", "1", "--batch-size", "8",
    ]  # fmt: skip
    with log_path.open("w") as log:
        return subprocess.Popen(
            command, env={**env, **extra_env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_default_sigint,
        )  # fmt: skip


def _a_run_in_flight(api, name: str, serve: subprocess.Popen, log_path) -> dict:
    """Wait (up to 300 s) until deployment ``name`` has a run Running; that run."""
    from test_schedule import wait_for

    def running():
        assert serve.poll() is None, log_path.read_text()
        return [r for r in api.flow_runs(name) if r["state_type"] == "RUNNING"]

    return wait_for("a run in flight", running, 300, log_path.read_text, interval=0.25)[0]


@pytest.mark.slow
def test_a_run_in_flight_when_the_server_goes_away_prints_no_traceback(small_bundle, tmp_path):  # noqa: F811
    """Trial: with a run in flight, Prefect's FlowRunSuspendingObserver in the run's process printed
    a 30-line ConnectionRefusedError traceback into serve's output between its warning and its error
    line. The run's console now leaves such records out too; serve kills the run after its grace."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, server):
        serve = _serve_a_run(
            tmp_path, env, "inflight", small_bundle, log_path, LENSHUNT_SERVE_SERVER_GRACE_S="25"
        )
        try:
            _a_run_in_flight(api, "inflight", serve, log_path)
            os.killpg(server.pid, signal.SIGKILL)  # a SIGTERM waited over 60 s on serve's connections once
            server.wait(timeout=60)
            serve.wait(timeout=120)
        finally:
            terminate(serve, timeout=30)
    text = log_path.read_text()
    assert serve.returncode == 1, text
    assert "Traceback" not in text, text
    assert "lenshunt serve: warning: the Prefect server does not answer" in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"lenshunt serve: error: PREFECT_API_URL={api.url} stopped answering"), text
    assert "process(es) of the runs in flight killed" in last, text


@pytest.mark.slow
def test_a_run_in_flight_waits_out_a_server_that_is_slow_not_gone(small_bundle, tmp_path):  # noqa: F811
    """A review: serve killed its run in flight 3-5 s into any silence of its server, a slow one
    included (busy, a long database operation, a paused machine), whose health check times out
    rather than being refused; the run's own Prefect client waits on such a server and retries. The
    server stopped (SIGSTOP: its socket still accepts connections) for 20 s, four times past that
    kill point, and then continued: serve warns that it is slow, says it answers again, and the run
    was not killed: it completes."""
    import psutil
    from test_schedule import wait_for

    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, server):
        serve = _serve_a_run(
            tmp_path, env, "slow", small_bundle, log_path, LENSHUNT_SERVE_SERVER_GRACE_S="150"
        )
        stopped = False
        try:
            run = _a_run_in_flight(api, "slow", serve, log_path)
            os.killpg(server.pid, signal.SIGSTOP)
            stopped = True
            in_flight = psutil.Process(serve.pid).children(recursive=True)
            _wait_for_line(log_path, "does not answer", serve, timeout=30)
            time.sleep(20)
            alive = [p for p in in_flight if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            os.killpg(server.pid, signal.SIGCONT)
            stopped = False
            _wait_for_line(log_path, "answers again", serve, timeout=150)

            def ended():
                assert serve.poll() is None, log_path.read_text()
                states = {r["id"]: r["state_type"] for r in api.flow_runs("slow")}
                return states[run["id"]] if states[run["id"]] not in {"RUNNING", "PENDING"} else None

            state = wait_for("the run to end", ended, 300, log_path.read_text)
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=120)
        finally:
            if stopped:
                os.killpg(server.pid, signal.SIGCONT)
            terminate(serve, timeout=30)
    text = log_path.read_text()
    assert in_flight and alive == in_flight, f"{in_flight} {alive}\n{text}"
    assert state == "COMPLETED", f"{state}\n{text}"
    warning = [line for line in text.splitlines() if line.startswith("lenshunt serve: warning:")]
    assert len(warning) == 1 and "Timeout: " in warning[0], text
    assert "it is slow, not gone: a run in flight is waited for up to " in warning[0], text
    assert "process(es) killed" not in text, text
    assert "Traceback" not in text, text
    assert serve.returncode == 143, text


def test_a_websocket_handshake_cut_by_a_server_going_away_is_left_off_the_console():
    """Fresh-clone run: the server killed while a served run's cancellation observer opened its
    websocket logged ``InvalidMessage`` (from an ``EOFError``) with a 40-line traceback into serve's
    output; a refused connection was already left off. A bug's record is kept."""
    import logging

    import httpx
    import websockets.exceptions

    from flows.serve_runner import DropServerGone

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException as raised:
            return logging.LogRecord(
                "prefect.FlowRunCancellingObserver", logging.WARNING, __file__, 1,
                "The FlowRunCancellingObserver websocket failed with an exception. Switching to polling.",
                None, (type(raised), raised, raised.__traceback__),
            )  # fmt: skip

    def cut() -> BaseException:
        try:
            raise EOFError("connection closed while reading HTTP status line")
        except EOFError as eof:
            try:
                raise websockets.exceptions.InvalidMessage("did not receive a valid HTTP response") from eof
            except websockets.exceptions.InvalidMessage as exc:
                return exc

    drop = DropServerGone()
    assert not drop.filter(record(cut()))
    assert not drop.filter(record(httpx.ConnectError("[Errno 111] Connection refused")))
    assert drop.filter(record(ValueError("a bug")))


#: A served run's process as Prefect's engine starts it: the engine's logging, then the flow loaded from
#: its entrypoint (the module imported), then what Prefect logs before the flow's body runs.
SERVED_RUN_BEFORE_ITS_BODY = """
import os, signal, sys, time
import websockets.exceptions
from prefect.flows import load_flow_from_entrypoint
from prefect.logging import get_logger
load_flow_from_entrypoint("flows.run.run_flow")
try:
    try:
        raise EOFError("connection closed while reading HTTP status line")
    except EOFError as eof:
        raise websockets.exceptions.InvalidMessage("did not receive a valid HTTP response") from eof
except websockets.exceptions.InvalidMessage:
    get_logger("FlowRunSuspendingObserver").warning(
        "The FlowRunSuspendingObserver websocket failed with an exception. Switching to polling mode.",
        exc_info=True,
    )
os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C in serve's terminal
time.sleep(0.5)
print("still running", flush=True)
"""


def test_a_served_run_is_quiet_and_ignores_a_ctrl_c_from_the_moment_its_flow_is_loaded():
    """Slow test under load (a busy 2-core machine): the server was killed right after the served run
    turned Running, before the run's body had installed its console filters, and its process printed
    Prefect's FlowRunSuspendingObserver websocket traceback (``InvalidMessage`` from an ``EOFError``).
    Prefect's engine loads the flow (imports :mod:`flows.run`) before it proposes Running and starts
    its observers; the filters, and the ignored SIGINT (a Ctrl-C to serve's process group in that
    window crashed the run instead of letting serve cancel it), are set from that import on."""
    env = {**os.environ, "LENSHUNT_SERVED_RUN": "1", "PREFECT_LOGGING_LEVEL": "INFO"}
    result = subprocess.run(
        [sys.executable, "-c", SERVED_RUN_BEFORE_ITS_BODY], env=env, capture_output=True, text=True,
        timeout=120, preexec_fn=_default_sigint,
    )  # fmt: skip
    assert result.stdout == "still running\n", result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    assert "FlowRunSuspendingObserver" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_server_gone_while_the_runner_starts_ends_serve_in_its_one_line_error():
    """Fresh-clone run: the server SIGKILLed while serve's runner connected its event emitter ended
    serve in ``RuntimeError: Runner failed to start: event_emitter`` and a 90-line traceback; it is the
    server going away, said as such (``PrefectApiError``, the CLI's one line)."""
    import websockets.exceptions

    from flows.failures import PrefectApiError
    from flows.serve_runner import ServedRunner

    class Runner:
        async def start(self):
            try:
                raise websockets.exceptions.InvalidMessage("did not receive a valid HTTP response")
            except websockets.exceptions.InvalidMessage as exc:
                raise RuntimeError("Runner failed to start: event_emitter") from exc

    class Buggy:
        async def start(self):
            raise RuntimeError("a bug")

    served = ServedRunner(Runner(), deployment_id=None, health=lambda: "ConnectError: refused")
    with pytest.raises(PrefectApiError, match=r"^ConnectError: refused$"):
        served.serve()
    assert served.stop_report == "no run was in flight"
    with pytest.raises(RuntimeError, match="a bug"):  # any other failure of the runner stays what it is
        ServedRunner(Buggy(), deployment_id=None, health=lambda: "").serve()


def test_a_prefect_callback_of_a_task_cancelled_at_stop_is_left_off_the_console():
    """Fresh-clone run: after a server restart, serve's stop cancelled the cancellation observer's
    polling task, whose done-callback raised ``CancelledError``: asyncio logged "Exception in
    callback FlowRunCancellingObserver._handle_polling_task_done" with a traceback. Another
    exception in a callback (a bug) is kept."""
    import asyncio
    import logging

    from flows.serve_runner import DropServerGone

    def callback_record(exc: BaseException, filename: str) -> logging.LogRecord:
        code = compile("raise exc", filename, "exec")
        try:
            exec(code, {"exc": exc})
        except BaseException as raised:
            info = (type(raised), raised, raised.__traceback__)
        return logging.LogRecord(
            "asyncio", logging.ERROR, __file__, 1, "Exception in callback %s", ("x",), info
        )

    prefect_file = "/venv/site-packages/prefect/runner/_observers.py"
    assert not DropServerGone().filter(callback_record(asyncio.CancelledError(), prefect_file))
    assert DropServerGone().filter(callback_record(ValueError("a bug"), prefect_file))
    assert DropServerGone().filter(callback_record(asyncio.CancelledError(), "/home/me/mine.py"))


def test_an_observer_polling_that_gave_up_while_the_server_was_away_is_left_off_at_stop():
    """Slow-test run on a loaded machine: after a server restart, serve's SIGTERM ended the cancellation
    observer, whose polling had exceeded its error threshold while the server was away: Prefect logged
    "Polling task exited with exception" with a traceback (serve had said the absence in its lines).
    Another RuntimeError is kept."""
    import logging

    from flows.serve_runner import DropServerGone

    def polling_record(exc: BaseException) -> logging.LogRecord:
        info = (type(exc), exc, None)
        name = "prefect.FlowRunCancellingObserver"
        return logging.LogRecord(
            name, logging.WARNING, __file__, 1, "Polling task exited with exception", (), info
        )

    assert not DropServerGone().filter(polling_record(RuntimeError("Service exceeded error threshold.")))
    assert DropServerGone().filter(polling_record(RuntimeError("a bug")))


@pytest.mark.slow
def test_serve_sets_crashed_the_runs_left_running_by_a_process_that_is_gone(tmp_path):
    """Review: a run killed while its server was away (serve ended before the server came back)
    stayed Running on the server for good. Serving again sets such runs Crashed (its work directory's
    run lock is free), and leaves alone a run whose lock is held, one finished, and one too young."""
    from datetime import UTC, datetime, timedelta

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.serve_orphans import crash_orphaned_runs
    from pipeline.locking import output_lock

    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, _):
        flow_id = api.call("POST", "/flows/", {"name": "lenshunt-run"})["id"]
        deployment = api.call("POST", "/deployments/", {"name": "orphans", "flow_id": flow_id})["id"]

        def run(name: str, workdir, state: str) -> str:
            body = {"name": name, "parameters": {"workdir": str(workdir)}, "state": {"type": state}}
            return api.call("POST", f"/deployments/{deployment}/create_flow_run", body)["id"]

        runs = {
            "gone": run("gone", tmp_path / "gone", "RUNNING"),
            "held": run("held", tmp_path / "held", "RUNNING"),
            "stopping": run("stopping", tmp_path / "stopping", "CANCELLING"),
            "done": run("done", tmp_path / "done", "COMPLETED"),
        }
        with temporary_settings({PREFECT_API_URL: api.url}):
            assert crash_orphaned_runs(deployment) == []  # younger than a minute: left alone
            later = datetime.now(UTC) + timedelta(minutes=5)
            with output_lock(tmp_path / "held", purpose="run", advice="busy"):
                said = crash_orphaned_runs(deployment, now=later)
        assert sorted(said) == [
            f"flow run 'gone' was still Running on the server with no process left (it ended while the "
            f"server was away): set Crashed; its finished work in {tmp_path / 'gone'} is kept",
            f"flow run 'stopping' was still Cancelling on the server with no process left (it ended while "
            f"the server was away): set Crashed; its finished work in {tmp_path / 'stopping'} is kept",
        ], said
        states = {name: api.call("GET", f"/flow_runs/{rid}")["state"] for name, rid in runs.items()}
        assert {name: state["type"] for name, state in states.items()} == {
            "gone": "CRASHED",
            "held": "RUNNING",
            "stopping": "CRASHED",
            "done": "COMPLETED",
        }
        assert "its process ended while the server could not hear it" in states["gone"]["message"]

        again = run("again", tmp_path / "again", "RUNNING")  # serve itself, on its start
        serve = _serve(tmp_path, {**env, "LENSHUNT_SERVE_ORPHAN_AGE_S": "0"}, "orphans", 60, log_path)
        try:
            _wait_for_line(log_path, "waiting for scheduled runs", serve)
        finally:
            terminate(serve, timeout=30)
        assert api.call("GET", f"/flow_runs/{again}")["state"]["type"] == "CRASHED"
        assert api.call("GET", f"/flow_runs/{runs['held']}")["state"]["type"] == "CRASHED"  # its lock let go
    text = log_path.read_text()
    assert "Traceback" not in text, text
    assert "lenshunt serve: flow run 'again' was still Running on the server with no process left" in text, (
        text
    )


@pytest.mark.slow
def test_serve_refuses_a_work_pools_deployment_of_its_name(tmp_path):
    """Trial: ``prefect deploy`` of deploy/prefect.yaml took over the deployment a serve had made (one
    default name); a serve of a work pool's deployment would take it over as silently. Now refused in
    one line, until that deployment is paused (by the command the line gives: trial, it lacked the
    schedule's ID that Prefect 3.8's CLI needs)."""
    import shutil
    from pathlib import Path

    from test_schedule import Api

    home = tmp_path / "prefect-home"
    home.mkdir()
    with started_prefect_server(home) as (api, env, _):
        rest = Api(api.url)
        flow_id = rest.call("POST", "/flows/", {"name": "lenshunt-run"})["id"]
        rest.call("POST", "/work_pools/", {"name": "lenshunt-process", "type": "process"})
        schedule = {"schedule": {"interval": 3600.0}, "active": True}
        deployment = rest.call(
            "POST",
            "/deployments/",
            {
                "name": "pooled",
                "flow_id": flow_id,
                "work_pool_name": "lenshunt-process",
                "schedules": [schedule],
            },
        )["id"]
        [schedule_id] = [s["id"] for s in rest.call("GET", f"/deployments/{deployment}")["schedules"]]
        (tmp_path / "incoming").mkdir()
        command = [sys.executable, "-m", "flows.cli", "serve", "--source", str(tmp_path / "incoming"),
                   "--workdir", str(tmp_path / "work"), "--interval", "60", "--name", "pooled"]  # fmt: skip
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert rest.call("GET", f"/deployments/{deployment}")["work_pool_name"] == "lenshunt-process"
        # the command the refusal gives pauses it on this Prefect (trial: without the ID it failed), and
        # a deployment whose schedules are paused so is served (trial: only the UI's toggle counted)
        prefect_cli = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"  # venv's
        pause = [prefect_cli, "deployment", "schedule", "pause", "lenshunt-run/pooled", schedule_id]
        paused = subprocess.run(pause, env=env, capture_output=True, text=True, timeout=120)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert [s["active"] for s in rest.call("GET", f"/deployments/{deployment}")["schedules"]] == [False]
        (tmp_path / "again").mkdir()
        served = _serve(tmp_path / "again", env, "pooled", 60, tmp_path / "served.log")
        try:
            _wait_for_line(tmp_path / "served.log", "waiting for scheduled runs", served)
        finally:
            terminate(served, timeout=30)
    assert refused.returncode == 1, refused.stderr
    [line] = [line for line in refused.stderr.splitlines() if line.strip()]
    assert line == (
        "lenshunt serve: error: deployment lenshunt-run/pooled belongs to work pool 'lenshunt-process' (made "
        "by `prefect deploy`, e.g. of deploy/prefect.yaml; that pool's workers run it): serving it here "
        "would replace it; serve under another --name, or pause it first (prefect deployment schedule "
        f"pause 'lenshunt-run/pooled' {schedule_id})"
    )


@pytest.mark.slow
def test_a_second_serve_of_one_deployment_or_work_directory_is_refused(tmp_path):
    """Trial: a second ``serve --name trialc`` (another threshold) took the first over: the first's
    next firing ran with the second's parameters, and stopping the second paused the schedule the
    first served, which then never fired again, without a word. Now the second is refused in one line
    before it makes anything, by its deployment (another runner polls it) or its work directory
    (another serve holds it); once the first stopped (schedule paused), serving again works."""
    from test_schedule import Api

    home = tmp_path / "prefect-home"
    home.mkdir()
    with started_prefect_server(home) as (api, env, _):
        first = _serve(tmp_path, env, "owned", 60, tmp_path / "first.log")
        try:
            _wait_for_line(tmp_path / "first.log", "waiting for scheduled runs", first)
            deployment = _wait_until_polled(api.url, "owned", first, tmp_path / "first.log")
            parameters = Api(api.url).call("GET", f"/deployments/{deployment}")["parameters"]
            (tmp_path / "other").mkdir()
            common = [sys.executable, "-m", "flows.cli", "serve", "--source", str(tmp_path / "incoming")]
            same_name = subprocess.run(
                [*common, "--workdir", str(tmp_path / "other"), "--interval", "60", "--name", "owned",
                 "--threshold", "0.9"],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            same_workdir = subprocess.run(
                [*common, "--workdir", str(tmp_path / "work"), "--interval", "60", "--name", "another"],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert Api(api.url).call("GET", f"/deployments/{deployment}")["parameters"] == parameters
            assert Api(api.url).deployment_id("another") is None  # nothing made
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=90)
            again = _serve(tmp_path / "other", env, "owned", 60, tmp_path / "again.log")
            try:
                _wait_for_line(tmp_path / "again.log", "waiting for scheduled runs", again)
            finally:
                terminate(again, timeout=30)
        finally:
            terminate(first, timeout=30)
    assert same_name.returncode == 1, same_name.stderr
    [line] = [line for line in same_name.stderr.splitlines() if line.strip()]
    assert line.startswith("lenshunt serve: error: deployment lenshunt-run/owned is served already: another "
                           "runner polled its runs "), line  # fmt: skip
    assert line.endswith("stop that serve first, or serve under another --name (a serve that was killed "
                         "is taken for gone 30 s after its last poll)"), line  # fmt: skip
    assert same_workdir.returncode == 1, same_workdir.stderr
    [line] = [line for line in same_workdir.stderr.splitlines() if line.strip()]
    assert line.startswith(f"lenshunt serve: error: {tmp_path / 'work'} is being written by another lenshunt "
                           "process (serve pid "), line  # fmt: skip
    assert line.endswith(
        "stop that serve first (Ctrl-C or SIGTERM: it pauses its schedule), or serve another --workdir"
    ), line


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["run", "ingest"])
def test_a_firing_that_meets_a_run_by_hand_in_its_work_directory_is_skipped_not_failed(writer, tmp_path):
    """Trial: a scheduled firing that met a ``lenshunt run`` started by hand in the same work directory
    ended Failed, with two 30-line tracebacks on the console. Now it ends Cancelled, saying why; so does
    one that meets an ingest still writing the work directory's store (trial: a daytime delivery)."""
    from pipeline.locking import output_lock
    from pipeline.store.lock import store_writer_lock

    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    busy_path = tmp_path / "work" / ("store.zarr" if writer == "ingest" else "")
    if writer == "ingest":  # the work directory's store, which a daytime ingest is writing
        from pipeline.store import create_store
        from schemas.layout import load_layout

        create_store(busy_path, load_layout("euclid-sglc2"), source=str(tmp_path / "incoming"))
        holder = store_writer_lock(busy_path, purpose="ingest of the delivery")
    else:
        holder = output_lock(tmp_path / "work", purpose="run", advice="busy")  # "a run by hand"
    with started_prefect_server(home) as (api, env, _), holder:
        serve = _serve(tmp_path, env, "busy", 60, log_path)
        try:
            _wait_for_line(log_path, "waiting for scheduled runs", serve)
            deployment = api.deployment_id("busy")
            run = api.call("POST", f"/deployments/{deployment}/create_flow_run", {})["id"]

            def final():
                state = api.call("GET", f"/flow_runs/{run}")["state"]
                return state if state["type"] in {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"} else None

            deadline = time.monotonic() + 240
            while (state := final()) is None:
                assert serve.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(1)
            time.sleep(3)  # the run's last logs reach the server
            logs = api.call("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run]}}})
        finally:
            terminate(serve, timeout=30)
    text = log_path.read_text()
    assert state["type"] == "CANCELLED", (state, text)
    # the server's logs of the run: its warning, no ERROR with a traceback (trial: a worker's console)
    assert any(log["message"].startswith("this firing is skipped") for log in logs), logs
    assert [log["message"][:80] for log in logs if log["level"] >= 40] == [], logs
    what = f"store {busy_path}" if writer == "ingest" else str(tmp_path / "work")
    busy = f"this firing is skipped: {what} is being written by another lenshunt process ("
    assert state["message"].startswith(busy), state
    assert state["message"].endswith("; the next firing adds what is new"), state
    assert "Traceback" not in text, text


@pytest.mark.slow
def test_a_run_serve_killed_while_its_server_was_away_says_why_once_it_is_back(small_bundle, tmp_path):  # noqa: F811
    """Trial: serve killed a run in flight as its server did not answer; once the server was back the
    run's state read Prefect's "Process exited due to a SIGKILL signal ... memory limits" (the
    runner's late report), the reason being on serve's console only. Now serve sets it Crashed with
    its reason, and sets it again should the runner's report come later (its client's retries: 2 here,
    so that the test sees the report's window pass)."""

    from test_schedule import Api, wait_for

    home = tmp_path / "prefect-home"
    home.mkdir()
    log_path = tmp_path / "serve.log"
    with started_prefect_server(home) as (api, env, server):
        grace = {"LENSHUNT_SERVE_SERVER_GRACE_S": "150", "PREFECT_CLIENT_MAX_RETRIES": "2"}
        serve = _serve_a_run(tmp_path, env, "away", small_bundle, log_path, **grace)
        again = None
        try:
            run = _a_run_in_flight(api, "away", serve, log_path)
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)
            _wait_for_line(log_path, "cannot report to the server", serve)
            again = _server_again(api.url, env)
            _wait_for_line(log_path, "answers again", serve, timeout=150)

            def state():
                found = Api(api.url).call("GET", f"/flow_runs/{run['id']}")["state"]
                return found if (found["message"] or "").startswith("lenshunt serve killed its ") else None

            said = wait_for("serve's reason in the run's state", state, 60, log_path.read_text, interval=0.5)
            time.sleep(25)  # the runner's report of the kill, retried twice (2 + 4 s, jitter), came by now
            after = Api(api.url).call("GET", f"/flow_runs/{run['id']}")["state"]
        finally:
            terminate(serve, timeout=90)
            if again is not None:
                terminate(again, timeout=30)
    assert said["type"] == "CRASHED", said
    assert "the Prefect server did not answer (" in said["message"], said
    assert said["message"].endswith("its finished work is kept, and the next firing resumes it"), said
    assert (after["type"], after["message"]) == ("CRASHED", said["message"]), after
    assert "Traceback" not in log_path.read_text()
