"""Jobqueue profiles: loading, validation, near-miss suggestions, generated job and batch scripts.

The job scripts are checked the way dask-jobqueue's own CI checks them on its leg without a batch
system: build the real cluster object (its scheduler runs in-process on loopback) and read
``cluster.job_script()``; nothing is submitted. The batch templates are rendered and parsed by bash;
a slow test runs the PBS template end to end with the environment PBS would give it (there is no
PBS server here; the SLURM template runs under real SLURM in test_slurm.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.compute.jobqueue import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    RUN_TEMPLATES,
    ProfileError,
    cluster_kwargs,
    load_profile,
    load_profiles,
    make_jobqueue_cluster,
    render_job_script,
    render_run_script,
)
from pipeline.errors import ClusterError

SHIPPED = ("slurm:cpu", "slurm:gpu", "slurm:localhost", "pbs:cpu", "pbs:gpu")


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temporary HOME, so that '~/lenshunt-logs' of the shipped profiles lands in tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return tmp_path


def test_shipped_profiles_load_and_validate(home):
    profiles = load_profiles()
    assert set(SHIPPED) <= set(profiles)
    for key in SHIPPED:
        profile = profiles[key]
        assert profile.id == key
        assert profile.description
    assert profiles["slurm:gpu"].gpus_per_job == 4 and profiles["slurm:gpu"].uses_gpus
    assert profiles["pbs:gpu"].gpus_per_job == 4
    assert not profiles["slurm:cpu"].uses_gpus
    assert profiles["slurm:gpu"].n_workers_per_job == 4 and profiles["slurm:gpu"].worker_threads == 1
    assert profiles["slurm:cpu"].n_workers_per_job == 8 and profiles["slurm:cpu"].worker_threads == 4
    localhost = profiles["slurm:localhost"]
    assert localhost.interface == "lo" and localhost.queue is None and localhost.cores == 1


def test_default_profile_and_partition_alias(home):
    assert load_profile("slurm", "default") == load_profile("slurm", "cpu")
    assert load_profile("pbs", "") == load_profile("pbs", "cpu")
    assert load_profile("slurm", "gpu").queue == "gpu"  # written as `partition:` in the YAML


def test_gpus_per_job_is_what_cluster_connect_reads(home):
    from pipeline.compute.cluster import profile_uses_gpus

    assert profile_uses_gpus("slurm", "gpu") and profile_uses_gpus("pbs", "gpu")
    assert not profile_uses_gpus("slurm", "localhost")


@pytest.mark.parametrize(
    ("kind", "name", "suggested"),
    [
        ("slurm", "gpus", "slurm:gpu"),
        ("slurm", "locahost", "slurm:localhost"),
        ("pbs", "localhost", "slurm:localhost"),
        ("pbs", "cpus", "pbs:cpu"),
    ],
)
def test_unknown_profile_suggests_near_misses(home, kind, name, suggested):
    with pytest.raises(ProfileError, match="Did you mean") as info:
        load_profile(kind, name)
    message = str(info.value)
    assert f"no jobqueue profile {kind}:{name}" in message
    assert suggested in message.split("Did you mean", 1)[1].split("?")[0]
    assert "Defined: pbs:cpu, pbs:gpu, slurm:cpu, slurm:gpu, slurm:localhost" in message


def test_unknown_batch_system_and_far_names(home):
    with pytest.raises(ProfileError, match="unknown batch system 'sge'"):
        load_profile("sge", "cpu")
    with pytest.raises(ProfileError) as info:
        load_profile("slurm", "quantum")
    assert "Did you mean" not in str(info.value)
    assert isinstance(info.value, ClusterError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("cores: 4\n    memroy: 8GB\n    memory: 8GB", "memroy: unknown setting (did you mean memory?)"),
        ("cores: 4\n    memory: lots", "memory 'lots' is not a size"),
        ("cores: 4\n    memory: 8GB\n    walltime: 3h", "walltime '3h' must be HH:MM:SS"),
        ("cores: 0\n    memory: 8GB", "cores: 0 is not >= 1"),
        ("cores: 8\n    memory: 8GB\n    gpus_per_job: 4\n    processes: 2", "leave processes unset"),
        ("cores: 2\n    memory: 8GB\n    gpus_per_job: 4", "4 workers per job need at least as many cores"),
        ("cores: 4\n    memory: 8GB\n    resource_spec: select=1", "resource_spec is a PBS setting"),
    ],
)
def test_invalid_profiles_say_what_is_wrong(tmp_path, settings, expected):
    config = write_config(tmp_path / "jq.yaml", f"slurm:\n  bad:\n    {settings}\n")
    with pytest.raises(ProfileError) as info:
        load_profile("slurm", "bad", config)
    assert "profile slurm:bad is invalid" in str(info.value)
    assert expected in str(info.value)


def test_invalid_files(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "missing.yaml")
    with pytest.raises(ProfileError, match="unknown top-level keys"):
        load_profiles(write_config(tmp_path / "a.yaml", "sge:\n  cpu: {cores: 1, memory: 1GB}\n"))
    with pytest.raises(ProfileError, match=r"defaults\.slurm names slurm:big"):
        load_profiles(write_config(tmp_path / "b.yaml", "defaults: {slurm: big}\nslurm: {}\n"))
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profiles(write_config(tmp_path / "c.yaml", "slurm: [unclosed\n"))


def test_config_from_environment_variable(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "site.yaml",
        "x-common: &common {cores: 2, memory: 4GB}\nslurm:\n  site:\n    <<: *common\n    partition: short\n",
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    profile = load_profile("slurm", "site")
    assert (profile.cores, profile.memory, profile.queue) == (2, "4GB", "short")
    with pytest.raises(ProfileError, match=str(config)):
        load_profile("slurm", "cpu")  # the shipped file is not consulted any more
    assert load_profile("slurm", "cpu", DEFAULT_CONFIG).cores == 32


def job_script_of_real_cluster(kind: str, name: str) -> str:
    """``cluster.job_script()`` of the real dask-jobqueue cluster for a profile (nothing submitted)."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    kwargs = cluster_kwargs(load_profile(kind, name))
    kwargs["scheduler_options"] = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    cluster_cls = SLURMCluster if kind == "slurm" else PBSCluster
    with cluster_cls(**kwargs) as cluster:
        return cluster.job_script()


