"""``lenshunt serve --scheduler ADDRESS`` warns where the scheduler does not answer when serve starts.

Ops trial: an unreachable ``--scheduler`` was served without a word, and every firing failed 30 s in
("could not reach the Dask scheduler"), found at 02:00. serve's firings join the scheduler only when
they fire (it may be started later), so serve warns in one line and serves; a scheduler that answers
gets no warning; an address that is none is refused as by every command. Real CLI, a real Dask
scheduler (the session's cluster), a port where nothing listens; the Prefect server is absent (serve
then ends in its one error line, after the checks this tests).
"""

from __future__ import annotations

import pytest
from test_schedule import free_port
from test_serve_errors import no_server  # noqa: F401 (a fixture)

from flows.cli import main

pytestmark = pytest.mark.prefect

SERVED_ANYWAY = "Served anyway: each firing joins it as it fires, and fails while it does not answer."


def _serve(tmp_path, capsys, scheduler: str) -> list[str]:
    source = tmp_path / "incoming"
    source.mkdir(exist_ok=True)
    argv = [
        "serve",
        "--source",
        str(source),
        "--workdir",
        str(tmp_path / "work"),
        "--scheduler",
        scheduler,
        "--interval",
        "3600",
    ]
    assert main(argv) == 1  # no Prefect server
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_an_unreachable_scheduler_is_a_warning_and_a_reachable_one_is_not(
    tmp_path,
    no_server,  # noqa: F811
    capsys,
    dask_client,
):
    address = f"tcp://127.0.0.1:{free_port()}"
    lines = _serve(tmp_path, capsys, address)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"lenshunt serve: warning: could not reach the Dask scheduler at {address}: ")
    assert lines[0].endswith(SERVED_ANYWAY), lines
    assert lines[1].startswith("lenshunt serve: error: ") and "PREFECT_API_URL" in lines[1], lines

    lines = _serve(tmp_path, capsys, dask_client.scheduler.address)
    assert len(lines) == 1 and lines[0].startswith("lenshunt serve: error: "), lines  # the server's alone

    lines = _serve(tmp_path, capsys, "http://127.0.0.1:8787")  # no address: refused, not warned of
    assert len(lines) == 1 and "is no Dask protocol" in lines[0], lines
