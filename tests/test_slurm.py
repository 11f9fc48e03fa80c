"""On a real SLURM (single node, ``scripts/slurm-localhost.sh start``): jobqueue workers are SLURM
jobs, lenshunt ingests and scores through ``connect("slurm:localhost")``, and the whole-pipeline
sbatch template runs to completion as one batch job.

Run with ``pytest -m slurm`` after starting SLURM (CI does both). Without a SLURM controller these
tests fail with the command that starts one, rather than skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bundles import make_bundle, predict_in_process
from cutouts import write_set
from waiting import wait_for

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.compute import connect
from pipeline.compute.jobqueue import load_profile, render_run_script
from pipeline.scoring import score_store
from pipeline.store import ingest, open_store
from schemas.layout import load_layout

pytestmark = pytest.mark.slurm

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(200000, 200020))
LABELS = {i: int(i % 3 == 0) for i in IDS}
JOB_TIMEOUT_S = 420


@pytest.fixture(scope="module", autouse=True)
def slurm_controller():
    """Fail early, with the fix, when no SLURM controller answers."""
    if shutil.which("sbatch") is None:
        pytest.fail("sbatch not found: install SLURM (scripts/install-slurm.sh) and start it")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    if "is UP" not in ping.stdout:
        pytest.fail(f"no SLURM controller ({ping.stdout.strip()}): run `scripts/slurm-localhost.sh start`")


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory) -> Path:
    return write_set(EUCLID, tmp_path_factory.mktemp("slurm") / "src", IDS, LABELS)


@pytest.fixture(scope="module")
def bundle(cutouts, tmp_path_factory, dask_client) -> Path:
    """A small real model bundle, its recipe fitted on the set (built on the local test cluster)."""
    root = tmp_path_factory.mktemp("slurm-bundle")
    ingest(EUCLID, cutouts, root / "train.zarr", dask_client)
    return make_bundle(root / "train.zarr", root / "bundle")


def squeue_jobs() -> dict[str, tuple[str, str]]:
    """Queued or running jobs: id -> (name, state)."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True, check=True
    ).stdout
    return {i: (name, state) for i, name, state in (line.split("|") for line in out.split())}


def slurm_job_ids(client) -> dict[str, str | None]:
    """SLURM_JOB_ID as each Dask worker process sees it."""
    return client.run(lambda: os.environ.get("SLURM_JOB_ID"))


def test_jobqueue_workers_are_slurm_jobs():
    profile = load_profile("slurm", "localhost")
    with connect("slurm:localhost", n_workers=1) as client:
        job_ids = slurm_job_ids(client)
        assert len(job_ids) == 1
        (job_id,) = job_ids.values()
        assert job_id and job_id.isdigit()
        name, state = squeue_jobs()[job_id]
        assert (name, state) == (profile.job_name, "RUNNING")
        (address,) = job_ids
        assert address.startswith("tcp://127.0.0.1:")  # interface lo: loopback only
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    # Closing the cluster cancels its jobs.
    wait_for(f"job {job_id} to leave the queue", lambda: job_id not in squeue_jobs(), 60, interval=0.5)


def test_a_profile_that_sbatch_refuses_is_one_error_at_once(monkeypatch, tmp_path):
    """Trial: the shipped slurm:cpu names partition cpu, which this SLURM lacks: ~250 lines of
    tracebacks, resubmissions, then a 10-min wait for a worker of a job never queued."""
    from pipeline.compute import cluster as cluster_module
    from pipeline.errors import ClusterError

    monkeypatch.setenv("HOME", str(tmp_path))  # the profile's log_directory ~/lenshunt-logs
    monkeypatch.setattr(cluster_module, "WORKER_WAIT_S", 5.0)  # the wait it must not need
    before = set(squeue_jobs())
    with pytest.raises(ClusterError) as refused, connect("slurm:cpu", n_workers=1):
        pass
    assert str(refused.value).startswith(
        "sbatch refused the worker job of --cluster slurm:cpu: invalid partition specified: cpu (edit "
        "`partition` of profile cpu in "
    )
    assert set(squeue_jobs()) == before