def directives(script: str, prefix: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith(prefix)]


def test_slurm_cpu_job_script(home):
    script = job_script_of_real_cluster("slurm", "cpu")
    header = directives(script, "#SBATCH")
    for expected in (
        "#SBATCH -J lenshunt-worker",
        "#SBATCH -p cpu",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=32",
    ):
        assert expected in header
    assert "#SBATCH --mem=122071M" in header  # 128 GB in SLURM's MiB, rounded up
    assert "#SBATCH -t 04:00:00" in header
    assert f"#SBATCH -o {home}/lenshunt-logs/slurm/lenshunt-worker-%J.out" in header
    assert not any("gres" in line for line in header)
    assert 'source "${LENSHUNT_VENV:-$HOME/lenshunt/.venv}/bin/activate"' in script
    command = script.strip().splitlines()[-1]
    assert command.startswith("python -m distributed.cli.dask_worker tcp://127.0.0.1:")
    for expected in ("--nthreads 4", "--nworkers 8", "--memory-limit 14.90GiB", "--nanny", "--lifetime 230m"):
        assert expected in command
    assert "--local-directory $TMPDIR" in command


def test_slurm_gpu_job_script_starts_one_dask_cuda_worker_per_gpu(home):
    script = job_script_of_real_cluster("slurm", "gpu")
    header = directives(script, "#SBATCH")
    assert "#SBATCH --gres=gpu:4" in header
    assert "#SBATCH -p gpu" in header and "#SBATCH --cpus-per-task=32" in header
    assert "#SBATCH --mem=228882M" in header and "#SBATCH -t 06:00:00" in header
    command = script.strip().splitlines()[-1]
    assert command.startswith("python -m dask cuda worker tcp://127.0.0.1:")
    assert "--nthreads 1" in command and "--memory-limit 55.88GiB" in command  # 240 GB / 4 GPUs
    assert "--nworkers" not in command and "--nanny" not in command  # not options of dask cuda worker
    assert "JAX_COMPILATION_CACHE_DIR" in script


def test_pbs_job_scripts(home):
    cpu = directives(job_script_of_real_cluster("pbs", "cpu"), "#PBS")
    assert "#PBS -q workq" in cpu and "#PBS -l walltime=04:00:00" in cpu
    assert "#PBS -l select=1:ncpus=32:mem=122071mb" in cpu
    gpu_script = job_script_of_real_cluster("pbs", "gpu")
    assert "#PBS -l select=1:ncpus=32:ngpus=4:mem=228882mb" in directives(gpu_script, "#PBS")
    assert gpu_script.strip().splitlines()[-1].startswith("python -m dask cuda worker tcp://127.0.0.1:")


