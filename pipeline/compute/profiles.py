"""Batch-system profiles: the validated entries of ``deploy/jobqueue.yaml``.

See :mod:`pipeline.compute.jobqueue` for what a profile is and how it becomes a Dask cluster; this module
only finds, reads and validates profiles.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ClusterError, validation_reason
from schemas.path_text import PathText

if TYPE_CHECKING:
    pass

CONFIG_ENV = "LENSHUNT_JOBQUEUE_CONFIG"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "deploy" / "jobqueue.yaml"
KINDS = ("slurm", "pbs")
SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub"}
CPU_WORKER_COMMAND = "distributed.cli.dask_worker"
# ``python -m dask cuda worker``: dask-cuda registers ``cuda`` as a ``dask`` CLI entry point; its own
# ``dask_cuda.cli`` module has no ``__main__`` guard, so ``python -m dask_cuda.cli`` would do nothing.
GPU_WORKER_COMMAND = "dask cuda worker"
PLACEHOLDER_SCHEDULER = "tcp://<scheduler-address>:8786"

_WALLTIME = re.compile(r"^(\d+-)?\d{1,4}:\d{2}:\d{2}$")


class ProfileError(ClusterError, ValueError):
    """A jobqueue profile is missing, unknown or invalid."""


class Profile(BaseModel):
    """One batch-job profile: the resources of a job and how its Dask workers start.

    Attributes
    ----------
    kind
        ``slurm`` or ``pbs``.
    name
        Profile name within its kind (``gpu`` in ``slurm:gpu``).
    description
        One line shown in listings.
    queue
        Queue (PBS) or partition (SLURM); the YAML may say ``partition`` or ``queue``.
    account
        Account or project charged (``-A``).
    cores
        CPU cores per job.
    memory
        Memory per job (Dask syntax: ``"64GB"``, ``"500 GiB"``).
    processes
        Dask worker processes per job for CPU profiles (default: one). GPU profiles start one
        worker per GPU and must leave it unset (or equal to ``gpus_per_job``).
    threads_per_worker
        Threads of each worker (default: ``cores // workers``). GPU profiles usually want 1: one
        batch at a time per GPU, the job's other cores feed it.
    walltime
        ``HH:MM:SS`` or ``D-HH:MM:SS``.
    gpus_per_job
        GPUs per job; > 0 makes this a GPU profile (dask-cuda workers, one per GPU).
    jobs
        Jobs to submit when the caller does not say how many.
    job_name
        Name of the worker jobs in the queue.
    job_extra_directives
        More ``#SBATCH`` / ``#PBS`` lines, without the prefix (e.g. ``--constraint=a100``).
    job_directives_skip
        Substrings: generated directives containing one are dropped (e.g. ``--mem`` on sites
        that refuse it).
    worker_extra_args
        More arguments for the worker command (e.g. ``--lifetime 55m``).
    job_script_prologue
        Shell lines run before the worker starts (``module load cuda``, ``source venv/bin/activate``).
    interface
        Network interface of the scheduler and workers (``ib0``, ``lo`` for one machine).
    local_directory
        Worker scratch directory on the compute node (e.g. ``$TMPDIR``; expanded by the job's shell).
    log_directory
        Where job stdout/stderr go (created; ``~`` and ``$VARS`` expanded here).
    python
        Python executable on the compute nodes (default: this interpreter).
    death_timeout
        Seconds a worker waits for an unreachable scheduler before it exits.
    dashboard_address
        Address of the Dask dashboard of the scheduler (``:8787``; ``null`` for none).
    resource_spec
        PBS only: the ``-l`` resource list (default built from cores, memory and GPUs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["slurm", "pbs"]
    name: str
    description: str = ""
    queue: str | None = Field(default=None, validation_alias=AliasChoices("queue", "partition"))
    account: str | None = None
    cores: int = Field(ge=1)
    memory: str
    processes: int | None = Field(default=None, ge=1)
    threads_per_worker: int | None = Field(default=None, ge=1)
    walltime: str = "01:00:00"
    gpus_per_job: int = Field(default=0, ge=0)
    jobs: int = Field(default=1, ge=1)
    job_name: str = "lenshunt-worker"
    job_extra_directives: list[str] = Field(default_factory=list)
    job_directives_skip: list[str] = Field(default_factory=list)
    worker_extra_args: list[str] = Field(default_factory=list)
    job_script_prologue: list[str] = Field(default_factory=list)
    interface: str | None = None
    local_directory: PathText | None = None
    log_directory: PathText | None = None
    python: PathText | None = None
    death_timeout: int = Field(default=60, ge=1)
    dashboard_address: str | None = ":8787"
    resource_spec: str | None = None

    @field_validator("memory")
    @classmethod
    def _memory_parses(cls, value: str) -> str:
        from dask.utils import parse_bytes

        try:
            if parse_bytes(value) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError(f"memory {value!r} is not a size such as '16GB' or '500 GiB'") from None
        return value

    @field_validator("walltime")
    @classmethod
    def _walltime_format(cls, value: str) -> str:
        if not _WALLTIME.match(value):
            raise ValueError(f"walltime {value!r} must be HH:MM:SS or D-HH:MM:SS")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.gpus_per_job and self.processes not in (None, self.gpus_per_job):
            raise ValueError(
                f"processes={self.processes} with gpus_per_job={self.gpus_per_job}: dask-cuda starts one "
                "worker per GPU; leave processes unset"
            )
        if self.resource_spec is not None and self.kind != "pbs":
            raise ValueError("resource_spec is a PBS setting; use job_extra_directives for SLURM")
        if self.threads_per_worker and self.threads_per_worker * self.n_workers_per_job > self.cores:
            raise ValueError(
                f"threads_per_worker={self.threads_per_worker} x {self.n_workers_per_job} workers exceeds "
                f"cores={self.cores}"
            )
        if self.n_workers_per_job > self.cores:
            raise ValueError(
                f"{self.n_workers_per_job} workers per job need at least as many cores (cores={self.cores})"
            )
        return self

    @property
    def id(self) -> str:
        """``kind:name``, as given to ``--cluster``."""
        return f"{self.kind}:{self.name}"

    @property
    def uses_gpus(self) -> bool:
        return self.gpus_per_job > 0

    @property
    def n_workers_per_job(self) -> int:
        """Dask workers each job starts: one per GPU, else ``processes`` (default 1)."""
        return self.gpus_per_job or self.processes or 1

    @property
    def worker_threads(self) -> int:
        return self.threads_per_worker or max(1, self.cores // self.n_workers_per_job)

    @property
    def worker_memory_bytes(self) -> int:
        """Memory limit of each worker: the job's memory shared among its workers."""
        from dask.utils import parse_bytes

        return parse_bytes(self.memory) // self.n_workers_per_job

    @property
    def worker_command(self) -> str:
        """Module run with ``python -m`` to start the job's workers."""
        return GPU_WORKER_COMMAND if self.uses_gpus else CPU_WORKER_COMMAND


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The profiles file in use: ``path``, else ``$LENSHUNT_JOBQUEUE_CONFIG``, else the shipped one."""
    chosen = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    chosen = Path(chosen).expanduser()
    if not chosen.is_file():
        raise ProfileError(
            f"jobqueue profiles file {chosen} does not exist. Point ${CONFIG_ENV} at a copy of "
            "deploy/jobqueue.yaml (from the lenshunt source tree) adapted to your site."
        )
    return chosen


def load_profiles(path: str | os.PathLike[str] | None = None) -> dict[str, Profile]:
    """Every profile of the file, keyed ``kind:name`` (plus ``kind:default`` aliases).

    Raises
    ------
    ProfileError
        When the file is not a mapping of kinds to profiles or a profile is invalid.
    """
    source = config_path(path)
    try:
        document = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ProfileError(f"{source} must be a mapping with 'slurm' and/or 'pbs' sections")
    unknown = (
        set(document) - {*KINDS, "defaults", "version"} - {k for k in document if str(k).startswith("x-")}
    )
    if unknown:
        raise ProfileError(
            f"{source}: unknown top-level keys {sorted(unknown)}; expected {', '.join(KINDS)}, defaults "
            "(and x-* keys for YAML anchors)"
        )
    profiles: dict[str, Profile] = {}
    for kind in KINDS:
        section = document.get(kind) or {}
        if not isinstance(section, dict):
            raise ProfileError(f"{source}: section {kind!r} must map profile names to settings")
        for name, settings in section.items():
            if not isinstance(settings, dict):
                raise ProfileError(f"{source}: profile {kind}:{name} must be a mapping of settings")
            try:
                profiles[f"{kind}:{name}"] = Profile(kind=kind, name=str(name), **settings)
            except ValidationError as exc:
                raise ProfileError(f"{source}: profile {kind}:{name} is invalid:\n{_errors(exc)}") from exc
    defaults = document.get("defaults") or {}
    for kind, name in defaults.items():
        if f"{kind}:{name}" not in profiles:
            raise ProfileError(f"{source}: defaults.{kind} names {kind}:{name}, which is not defined")
        profiles.setdefault(f"{kind}:default", profiles[f"{kind}:{name}"])
    return profiles


def load_profile(kind: str, name: str, path: str | os.PathLike[str] | None = None) -> Profile:
    """The profile ``kind:name`` (``name`` ``"default"`` or empty: the file's default for ``kind``).

    Raises
    ------
    ProfileError
        Unknown kind or name (the message suggests the nearest names), or an invalid file.
    """
    if kind not in KINDS:
        raise ProfileError(f"unknown batch system {kind!r}: use one of {', '.join(KINDS)}")
    profiles = load_profiles(path)
    key = f"{kind}:{name or 'default'}"
    if key in profiles:
        return profiles[key]
    names = sorted(k for k in profiles if not k.endswith(":default"))
    # Near misses among this kind's names, then the same name under another batch system.
    own = [k.split(":", 1)[1] for k in names if k.startswith(f"{kind}:")]
    hint = [f"{kind}:{n}" for n in difflib.get_close_matches(name or "default", own, n=3, cutoff=0.6)]
    hint += [k for k in names if k.split(":", 1)[1] == name and k not in hint]
    suggestion = f" Did you mean {' or '.join(hint)}?" if hint else ""
    raise ProfileError(
        f"no jobqueue profile {key} in {config_path(path)}.{suggestion} "
        f"Defined: {', '.join(names) or 'none'}."
    )


_DEFAULTED_VAR = re.compile(r"\$\{(\w+):?-([^}]*)\}")


def make_log_directory(profile: Profile) -> Path | None:
    """Make the profile's ``log_directory`` (its jobs' output folder: SLURM fails a job whose output
    folder is missing, writing no log); returns it where this call made it, else None."""
    if not profile.log_directory:
        return None
    folder = Path(_expand(profile.log_directory))
    if folder.is_dir():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _expand(value: str | None) -> str | None:
    """``~``, ``$VAR``, ``${VAR}`` and the shell's ``${VAR:-default}``, as the job's shell would."""
    if not value:
        return value
    value = _DEFAULTED_VAR.sub(lambda m: os.environ.get(m.group(1)) or m.group(2), value)
    return os.path.expandvars(os.path.expanduser(value))


def _errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "profile"
        message = validation_reason(error)
        if error["type"] == "extra_forbidden":
            fields = [f for f in Profile.model_fields if f not in {"kind", "name"}] + ["partition"]
            near = difflib.get_close_matches(str(error["loc"][-1]), fields, n=1)
            message = "unknown setting" + (f" (did you mean {near[0]}?)" if near else "")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
