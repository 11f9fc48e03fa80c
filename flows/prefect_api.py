"""The Prefect API a CLI command talks to: the user's server, or a temporary one the CLI owns.

Without ``PREFECT_API_URL`` Prefect would start its own temporary server, which survives a
SIGKILL or SIGTERM of the CLI (reparented to PID 1) and dies with a Ctrl-C of the terminal's
process group while the client still needs it (a 75 s wait for retries, then a traceback).
Instead the CLI starts that server itself:

- in a session of its own, so a Ctrl-C to the terminal reaches the CLI, not the server, and
  the CLI can record the interruption and exit in seconds;
- with ``PR_SET_PDEATHSIG`` (Linux), so the kernel kills it the moment the CLI dies, however
  it dies, and a parent-pid watch as a second guard where the signal is not available;
- stopped by the CLI on every ordinary exit.

With ``PREFECT_API_URL`` set, its health is checked first: a stopped server is reported in one
line with the fix.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from flows.failures import PrefectApiError

#: Run in the server's process before it becomes uvicorn: die with the parent (the CLI).
_CHILD = """
import ctypes, os, signal, sys, threading, time
parent = int(sys.argv[1])
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != parent:
    sys.exit(0)
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv = ["uvicorn", *sys.argv[2:]]
import uvicorn.main
uvicorn.main.main()
"""


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NO_SERVER_FIX = (
    "start that server (`prefect server start`), or unset PREFECT_API_URL to let lenshunt use a temporary one"
)
"""What to do when ``PREFECT_API_URL`` does not answer, for a command that can use a temporary server."""


def unanswered(url: str, timeout: float = 3.0) -> str:
    """Why the Prefect API at ``url`` does not answer its health check (``"ConnectError: ..."``), or
    ``""`` when it does."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def check_api(url: str, timeout: float = 3.0, fix: str = NO_SERVER_FIX) -> None:
    """Raise :class:`PrefectApiError` when the Prefect API at ``url`` does not answer; its message
    ends with ``fix``."""
    why = unanswered(url, timeout)
    if why:
        raise PrefectApiError(f"PREFECT_API_URL={url} does not answer ({why}); {fix}")


class OwnedServer:
    """A temporary Prefect server process that lives exactly as long as this process."""

    def __init__(self) -> None:
        import prefect
        from prefect.settings import get_current_settings

        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {
            **os.environ,
            **get_current_settings().to_environment_variables(exclude_unset=True),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        args = [
            "--app-dir",
            str(prefect.__module_path__.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(os.getpid()), *args],
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrefectApiError(
                    f"the temporary Prefect server exited with code {self.process.returncode} on start; "
                    "run `prefect server start` to see why"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise PrefectApiError(f"the temporary Prefect server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the URL of a Prefect API that answers, for the duration of a CLI command."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = PREFECT_API_URL.value()
    if url:
        check_api(url)
        yield url
        return
    server = OwnedServer()
    global _owned_api
    try:
        server.wait_ready()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            _owned_api = server.api_url
            try:
                yield server.api_url
            finally:
                _owned_api = None
                _drain_clients()
    finally:
        server.stop()


_owned_api: str | None = None
"""The API URL of this process's own temporary server while :func:`prefect_api` serves it."""


def owned_server_api() -> str | None:
    """The API URL of the temporary server this CLI started (:func:`prefect_api`), or None (a
    PREFECT_API_URL of the user's, or a run outside the CLI): its port is new at every command, its
    database (PREFECT_HOME's) the same."""
    return _owned_api


def _drain_clients(timeout: float = 5.0) -> None:
    """Send the logs and events still queued while the server is up (not retried at exit for a minute)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout)