@pytest.mark.parametrize("profile", SHIPPED)
def test_render_job_script_matches_the_real_cluster(home, profile):
    kind, name = profile.split(":")
    rendered = render_job_script(kind, name)
    real = job_script_of_real_cluster(kind, name)
    prefix = "#SBATCH" if kind == "slurm" else "#PBS"
    assert directives(rendered, prefix) == directives(real, prefix)
    assert "tcp://<scheduler-address>:8786" in rendered
    assert bash_syntax_ok(rendered)


def test_render_job_script_has_no_side_effects(tmp_path, monkeypatch):
    logs = tmp_path / "logs-not-created"
    config = write_config(
        tmp_path / "jq.yaml", f"slurm:\n  x:\n    cores: 1\n    memory: 1GB\n    log_directory: {logs}\n"
    )
    script = render_job_script("slurm", "x", config)
    assert f"#SBATCH -e {logs}/lenshunt-worker-%J.err" in script
    assert not logs.exists()


def test_gpu_directive_given_by_the_site_is_not_doubled(tmp_path):
    config = write_config(
        tmp_path / "jq.yaml",
        "slurm:\n  g:\n    cores: 8\n    memory: 64GB\n    gpus_per_job: 2\n"
        "    job_extra_directives: ['--gpus-per-node=2', '--constraint=h100']\n"
        "    job_directives_skip: ['--mem']\n",
    )
    header = directives(render_job_script("slurm", "g", config), "#SBATCH")
    assert "#SBATCH --gpus-per-node=2" in header and "#SBATCH --constraint=h100" in header
    assert not any("--gres" in line for line in header)
    assert not any("--mem" in line for line in header)


def test_make_jobqueue_cluster_needs_the_submit_command(home, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ClusterError, match="sbatch, which is not on PATH"):
        make_jobqueue_cluster("slurm", "localhost")
    with pytest.raises(ClusterError, match="qsub"):
        make_jobqueue_cluster("pbs", "cpu")


