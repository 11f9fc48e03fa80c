"""The tests' Prefect API client (:class:`test_schedule.Api`) asks a slow server again, for reads only.

A fresh clone's slow test failed on the harness's own read: ``POST /flow_runs/filter`` timed out at its
30 s on a Prefect server just continued from SIGSTOP on a loaded machine. A read that times out is asked
again; a write is not (it may have been done). A real HTTP server whose first answer is late.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_schedule import Api


class _LateOnce(BaseHTTPRequestHandler):
    calls = 0

    def _answer(self) -> None:
        type(self).calls += 1
        if type(self).calls == 1:
            time.sleep(2.0)  # past the client's timeout
        body = json.dumps({"n": type(self).calls}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def late_server():
    _LateOnce.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LateOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Api(f"http://127.0.0.1:{server.server_address[1]}/api")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("method", "path"), [("GET", "/flow_runs/1"), ("POST", "/flow_runs/filter")])
def test_a_read_that_times_out_is_asked_again(late_server, method, path):
    late_server.timeout = 0.5
    assert late_server.call(method, path, {} if method == "POST" else None) == {"n": 2}


def test_a_write_that_times_out_is_not(late_server):
    late_server.timeout = 0.5
    with pytest.raises(TimeoutError):
        late_server.call("POST", "/flow_runs/", {})
    assert _LateOnce.calls == 1
