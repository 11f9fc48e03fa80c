"""Worker jobs that the batch system refuses, and the profile a plain ``--cluster slurm`` uses.

No batch system is needed: ``sbatch``, ``qsub`` and their cancel commands are small scripts on PATH
that answer as the real ones do (test_slurm.py submits to a real SLURM).
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

import pytest

from pipeline.compute import cluster as cluster_module
from pipeline.compute import connect
from pipeline.compute.jobqueue import CONFIG_ENV, make_jobqueue_cluster
from pipeline.errors import ClusterError

PROFILES = """
defaults:
  slurm: small
  pbs: small
slurm:
  small:
    partition: cpu
    cores: 1
    memory: 1GB
    dashboard_address: "127.0.0.1:0"
    interface: lo
    log_directory: {logs}
pbs:
  small:
    queue: workq
    cores: 1
    memory: 1GB
    dashboard_address: "127.0.0.1:0"
    interface: lo
    log_directory: {logs}
"""


@pytest.fixture
def batch(tmp_path, monkeypatch):
    """A profiles file and a bin folder on PATH for the fake batch commands; returns a writer of them."""
    config = tmp_path / "jobqueue.yaml"
    config.write_text(PROFILES.format(logs=tmp_path / "logs"))
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv("HOME", str(tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    calls = tmp_path / "calls"

    def write(name: str, body: str) -> Path:
        (bin_dir / name).write_text(f"#!/bin/sh\necho {name} >> {calls}\n{body}\n")
        (bin_dir / name).chmod(0o755)
        return calls

    for cancel in ("scancel", "qdel"):
        write(cancel, "exit 0")
    return write


SBATCH_REFUSES = (
    "echo 'sbatch: error: invalid partition specified: cpu' >&2\n"
    "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1"
)


def test_a_job_that_sbatch_refuses_is_one_line_at_once(batch, caplog, monkeypatch):
    """Trial: the shipped slurm:cpu on a SLURM without partition cpu printed ~250 lines of "Task
    exception was never retrieved" tracebacks, resubmitted, then waited 10 min for a worker."""
    monkeypatch.setattr(cluster_module, "WORKER_WAIT_S", 2.0)  # the wait it must not need
    calls = batch("sbatch", SBATCH_REFUSES)
    caplog.set_level(logging.ERROR)
    for cluster in ("slurm:small", "slurm"):
        with pytest.raises(ClusterError) as refused, connect(cluster):
            pass
        message = str(refused.value)
        assert message.startswith(
            "sbatch refused the worker job of --cluster slurm:small: invalid partition specified: cpu "
            "(edit `partition` of profile small in "
        ), message
        assert "\n" not in message
    gc.collect()
    time.sleep(0.5)  # a submission still running in the background would call sbatch again
    assert calls.read_text().split().count("sbatch") == 2  # once per connect, never resubmitted
    assert "never retrieved" not in caplog.text and "Traceback" not in caplog.text


def test_a_job_that_qsub_refuses_names_the_queue_setting(batch):
    batch("qsub", "echo 'qsub: Unknown queue' >&2\nexit 170")
    with pytest.raises(ClusterError, match=r"^qsub refused the worker job of --cluster pbs:small: Unknown "):
        make_jobqueue_cluster("pbs", "small")
    with pytest.raises(ClusterError, match=r"Unknown queue \(edit `queue` of profile small in "):
        make_jobqueue_cluster("pbs", "small")


def test_a_refusal_after_jobs_were_queued_cancels_them(batch, tmp_path):
    """The second job over a per-user limit: the first, queued, is cancelled (no job is left behind)."""
    first = tmp_path / "first"
    counter = batch(
        "sbatch",
        f"if mkdir {first} 2>/dev/null; then echo 'Submitted batch job 4242'; exit 0; fi\n"
        "echo 'sbatch: error: QOSMaxSubmitJobPerUserLimit' >&2\n"
        "echo 'sbatch: error: Batch job submission failed: Job violates accounting/QOS policy' >&2\nexit 1",
    )
    with pytest.raises(ClusterError, match=r"QOSMaxSubmitJobPerUserLimit \(edit `job_extra_directives"):
        make_jobqueue_cluster("slurm", "small", n_workers=2)
    assert counter.read_text().split().count("scancel") == 1


def test_plain_slurm_names_the_profile_it_resolved_to(batch, monkeypatch):
    """Trial: plain --cluster slurm said "the slurm jobs of profile default", the file's default
    being another profile."""
    batch("sbatch", "echo 'Submitted batch job 4242'")
    monkeypatch.setattr(cluster_module, "WORKER_WAIT_S", 0.5)
    with pytest.raises(ClusterError) as waited, connect("slurm"):
        pass
    assert "the slurm jobs of profile slurm:small in 0.5 s" in str(waited.value)