def test_ingest_and_score_on_slurm_workers(cutouts, bundle, tmp_path):
    store, out = tmp_path / "store.zarr", tmp_path / "run"
    with connect("slurm:localhost", n_workers=1) as client:
        assert all(job_id and job_id.isdigit() for job_id in slurm_job_ids(client).values())
        report = ingest(EUCLID, cutouts, store, client)
        result = score_store(store, bundle, out, client, batch_size=8)
        # Every worker that ran the stages is a SLURM job.
        assert all(job_id and job_id.isdigit() for job_id in slurm_job_ids(client).values())
    assert report.n_added == len(IDS)
    np.testing.assert_array_equal(open_store(store)["object_id"].values, IDS)
    assert result.n_objects == result.n_scored == len(IDS)
    catalog = read_catalog(paths.catalog_parquet(out))
    np.testing.assert_array_equal(catalog["object_id"], IDS)
    np.testing.assert_array_equal(catalog["label"], [LABELS[i] for i in IDS])
    np.testing.assert_allclose(catalog["score"], predict_in_process(bundle, store), atol=1e-5)


def job_info(job_id: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (empty once SLURM has forgotten the job)."""
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        return {}
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout))


TERMINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
}


def ended_job(job_id: str, log: Path) -> tuple[dict[str, str], str]:
    """The batch job's ``scontrol`` record once it ended (cancelled after JOB_TIMEOUT_S) and its log."""

    def finished() -> dict[str, str] | None:
        info = job_info(job_id)
        if not info:  # forgotten already (MinJobAge): the log tells how it ended
            return {"JobState": "UNKNOWN", "ExitCode": "?"}
        return info if info.get("JobState") in TERMINAL else None

    try:
        info = wait_for(f"batch job {job_id}", finished, JOB_TIMEOUT_S)
    except BaseException:
        subprocess.run(["scancel", job_id], check=False)
        raise
    return info, log.read_text() if log.exists() else "(no job log)"


def test_sbatch_template_runs_the_pipeline_as_one_job(cutouts, bundle, tmp_path):
    script = tmp_path / "lenshunt-run.sbatch"
    script.write_text(render_run_script("slurm", "localhost", nodes=1))
    workdir, dask_dir, log = tmp_path / "work", tmp_path / "dask", tmp_path / "job.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),  # ephemeral Prefect API inside the job
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LENSHUNT_DASK_DIR": str(dask_dir),
        "LENSHUNT_WAIT_S": "180",
    }
    env.pop("PREFECT_API_URL", None)
    submit = subprocess.run(
        [
            "sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={log}", "--job-name=lenshunt-test-run",
            str(script),
            "run", str(cutouts), str(workdir), "--model", str(bundle), "--batch-size", "8", "--top-n", "6",
        ],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    job_id = submit.stdout.strip().split(";")[0]
    assert job_id.isdigit(), submit.stdout
    info, output = ended_job(job_id, log)
    assert info["JobState"] in {"COMPLETED", "UNKNOWN"}, output
    assert info["ExitCode"] in {"0:0", "?"}, output
    assert "lenshunt exited with 0" in output and "done (exit 0)" in output, output
    assert re.search(r"1 worker\(s\) ready", output), output
    assert (dask_dir / "scheduler.log").exists() and (dask_dir / "workers-0.log").exists()
    # The pipeline's outputs: the store, the catalog with every object, the report.
    catalog = read_catalog(paths.catalog_parquet(workdir / "scores"))
    np.testing.assert_array_equal(catalog["object_id"], IDS)
    assert catalog["score"].notna().all()
    assert paths.catalog_fits(workdir / "scores").exists()
    assert (workdir / "scores" / "report" / "report.html").exists()
    # Nothing is left running: the job's scheduler and workers were shut down with it.
    assert job_id not in squeue_jobs()


def test_a_worker_job_cancelled_mid_stage_is_replaced_as_said_also_in_a_stage_joined_by_address(
    monkeypatch, caplog
):
    """Trial: a scancelled worker job was never replaced while the warning said "the cluster asks for
    new jobs"; in ``lenshunt run`` (stages join the run's cluster by address) it told to start a
    `dask worker` by hand."""
    import logging
    import time

    from pipeline.compute import cluster as cluster_module
    from pipeline.compute import results_as_completed, workers

    monkeypatch.setattr(workers, "NO_WORKER_WARN_S", 1.0)
    monkeypatch.setattr(workers, "POLL_S", 0.2)
    monkeypatch.setattr(cluster_module, "WORKER_WAIT_S", 120.0)  # the give-up a fix never reaches
    with (
        connect("slurm:localhost", n_workers=1) as owner,
        connect(scheduler=owner.scheduler.address) as client,  # as a stage of `lenshunt run`
        caplog.at_level(logging.INFO, logger="lenshunt"),
    ):
        (first_job,) = slurm_job_ids(client).values()
        futures = [client.submit(time.sleep, 0.5, key=f"nap-{i}") for i in range(6)]
        finished = results_as_completed(client, futures, "score regions")
        next(finished)
        subprocess.run(["scancel", first_job], check=True)
        assert len(list(finished)) == 5  # done by the job asked for in its place
        (second_job,) = slurm_job_ids(client).values()
        assert second_job != first_job and squeue_jobs()[second_job][1] == "RUNNING"
    said = [r.getMessage() for r in caplog.records if r.name == "lenshunt"]
    (warning,) = [m for m in said if "no worker is left" in m]
    assert warning.startswith("score regions: no worker is left in the batch jobs of the cluster (for ")
    assert "(the run asks the batch system for new jobs in place of those whose workers left" in warning
    assert "score regions: a worker joined again; going on" in said
    wait_for("the new job to leave the queue", lambda: second_job not in squeue_jobs(), 60, interval=0.5)


def test_a_worker_job_lost_while_others_run_is_replaced_and_no_object_is_lost_or_doubled(
    cutouts, bundle, dask_client, monkeypatch, caplog, tmp_path
):
    """Trial: a worker job scancelled while another job still ran was never replaced (the run only
    replaced jobs once no worker was left): the run should ask for a new job at once, the others
    going on, and Dask run the lost worker's task again, every object scored once."""
    import logging
    import threading

    from pipeline.compute import lostjobs, workers

    monkeypatch.setattr(workers, "POLL_S", 0.2)
    monkeypatch.setattr(lostjobs, "LOST_JOB_GRACE_S", 1.0)
    store, out = tmp_path / "store.zarr", tmp_path / "run"
    ingest(EUCLID, cutouts, store, dask_client, chunk_objects=2)  # 10 score tasks of 2 objects
    job_name = load_profile("slurm", "localhost").job_name
    cancelled: dict[str, object] = {}
    with (
        connect("slurm:localhost", n_workers=2) as client,
        caplog.at_level(logging.INFO, logger="lenshunt"),
    ):
        client.wait_for_workers(2, timeout=300)
        jobs = slurm_job_ids(client)  # worker address -> its job
        assert len(set(jobs.values())) == 2

        def cancel_a_busy_job() -> None:  # once a score task runs on a worker, scancel its job
            def busy() -> tuple[str, list] | None:
                doing = {w: keys for w, keys in client.processing().items() if keys}
                return next(iter(doing.items()), None)

            address, keys = wait_for("a score task on a worker", busy, 300, interval=0.05)
            cancelled.update(job=jobs[address], keys=keys)
            subprocess.run(["scancel", jobs[address]], check=True)

        canceller = threading.Thread(target=cancel_a_busy_job)
        canceller.start()
        result = score_store(store, bundle, out, client, batch_size=2)
        canceller.join()
        (other_job,) = set(jobs.values()) - {cancelled["job"]}
        assert squeue_jobs()[other_job][1] == "RUNNING"  # it went on
        new_jobs = {i for i, (name, _) in squeue_jobs().items() if name == job_name} - set(jobs.values())
        assert len(new_jobs) == 1  # the one asked for in place of the lost job, no more
    assert cancelled["keys"] and all(str(k).startswith("score_region_task") for k in cancelled["keys"])
    said = [r.getMessage() for r in caplog.records if r.name == "lenshunt"]
    (lost,) = [m for m in said if "was lost" in m]
    assert lost.startswith(f"score regions: batch job {cancelled['job']} (Dask worker "), lost
    assert "asked the batch system for a new job in its place (2 job(s) in all); the others go on" in lost
    assert not [m for m in said if "no worker is left" in m]
    # every object scored once: the lost worker's task ran again on the other
    assert result.n_objects == result.n_scored == len(IDS)
    catalog = read_catalog(paths.catalog_parquet(out))
    np.testing.assert_array_equal(catalog["object_id"], IDS)
    np.testing.assert_allclose(catalog["score"], predict_in_process(bundle, store), atol=1e-5)
    (new_job,) = new_jobs
    wait_for("the new job to leave the queue", lambda: new_job not in squeue_jobs(), 60, interval=0.5)


def test_a_stage_joining_its_runs_cluster_leaves_no_error_traceback(caplog):
    """Trial: every `lenshunt run --cluster slurm:*` logged the scheduler's ERROR ``unregister_worker_plugin
    ... KeyError: 'lenshunt-version-guard'``: the stage guarded the run's workers again and removed
    the guard, then the run removed it once more."""
    import logging

    with (
        caplog.at_level(logging.INFO),
        connect("slurm:localhost", n_workers=1) as owner,
    ):
        with connect(scheduler=owner.scheduler.address) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        assert owner.submit(sum, [3, 4]).result() == 7
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    guards = [
        r for r in caplog.records if "Registering Worker plugin lenshunt-version-guard" in r.getMessage()
    ]
    assert len(guards) == 1


def test_a_ctrl_c_of_a_slurm_run_stops_it_as_without_cluster(cutouts, bundle, dask_client, tmp_path):
    """Trial: SIGINT of ``lenshunt score --cluster slurm:...`` exited 0 with no line (dask-jobqueue's
    import set SIGINT to ``sys.exit()``), where a local run says ``stopped (SIGINT)`` and exits 130."""
    import signal
    import sys
    import time

    store, log = tmp_path / "store.zarr", tmp_path / "score.log"
    ingest(EUCLID, cutouts, store, dask_client)
    job_name = load_profile("slurm", "localhost").job_name
    before = set(squeue_jobs())
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    command = [
        sys.executable, "-m", "flows.cli", "score", str(store), "--out", str(tmp_path / "out"),
        "--model", str(bundle), "--cluster", "slurm:localhost", "--workers", "1", "--batch-size", "8",
    ]  # fmt: skip
    with log.open("w") as output:
        child = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            # a background job ignores SIGINT, and its children inherit that: a terminal's Ctrl-C
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:

        def worker_job() -> str | None:
            assert child.poll() is None, log.read_text()
            running = [
                i for i, (name, state) in squeue_jobs().items() if i not in before and name == job_name
            ]
            return running[0] if running and squeue_jobs()[running[0]][1] == "RUNNING" else None

        job_id = wait_for("the run's worker job", worker_job, 300, on_timeout=log.read_text, interval=0.5)
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        rc = child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = log.read_text()
    assert rc == 130, output
    assert "lenshunt score: stopped (SIGINT); " in output, output
    assert "system exit" not in output, output
    wait_for(f"job {job_id} to leave the queue", lambda: job_id not in squeue_jobs(), 60, interval=0.5)


def test_the_documented_run_script_runs_a_200_object_set_at_the_default_batch_size(tmp_path):
    """Trial: ``run-script slurm:localhost --nodes 1 > job.sbatch; sbatch job.sbatch run SRC WORK`` (the
    documented command, the shipped model, --batch-size 256) on 200 objects: its 1.65 GiB workers died
    over their memory limit."""
    ids = list(range(300000, 300200))
    source = write_set(EUCLID, tmp_path / "src", ids, {i: int(i % 4 == 0) for i in ids})
    script = tmp_path / "job.sbatch"
    script.write_text(render_run_script("slurm", "localhost", nodes=1))
    workdir, log = tmp_path / "work", tmp_path / "job.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "LENSHUNT_DASK_DIR": str(tmp_path / "dask"),
    }
    env.pop("PREFECT_API_URL", None)
    submit = subprocess.run(
        ["sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={log}", str(script), "run", str(source),
         str(workdir)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    info, output = ended_job(submit.stdout.strip().split(";")[0], log)
    assert "lenshunt exited with 0" in output, output
    assert info["ExitCode"] in {"0:0", "?"}, output
    catalog = read_catalog(paths.catalog_parquet(workdir / "scores"))
    assert len(catalog) == len(ids) and catalog["score"].notna().all()


def test_a_run_script_whose_worker_launcher_dies_fails_at_once_naming_dask_cuda(tmp_path):
    """Trial: LENSHUNT_WORKER_KIND=cuda (the template's default) on a node without dask-cuda: `dask cuda
    worker` died at once ("No such command 'cuda'"), and the job waited 600 s for workers."""
    import time

    script = tmp_path / "job.sbatch"
    script.write_text(render_run_script("slurm", "localhost", nodes=1))
    log = tmp_path / "job.log"
    env = {**os.environ, "LENSHUNT_WORKER_KIND": "cuda", "LENSHUNT_DASK_DIR": str(tmp_path / "dask")}
    submit = subprocess.run(
        ["sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={log}", str(script), "run", "src", "work"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    job_id = submit.stdout.strip().split(";")[0]
    started = time.monotonic()
    try:
        wait_for(f"batch job {job_id} to end", lambda: job_id not in squeue_jobs(), 120, interval=0.5)
    finally:
        subprocess.run(["scancel", job_id], check=False)
    assert time.monotonic() - started < 120
    output = log.read_text()
    assert "the worker launcher (srun) exited with 2 before 1 worker(s) joined:" in output, output
    assert "No such command 'cuda'" in output, output
    assert (
        "LENSHUNT_WORKER_KIND=cuda (`dask cuda worker`) needs dask-cuda and a CUDA GPU on every node: "
        "install the extra with `pip install 'lenshunt[cuda]'` there, or set LENSHUNT_WORKER_KIND=cpu"
    ) in output, output
    assert "done (exit 1)" in output, output
    assert "lenshunt exited" not in output, output


def test_a_slurm_task_whose_worker_died_names_the_profiles_file_in_use(monkeypatch, tmp_path):
    """Trial: the out-of-memory hint said "raise the profile's memory in deploy/jobqueue.yaml" while
    LENSHUNT_JOBQUEUE_CONFIG named another file."""
    import dask

    from pipeline.compute import results_as_completed
    from pipeline.compute.profiles import config_path
    from pipeline.errors import WorkersLostError

    site = tmp_path / "site-jobqueue.yaml"
    shutil.copy(config_path(), site)
    monkeypatch.setenv("LENSHUNT_JOBQUEUE_CONFIG", str(site))
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),  # the scheduler runs here
        connect("slurm:localhost", n_workers=1) as client,
        pytest.raises(WorkersLostError) as raised,
    ):
        list(results_as_completed(client, [client.submit(os._exit, 1, pure=False)], "score regions"))
    assert f"give each worker more memory (raise the profile's `memory` in {site}, shared by" in str(
        raised.value
    )


def test_an_ingest_on_slurm_workers_from_the_command_line(cutouts, tmp_path):
    """Helper's find: ``lenshunt ingest --cluster slurm:*`` starts its cluster in a thread (beside
    Prefect's start), where importing dask-jobqueue (which sets a SIGINT handler) raised ValueError
    "signal only works in main thread": the command failed as "a bug" before ingesting anything."""
    import sys

    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    command = [
        sys.executable, "-m", "flows.cli", "ingest", str(cutouts), str(tmp_path / "s.zarr"),
        "--layout", "euclid-sglc2", "--cluster", "slurm:localhost", "--workers", "1",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1], timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signal only works" not in done.stdout + done.stderr
    assert sorted(open_store(tmp_path / "s.zarr")["object_id"].values.tolist()) == sorted(IDS)
