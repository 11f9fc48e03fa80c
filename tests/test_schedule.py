"""Scheduling: ``deploy/prefect.yaml`` matches the flows, ``lenshunt serve`` validates its input, and a
served interval schedule on a real Prefect server runs the pipeline incrementally.

The slow test starts ``prefect server start`` on 127.0.0.1 (a free port, a temporary PREFECT_HOME),
serves the run flow with ``lenshunt serve --interval`` over 20 real cutouts, and checks that the
first firing produces the catalog, a later firing with nothing new changes no catalog row, and a
firing after 5 new cutouts arrive appends exactly those. Everything talks to the server over its
REST API; ``serve`` is stopped before the server.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cutouts import band_file, write_set
from test_cli_process import _default_sigint
from waiting import wait_for

from flows.cli import build_parser
from flows.serve import ServeError, make_schedule, run_parameters, serve_run_flow
from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance
from schemas.layout import load_layout

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[1]
EUCLID = load_layout("euclid-sglc2")
FIRST = list(range(300000, 300020))
LATER = list(range(300020, 300025))
LABELS = {i: int(i % 4 == 0) for i in FIRST + LATER}
DEPLOYMENT = "test-nightly"


# --- deploy/prefect.yaml and the serve command, without a server --------------------------------


def flow_of(entrypoint: str):
    module, _, attribute = entrypoint.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def test_prefect_yaml_deployments_match_the_flows():
    document = yaml.safe_load((REPO / "deploy" / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in document["deployments"]}
    assert set(deployments) == {"lenshunt-nightly", "lenshunt-ingest", "lenshunt-score"}
    expected_flows = {"lenshunt-nightly": "lenshunt-run", "lenshunt-ingest": "lenshunt-ingest"}
    expected_flows["lenshunt-score"] = "lenshunt-score"
    for name, deployment in deployments.items():
        flow = flow_of(deployment["entrypoint"])
        assert flow.name == expected_flows[name]
        accepted = set(flow.parameters.properties)
        given = set(deployment["parameters"])
        assert given <= accepted, f"{name}: unknown parameters {given - accepted}"
        assert set(flow.parameters.required or []) <= given, f"{name}: required parameters missing"
        assert deployment["work_pool"]["name"] == "lenshunt-process"
        assert deployment["concurrency_limit"] == 1
        # options the work directory keeps (its latest evaluation's, its score run's threshold) are left
        # to it (trial: top_n 48 overrode a gallery size saved by hand at every firing; threshold 0.5 one
        # chosen with --threshold 0.7); so is the layout, the store's (an sglc1 store read as sglc2)
        remembered = ("top_n", "beta", "threshold", "layout")
        kept = {key: deployment["parameters"][key] for key in remembered if key in deployment["parameters"]}
        assert set(kept.values()) <= {None}, f"{name}: {kept}"
        # every path comes from definitions.paths, the one place the docs say to edit (trial: the
        # ingest and score deployments kept /data/... after the paths at the top were changed)
        for key in {"source", "workdir", "store", "out"} & set(deployment["parameters"]):
            assert deployment["parameters"][key] in document["definitions"]["paths"].values(), (name, key)
    paths = document["definitions"]["paths"]
    assert paths["store"] == paths["workdir"] + "/store.zarr"
    nightly = deployments["lenshunt-nightly"]
    assert nightly["schedules"] == [{"cron": "0 2 * * *", "timezone": "UTC", "active": True}]
    make_schedule(cron=nightly["schedules"][0]["cron"])  # a valid cron for Prefect


def test_schedules_are_validated():
    assert make_schedule(interval=30).interval.total_seconds() == 30
    assert make_schedule(cron="0 2 * * *", timezone="Europe/Paris").timezone == "Europe/Paris"
    with pytest.raises(ServeError, match="exactly one of --cron"):
        make_schedule()
    with pytest.raises(ServeError, match="exactly one of --cron"):
        make_schedule(cron="0 2 * * *", interval=60)
    with pytest.raises(ServeError, match="number of seconds, at least 1"):
        make_schedule(interval=0)
    with pytest.raises(ServeError, match="invalid --cron"):
        make_schedule(cron="61 * * * *")


def test_run_parameters_are_absolute_and_complete(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parameters = run_parameters("in", "work", model="bundle", top_n=6)
    assert parameters["source"] == str(tmp_path / "in") and parameters["workdir"] == str(tmp_path / "work")
    assert parameters["model"] == str(tmp_path / "bundle")
    assert "catalog" not in parameters and "n_workers" not in parameters  # None: the flow's default
    accepted = set(flow_of("flows.run.run_flow").parameters.properties)
    assert set(parameters) <= accepted


def test_serve_command_line():
    parser = build_parser()
    args = parser.parse_args(["serve", "--source", "s", "--workdir", "w", "--cron", "0 2 * * *"])
    assert (args.cron, args.interval, args.name, args.limit) == ("0 2 * * *", None, "lenshunt-nightly", 1)
    with pytest.raises(SystemExit):  # a schedule is required, and only one
        parser.parse_args(["serve", "--source", "s", "--workdir", "w"])
    with pytest.raises(SystemExit):
        parser.parse_args(
            ["serve", "--source", "s", "--workdir", "w", "--cron", "* * * * *", "--interval", "5"]
        )


def test_serve_refuses_a_missing_source(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    parameters = run_parameters(tmp_path / "absent", tmp_path / "work")
    with (
        temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}),
        pytest.raises(ServeError, match="is not a directory"),
    ):
        serve_run_flow(parameters, interval=60)


def test_serve_needs_a_prefect_server(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        pytest.raises(ServeError, match="PREFECT_API_URL is not set"),
    ):
        serve_run_flow(run_parameters(tmp_path, tmp_path / "work"), interval=60)


# --- a real server, a served schedule --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """The few REST calls the test makes to the Prefect server."""

    def __init__(self, url: str) -> None:
        self.url = url

    #: Answers that mean "busy, ask again": Prefect's own client retries these (prefect.client.base),
    #: e.g. the SQLite-backed server answers 503 while another writer holds the database.
    TRANSIENT = frozenset({408, 429, 502, 503})
    #: Seconds a call waits for an answer.
    timeout = 30.0

    def call(self, method: str, path: str, body: dict | None = None, attempts: int = 6):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(attempts):
            request = urllib.request.Request(
                f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                return json.loads(payload) if payload else None
            except urllib.error.HTTPError as error:
                if error.code not in self.TRANSIENT or attempt == attempts - 1:
                    raise
                time.sleep(min(2**attempt, 10))
            except (TimeoutError, urllib.error.URLError) as error:  # a slow server: a read is asked again
                timed_out = isinstance(error, TimeoutError) or isinstance(error.reason, TimeoutError)
                # (fresh clone under load: a filter timed out at 30 s just after the server's SIGCONT)
                if not (timed_out and self.reads(method, path)) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def reads(method: str, path: str) -> bool:
        """Whether a call only reads (asked again after a timeout: a write may have been done)."""
        return method == "GET" or path.endswith("/filter")

    def healthy(self) -> bool:
        try:
            return self.call("GET", "/health") is True
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def deployment_id(self, name: str) -> str | None:
        found = self.call("POST", "/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
        return found[0]["id"] if found else None

    def flow_runs(self, deployment: str) -> list[dict]:
        body = {
            "deployments": {"name": {"any_": [deployment]}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 200,
        }
        return self.call("POST", "/flow_runs/filter", body)


def terminate(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, bounded wait, then SIGKILL of the process group (it was started in its own session)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@contextlib.contextmanager
def started_prefect_server(home: Path):
    """``prefect server start`` on 127.0.0.1 with PREFECT_HOME ``home`` (SQLite); yields (api, env,
    server process), and stops it (if still running) on the way out."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        # Create runs for a resumed schedule within seconds, not a minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = Api(url)
    try:
        deadline = time.monotonic() + 180
        while not api.healthy():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prefect server did not start:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield api, env, server
    finally:
        terminate(server, timeout=30)
        log.close()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """``prefect server start`` on 127.0.0.1 with its own PREFECT_HOME (SQLite); yields (api, env)."""
    with started_prefect_server(tmp_path_factory.mktemp("prefect-home")) as (api, env, _):
        yield api, env


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def catalog_rows(workdir: Path) -> pd.DataFrame:
    return (
        read_catalog(paths.catalog_parquet(workdir / "scores"))
        .sort_values("object_id")
        .reset_index(drop=True)
    )


