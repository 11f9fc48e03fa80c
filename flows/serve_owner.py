"""One ``lenshunt serve`` per deployment and per work directory.

A second ``serve`` of the same ``--name`` silently took the first one over (new-user trial): making
its deployment replaced the parameters of the first (its next firing ran with the second one's
``--threshold``), and stopping the second paused the schedule the first still served, so the
first never fired again, without a word. :func:`check_not_served` refuses a second ``serve``
before it makes anything: one whose work directory another ``serve`` holds
(``WORKDIR/.lenshunt-serve.lock``, held for ``serve``'s lifetime and let go by the kernel however it
ends), or whose deployment another runner polled within :func:`recent_poll_s` seconds and did not
pause (a ``serve`` that stops pauses its schedule; one that was killed leaves it, and is taken for
gone once its last poll is that old).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

SERVE_LOCK = "serve"
"""The lock a ``serve`` holds on its work directory (:func:`pipeline.locking.output_lock`)."""

SERVE_BUSY = "stop that serve first (Ctrl-C or SIGTERM: it pauses its schedule), or serve another --workdir"
"""What a second ``serve`` of one work directory is told."""


def pause_command(full_name: str, schedule_ids: list[str] | None = None) -> str:
    """The Prefect CLI command that pauses the schedule of deployment ``full_name``.

    Prefect 3's ``prefect deployment schedule pause`` wants the schedule's ID beside the deployment's
    name (trial: ``... pause 'lenshunt-run/lenshunt-nightly'`` said "Must provide deployment name and
    schedule ID, or use --all", and ``--all`` pauses every deployment's schedules). With the IDs known
    (the server answered), the commands themselves; without, how to get them.

    >>> pause_command("f/x", ["5f0c"])
    "`prefect deployment schedule pause 'f/x' 5f0c`"
    >>> for part in pause_command("f/x").split(", then "):
    ...     print(part)
    `prefect deployment schedule ls 'f/x'` (its schedule's ID)
    `prefect deployment schedule pause 'f/x' ID`
    """
    if schedule_ids:
        return " and ".join(
            f"`prefect deployment schedule pause '{full_name}' {id_}`" for id_ in schedule_ids
        )
    return (
        f"`prefect deployment schedule ls '{full_name}'` (its schedule's ID), then "
        f"`prefect deployment schedule pause '{full_name}' ID`"
    )


def resume_command(full_name: str, schedule_ids: list[str]) -> str:
    """The Prefect CLI commands that resume the schedules ``schedule_ids`` of deployment ``full_name``.

    >>> resume_command("f/x", ["5f0c"])
    "`prefect deployment schedule resume 'f/x' 5f0c`"
    """
    return pause_command(full_name, schedule_ids).replace("schedule pause", "schedule resume")


def pause_schedules(full_name: str, quiet: bool = False) -> str:
    """Pause (make inactive) the schedules of deployment ``full_name`` (``flow/deployment``), as
    ``prefect deployment schedule pause`` does; what was done, with the command that resumes them
    (``""`` where nothing was: no such deployment, or a server that does not answer, which a warning
    with the command to run says). Printed unless ``quiet`` (the stop line says it).

    Prefect 3's serve logs "Pausing all deployments" on a stop, but the schedule stayed active (trial:
    its runs piled up unexecuted). The deployment's own pause (``paused``), which serve used next,
    is a switch Prefect 3.8's CLI neither shows nor resumes: ``prefect deployment schedule ls`` said
    Active, and the ``resume`` it was told to run answered "already active" (trial). A serve of the
    deployment makes its schedule anew, active.
    """
    import sys

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(full_name)
            ids = [schedule.id for schedule in deployment.schedules or []]
            for id_ in active_schedule_ids(deployment):
                client.update_deployment_schedule(deployment.id, id_, active=False)
    except ObjectNotFound:  # never made (serve failed as it started), or deleted meanwhile
        return ""
    except Exception as exc:  # the server gone
        print(
            f"lenshunt serve: warning: could not pause the schedule of {full_name} ({type(exc).__name__}); "
            f"pause it with {pause_command(full_name)} or delete it",
            file=sys.stderr,
        )
        return ""
    said = f"the schedule of {full_name} is paused (serve again, or {resume_command(full_name, ids)})"
    if not quiet:
        print(f"lenshunt serve: stopped; {said}")
    return said


def is_paused(deployment: object) -> bool:
    """Whether ``deployment`` fires no more: paused itself (``lenshunt serve``'s stop, the UI's toggle) or
    every schedule of it inactive (:func:`pause_command`)."""
    schedules = list(getattr(deployment, "schedules", None) or [])
    return bool(getattr(deployment, "paused", False)) or (
        bool(schedules) and not any(getattr(schedule, "active", True) for schedule in schedules)
    )


def active_schedule_ids(deployment: object) -> list[str]:
    """The IDs of ``deployment``'s active schedules, as text."""
    return [str(s.id) for s in getattr(deployment, "schedules", None) or [] if getattr(s, "active", True)]


def recent_poll_s() -> float:
    """How recent a poll of a deployment means that a runner serves it (s): three of Prefect's
    runner poll intervals (``PREFECT_RUNNER_POLL_FREQUENCY``, 10 s by default), at least 30 s."""
    from prefect.settings import get_current_settings

    return max(3.0 * float(get_current_settings().runner.poll_frequency), 30.0)


def check_not_served(full_name: str, workdir: str | Path, now: datetime | None = None) -> None:
    """Refuse to serve ``full_name`` (``flow/deployment``) into ``workdir`` where another serves either.

    Raises
    ------
    pipeline.errors.OutputBusyError
        If another process holds ``workdir``'s serve lock.
    pipeline.errors.LenshuntError
        If the deployment exists, is not paused, and belongs to a work pool or was polled less than
        :func:`recent_poll_s` seconds before ``now`` (default: now, UTC).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from pipeline.errors import LenshuntError
    from pipeline.locking import check_not_busy

    check_not_busy(workdir, lock=SERVE_LOCK, advice=SERVE_BUSY)
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return
    pool = getattr(deployment, "work_pool_name", None)
    paused = is_paused(deployment)  # its schedules paused as said below count (trial: only the toggle did)
    if pool and not paused:  # trial: serve and `prefect deploy` took one name over in turn
        raise LenshuntError(
            f"deployment {full_name} belongs to work pool {pool!r} (made by `prefect deploy`, e.g. of "
            "deploy/prefect.yaml; that pool's workers run it): serving it here would replace it; serve "
            f"under another --name, or pause it first "
            f"({pause_command(full_name, active_schedule_ids(deployment)).replace('`', '')})"
        )
    polled = getattr(deployment, "last_polled", None)
    if paused or polled is None:
        return
    age = ((now or datetime.now(UTC)) - polled).total_seconds()
    recent = recent_poll_s()
    if age < recent:
        raise LenshuntError(
            f"deployment {full_name} is served already: another runner polled its runs {max(age, 0):.0f} s "
            f"ago (another `lenshunt serve --name {full_name.split('/', 1)[1]}`, maybe on another machine); "
            "serving it here too would replace its parameters and a stop would pause its schedule: stop "
            f"that serve first, or serve under another --name (a serve that was killed is taken for gone "
            f"{recent:.0f} s after its last poll)"
        )