def bash_syntax_ok(script: str) -> bool:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not available")
    result = subprocess.run([bash, "-n"], input=script, text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    return True


@pytest.mark.parametrize("kind", ["slurm", "pbs"])
def test_run_templates_are_valid_bash_as_shipped(kind):
    assert bash_syntax_ok(RUN_TEMPLATES[kind].read_text())


def test_sbatch_template_renders_for_gpu_nodes(home):
    script = render_run_script("slurm", "gpu", nodes=2)
    header = directives(script, "#SBATCH")
    assert header[:2] == ["#SBATCH --job-name=lenshunt-run", "#SBATCH --nodes=2"]
    for expected in ("--ntasks-per-node=1", "--cpus-per-task=32", "--gres=gpu:4", "--time=06:00:00"):
        assert f"#SBATCH {expected}" in header
    assert "#SBATCH --partition=gpu" in header
    assert ': "${LENSHUNT_WORKER_KIND:=cuda}"' in script
    assert ': "${LENSHUNT_WORKER_THREADS:=1}"' in script
    # 240 GB less 1 GiB + 5 % for the scheduler and lenshunt, over 4 GPU workers
    assert ': "${LENSHUNT_WORKER_MEMORY:=52.84GiB}"' in script
    assert script.count("# >>> lenshunt directives") == 1 and script.count("# <<< lenshunt directives") == 1
    # sbatch reads directives only before the first command: all of them come first.
    lines = [line for line in script.splitlines() if line and not line.startswith("#")]
    first_command = script.splitlines().index(lines[0])
    assert all(i < first_command for i, line in enumerate(script.splitlines()) if line.startswith("#SBATCH"))
    assert bash_syntax_ok(script)


def test_sbatch_template_renders_for_the_localhost_cluster(home):
    script = render_run_script("slurm", "localhost")
    assert "#SBATCH --nodes=1" in script and "#SBATCH --cpus-per-task=1" in script
    assert not any("gres" in line for line in directives(script, "#SBATCH"))
    assert ': "${LENSHUNT_WORKER_KIND:=cpu}"' in script
    assert ': "${LENSHUNT_INTERFACE:=lo}"' in script
    assert f': "${{LENSHUNT_PYTHON:={sys.executable}}}"' in script
    assert bash_syntax_ok(script)


def test_run_scripts_leave_memory_for_the_scheduler_and_lenshunt(home, tmp_path):
    """Trial: slurm:localhost rendered ``--mem=2862M`` and gave its one worker all of it (2.79 GiB),
    though the scheduler and lenshunt run in the same allocation."""
    script = render_run_script("slurm", "localhost", nodes=1)
    assert "#SBATCH --mem=4096M" in script
    assert ': "${LENSHUNT_WORKER_MEMORY:=2.80GiB}"' in script  # 4 GiB less 1 GiB + 5 %
    assert "# Worker memory: the node's 4GiB less 1.20 GiB for the Dask scheduler and lenshunt" in script
    assert ': "${LENSHUNT_WORKER_MEMORY:=14.03GiB}"' in render_run_script("pbs", "cpu")  # 8 workers
    config = write_config(tmp_path / "small.yaml", "slurm:\n  small:\n    cores: 2\n    memory: 1.5GiB\n")
    with pytest.raises(ProfileError, match=r"memory 1.5GiB leaves .* per worker beside the 1.07 GiB"):
        render_run_script("slurm", "small", path=config)


def test_pbs_template_renders(home):
    script = render_run_script("pbs", "gpu", nodes=3)
    header = directives(script, "#PBS")
    assert "#PBS -l select=3:mpiprocs=1:ncpus=32:ngpus=4:mem=228882mb" in header
    assert "#PBS -q gpu" in header and "#PBS -l walltime=06:00:00" in header
    assert ': "${LENSHUNT_WORKER_KIND:=cuda}"' in script
    assert bash_syntax_ok(script)


def test_template_without_block_is_refused(home, tmp_path):
    template = write_config(tmp_path / "t.sbatch", "#!/bin/bash\necho hi\n")
    with pytest.raises(ProfileError, match="no '# >>> lenshunt directives'"):
        render_run_script("slurm", "cpu", template=template)


def test_module_cli(home):
    run = [sys.executable, "-m", "pipeline.compute.jobqueue"]
    listing = subprocess.run([*run, "list"], capture_output=True, text=True, check=True).stdout
    assert all(profile in listing for profile in SHIPPED)
    shown = subprocess.run([*run, "show", "slurm:gpu"], capture_output=True, text=True, check=True).stdout
    assert "#SBATCH --gres=gpu:4" in shown
    rendered = subprocess.run([*run, "run-script", "pbs:cpu"], capture_output=True, text=True, check=True)
    assert "#PBS -l select=4:mpiprocs=1:ncpus=32" in rendered.stdout
    # the log folder the script names is made (trial: SLURM failed the job, JobLaunchFailure, no log)
    logs = home / "lenshunt-logs" / "pbs"
    assert logs.is_dir() and f"-o {logs}/" in rendered.stdout
    assert rendered.stderr == f"made {logs}, the log folder the script's output directive names\n"
    again = subprocess.run([*run, "run-script", "pbs:cpu"], capture_output=True, text=True, check=True)
    assert again.stderr == ""  # there already: nothing said
    failed = subprocess.run([*run, "show", "slurm:gpus"], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "Did you mean slurm:gpu" in failed.stderr


@pytest.mark.slow
def test_pbs_template_runs_an_ingest_given_a_pbs_environment(home, tmp_path):
    """No PBS server here: run the rendered PBS script with the environment PBS would give it
    (PBS_JOBID, PBS_NODEFILE listing this host, PBS_O_WORKDIR) and a loopback-only profile."""
    from cutouts import write_set

    from pipeline.store import open_store
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    ids = list(range(400000, 400006))
    source = write_set(layout, tmp_path / "src", ids, dict.fromkeys(ids, 0))
    config = write_config(
        tmp_path / "jq.yaml",
        "pbs:\n  here:\n    cores: 1\n    memory: 2GB\n    interface: lo\n"
        "    dashboard_address: 127.0.0.1:0\n",
    )
    script = tmp_path / "job.pbs"
    script.write_text(render_run_script("pbs", "here", nodes=1, path=config))
    nodefile = tmp_path / "nodefile"
    nodefile.write_text(f"{socket.gethostname()}\n")
    store = tmp_path / "store.zarr"
    env = {
        **os.environ,
        "PBS_JOBID": "4242.pbs-server",
        "PBS_NODEFILE": str(nodefile),
        "PBS_O_WORKDIR": str(tmp_path),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "LENSHUNT_COMMAND": "ingest",
        "LENSHUNT_ARGS": f"{source} {store}",
        "LENSHUNT_WAIT_S": "120",
    }
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        ["bash", str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "1 worker(s) ready" in output and "lenshunt exited with 0" in output
    np.testing.assert_array_equal(open_store(store)["object_id"].values, ids)
    assert (tmp_path / "lenshunt-dask-4242" / "start-worker.sh").exists()


def run_pbs_script(tmp_path: Path, hosts: list[str], path: str, **settings: str) -> tuple[int, str]:
    """Run the rendered PBS script with bash and the environment PBS would give it (no PBS here),
    PATH set to ``path``; its exit status and output."""
    config = write_config(
        tmp_path / "jq.yaml",
        "pbs:\n  here:\n    cores: 1\n    memory: 2GB\n    interface: lo\n"
        "    dashboard_address: 127.0.0.1:0\n",
    )
    script = tmp_path / "job.pbs"
    script.write_text(render_run_script("pbs", "here", nodes=len(hosts), path=config))
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("".join(f"{host}\n" for host in hosts))
    env = {
        **os.environ,
        "PATH": path,
        "PBS_JOBID": "4343.pbs-server",
        "PBS_NODEFILE": str(nodefile),
        "PBS_O_WORKDIR": str(tmp_path),
        "LENSHUNT_COMMAND": "ingest",
        "LENSHUNT_ARGS": f"{tmp_path / 'src'} {tmp_path / 'store.zarr'}",
        "LENSHUNT_WAIT_S": "300",
        **settings,
    }
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    return done.returncode, done.stdout + done.stderr


SYSTEM_PATH = "/usr/bin:/bin"
"""The system's commands only: no launcher of a virtual environment, no PBS commands."""


@pytest.mark.slow
def test_a_pbs_script_whose_worker_launcher_dies_fails_at_once_naming_dask_cuda(home, tmp_path):
    """Gap: the SLURM script failed at once when its launcher died (`dask cuda worker` without dask-cuda:
    "No such command 'cuda'"); the PBS script waited LENSHUNT_WAIT_S for workers that never came."""
    import importlib.util
    import time

    assert importlib.util.find_spec("dask_cuda") is None, "needs an environment without dask-cuda"
    assert shutil.which("dask-cuda-worker", path=SYSTEM_PATH) is None
    started = time.monotonic()
    rc, output = run_pbs_script(tmp_path, [socket.gethostname()], SYSTEM_PATH, LENSHUNT_WORKER_KIND="cuda")
    assert time.monotonic() - started < 120, output  # not the 300 s wait
    assert rc == 1, output
    assert (
        f"the worker launcher (on {socket.gethostname()}, log workers-0.log) exited with 2 before 1 "
        "worker(s) joined:"
    ) in output, output
    assert "No such command 'cuda'" in output, output
    assert (
        "LENSHUNT_WORKER_KIND=cuda (`dask cuda worker`) needs dask-cuda and a CUDA GPU on every node: "
        "install the extra with `pip install 'lenshunt[cuda]'` there, or set LENSHUNT_WORKER_KIND=cpu"
    ) in output, output
    assert "done (exit 1)" in output and "lenshunt exited" not in output, output


def test_a_pbs_script_without_its_remote_shell_fails_at_once_naming_it(home, tmp_path):
    """The other nodes' workers start through LENSHUNT_REMOTE_SHELL (pbs_tmrsh): without it on PATH
    the job fails before it starts anything, naming it, instead of waiting for their workers."""
    assert shutil.which("pbs_tmrsh", path=SYSTEM_PATH) is None
    rc, output = run_pbs_script(tmp_path, [socket.gethostname(), "other-node-of-the-job"], SYSTEM_PATH)
    assert rc == 1, output
    assert (
        "pbs_tmrsh, the remote shell that starts the workers on the other nodes, is not on PATH "
        f"({SYSTEM_PATH}): set LENSHUNT_REMOTE_SHELL (pbs_tmrsh of PBS Pro/OpenPBS, or ssh where TM is "
        "not available)"
    ) in output, output
    assert "starting" not in output and "lenshunt exited" not in output, output
    assert not (tmp_path / "lenshunt-dask-4343" / "scheduler.json").exists()