def part_files(workdir: Path) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in paths.score_parts_dir(workdir / "scores").iterdir()
    }


def add_cutouts_atomically(source: Path, staging: Path, object_ids: list[int]) -> None:
    """Write new objects (and the full label catalog) elsewhere, then rename them into ``source``."""
    write_set(EUCLID, staging, object_ids, {i: LABELS[i] for i in FIRST + object_ids})
    for object_id in object_ids:
        for band in EUCLID.bands:
            target = band_file(EUCLID, source, object_id, band.name)
            os.replace(band_file(EUCLID, staging, object_id, band.name), target)
    catalog_name = EUCLID.catalog.pattern.replace("*", "test")
    os.replace(staging / catalog_name, source / catalog_name)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, dask_client) -> Path:
    from bundles import make_bundle

    from pipeline.store import ingest

    root = tmp_path_factory.mktemp("schedule-bundle")
    source = write_set(EUCLID, root / "src", FIRST[:16], {i: LABELS[i] for i in FIRST[:16]})
    ingest(EUCLID, source, root / "train.zarr", dask_client)
    return make_bundle(root / "train.zarr", root / "bundle")


@pytest.mark.slow
def test_served_interval_schedule_is_incremental(prefect_server, small_bundle, tmp_path):
    api, env = prefect_server
    source = write_set(EUCLID, tmp_path / "incoming", FIRST, {i: LABELS[i] for i in FIRST})
    workdir = tmp_path / "work"
    serve_log = tmp_path / "serve.log"
    command = [
        sys.executable, "-m", "flows.cli", "serve",
        "--source", str(source), "--workdir", str(workdir), "--interval", "10", "--name", DEPLOYMENT,
        "--model", str(small_bundle), "--workers", "1", "--batch-size", "8", "--top-n", "6",
    ]  # fmt: skip
    with serve_log.open("w") as log:
        serve = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def logs() -> str:
            return f"--- serve log (tail) ---\n{serve_log.read_text(errors='replace')[-6000:]}"

        def completed_after(after: datetime | None):
            runs = api.flow_runs(DEPLOYMENT)
            bad = [r for r in runs if r["state_type"] in {"FAILED", "CRASHED"}]
            if bad:
                pytest.fail(f"flow run {bad[0]['name']} ended {bad[0]['state_type']}\n{logs()}")
            if serve.poll() is not None:
                pytest.fail(f"lenshunt serve exited with {serve.returncode}\n{logs()}")
            done = [
                r
                for r in runs
                if r["state_type"] == "COMPLETED" and (after is None or parse_time(r["start_time"]) > after)
            ]
            return done[0] if done else None

        # 1. The first firing ingests and scores the 20 cutouts and writes the catalog.
        first = wait_for("the first scheduled run", lambda: completed_after(None), 420, logs)
        rows_first = catalog_rows(workdir)
        assert rows_first["object_id"].tolist() == FIRST
        assert rows_first["score"].notna().all()
        assert rows_first["label"].tolist() == [LABELS[i] for i in FIRST]
        assert (workdir / "scores" / "report" / "report.html").exists()
        for catalog in (paths.catalog_parquet(workdir / "scores"), paths.catalog_fits(workdir / "scores")):
            extras = read_provenance(catalog).extras  # the firing that wrote it (ops trial: unnamed)
            assert extras["prefect_flow_run_id"] == first["id"], extras
            assert extras["prefect_flow_run"] == first["name"], extras
            assert extras["prefect_deployment"] == f"lenshunt-run/{DEPLOYMENT}", extras
        parts_first = part_files(workdir)

        # 2. A later firing finds nothing new: no catalog row and no score part changes.
        second = wait_for(
            "a second scheduled run", lambda: completed_after(parse_time(first["end_time"])), 300, logs
        )
        assert parse_time(second["start_time"]) > parse_time(first["end_time"])
        pd.testing.assert_frame_equal(catalog_rows(workdir), rows_first)
        assert part_files(workdir) == parts_first

        # 3. New cutouts arrive while the schedule is paused (an operator's delivery window), so no
        #    run can see half-copied objects; the next firing after the resume appends exactly them.
        deployment_id = api.deployment_id(DEPLOYMENT)
        api.call("POST", f"/deployments/{deployment_id}/pause_deployment")
        # Pausing keeps the runs the scheduler made ahead; the runner would go on starting them one
        # after another as they fall due (runs take about as long as the interval here), so the
        # operator also drops the ones not started yet.
        for run in api.flow_runs(DEPLOYMENT):
            if run["state_type"] == "SCHEDULED":
                api.call("DELETE", f"/flow_runs/{run['id']}")

        def quiet():
            busy = {"RUNNING", "PENDING", "SCHEDULED", "CANCELLING"}
            return not any(r["state_type"] in busy for r in api.flow_runs(DEPLOYMENT))

        wait_for("the runs in flight to finish", quiet, 300, logs)
        add_cutouts_atomically(source, tmp_path / "staging", LATER)
        resumed_at = datetime.now(UTC)
        api.call("POST", f"/deployments/{deployment_id}/resume_deployment")
        wait_for("a run after the new cutouts", lambda: completed_after(resumed_at), 420, logs)

        rows_third = catalog_rows(workdir)
        assert rows_third["object_id"].tolist() == FIRST + LATER
        new_rows = rows_third[rows_third["object_id"].isin(LATER)]
        assert new_rows["score"].notna().all()
        assert new_rows["label"].tolist() == [LABELS[i] for i in LATER]
        # The first 20 rows keep everything but their rank (ranks are recomputed over all rows).
        old_rows = rows_third[rows_third["object_id"].isin(FIRST)].reset_index(drop=True)
        pd.testing.assert_frame_equal(old_rows.drop(columns="rank"), rows_first.drop(columns="rank"))
        assert sorted(rows_third["rank"]) == list(range(1, len(FIRST) + len(LATER) + 1))
        parts_third = part_files(workdir)
        assert {k: v for k, v in parts_third.items() if k in parts_first} == parts_first
        assert len(parts_third) > len(parts_first)  # the new objects were scored alone
    finally:
        # Stop serve before the server (it cannot shut down cleanly once the server is gone).
        terminate(serve, timeout=60)
    assert serve.returncode is not None
    # a stopped serve pauses its schedule (trial: Prefect's serve said so, and left it active)
    deployment = api.call("GET", f"/deployments/{api.deployment_id(DEPLOYMENT)}")
    assert not any(schedule["active"] for schedule in deployment["schedules"]), logs()
    assert f"the schedule of lenshunt-run/{DEPLOYMENT} is paused" in serve_log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_stopped_serve_cancels_its_run_in_flight_and_the_next_run_resumes(
    prefect_server, small_bundle, tmp_path, stop
):
    """Trial: a Ctrl-C or SIGTERM of ``serve`` waited for the run in flight to finish (hours), and
    printed "coroutine 'Runner.astop' was never awaited" and two tracebacks. Now the run is
    cancelled within seconds (state Cancelled, no process of it left), the schedule is paused, one
    line says so, and a later ``lenshunt run`` on the same work directory completes it. A Ctrl-C
    is sent as a terminal does, to the whole process group (the run's processes get it too)."""
    import psutil

    api, env = prefect_server
    name = f"test-stop-{stop}"
    source = write_set(EUCLID, tmp_path / "incoming", FIRST, {i: LABELS[i] for i in FIRST})
    workdir = tmp_path / "work"
    serve_log = tmp_path / "serve.log"
    command = [
        sys.executable, "-m", "flows.cli", "serve",
        "--source", str(source), "--workdir", str(workdir), "--interval", "5", "--name", name,
        "--model", str(small_bundle), "--workers", "1", "--batch-size", "8",
    ]  # fmt: skip
    with serve_log.open("w") as log:
        serve = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,  # a pytest started in the background passes SIG_IGN down
        )

    def logs() -> str:
        return f"--- serve log (tail) ---\n{serve_log.read_text(errors='replace')[-6000:]}"

    try:

        def running():
            if serve.poll() is not None:
                pytest.fail(f"lenshunt serve exited with {serve.returncode}\n{logs()}")
            return [r for r in api.flow_runs(name) if r["state_type"] == "RUNNING"]

        # The first firing's run (ingest, score and report of 20 cutouts on a fresh local cluster:
        # longer than the half second this poll takes to see it running).
        run = wait_for("a run in flight", running, 300, logs, interval=0.25)[0]
        time.sleep(1.0)  # its Dask cluster starting: child processes to end too
        processes = psutil.Process(serve.pid).children(recursive=True)
        stopped_at = time.monotonic()
        if stop == "ctrl-c":
            os.killpg(serve.pid, signal.SIGINT)
        else:
            serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=90)  # Prefect's cancel gives the run 30 s before its SIGKILL
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within 90 s of its {stop}\n{logs()}")
        took = time.monotonic() - stopped_at
    finally:
        terminate(serve, timeout=60)
    text = serve_log.read_text(errors="replace")
    assert serve.returncode == (130 if stop == "ctrl-c" else 143), logs()
    assert took < 60, f"{took:.0f} s\n{logs()}"
    states = {r["id"]: r["state_type"] for r in api.flow_runs(name)}
    assert states[run["id"]] == "CANCELLED", logs()
    assert not [r for r in states.values() if r in {"RUNNING", "PENDING", "CANCELLING", "CRASHED"}], states
    left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"{left}\n{logs()}"
    assert "Traceback" not in text and "never awaited" not in text, logs()
    # Prefect's records of the cancel ("Crash detected!" at ERROR, "Finished in state Running()"):
    # the stop line says it (a review)
    assert "ERROR" not in text and "Crash" not in text and "state Running()" not in text, logs()
    stop_lines = [line for line in text.splitlines() if line.startswith("lenshunt serve: stopped")]
    assert len(stop_lines) == 1, logs()
    assert f"flow run '{run['name']}' was cancelled: the next firing resumes it" in stop_lines[0]
    assert f"the schedule of lenshunt-run/{name} is paused" in stop_lines[0]
    schedules = api.call("GET", f"/deployments/{api.deployment_id(name)}")["schedules"]
    assert schedules and not any(schedule["active"] for schedule in schedules)  # as `schedule ls` shows

    # The cancelled run resumes: a later run on the same work directory completes it.
    resumed = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(source), str(workdir),
         "--model", str(small_bundle), "--workers", "1", "--batch-size", "8"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = catalog_rows(workdir)
    assert rows["object_id"].tolist() == FIRST
    assert rows["score"].notna().all()


def test_serve_refuses_what_every_firing_would_refuse_before_it_serves(tmp_path, monkeypatch, capsys):
    """Trial: a missing --model or --layout was served, and every firing failed after its ingest."""
    import flows.serve
    from flows.cli import main

    def served(*args, **kwargs):
        raise AssertionError("served")

    monkeypatch.setattr(flows.serve, "serve_run_flow", served)
    source = tmp_path / "incoming"
    source.mkdir()  # empty yet: cutouts arrive later
    common = ["serve", "--source", str(source), "--workdir", str(tmp_path / "work"), "--interval", "30"]
    cases = [
        (["--model", str(tmp_path / "nonexist")], f"model bundle {tmp_path / 'nonexist'} does not exist"),
        (["--layout", "nolayout"], "nolayout"),
        (["--known-lenses", str(tmp_path / "absent.csv")], "absent.csv"),
        (["--source", str(tmp_path / "absent")], "absent"),
    ]
    for extra, expected in cases:
        assert main([*common, *extra]) == 1, extra
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("lenshunt serve: error: "), lines
        assert expected in lines[0], lines
    assert not (tmp_path / "work").exists()
    with pytest.raises(AssertionError, match="served"):  # the checks pass: it serves
        main(common)
