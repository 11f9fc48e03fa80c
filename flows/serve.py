"""``lenshunt serve``: run the pipeline on a schedule, served from this process (no work pool).

The run flow (:func:`flows.run.run_flow`) becomes a Prefect deployment with a cron or interval
schedule; this process polls the Prefect server for its scheduled runs and executes each one in
a subprocess. Every firing is incremental: new cutouts under ``--source`` are ingested and scored,
the catalog is rewritten with consistent ranks, and a firing that finds nothing new changes no
catalog row. At most ``--limit`` runs (default one) execute at once, so firings never overlap
on the same work directory.

Schedules need a Prefect server (``prefect server start``, or Prefect Cloud): point
``PREFECT_API_URL`` at it. Stop with Ctrl-C or SIGTERM: within seconds a run in flight is
cancelled (state Cancelled, its processes ended; the next firing resumes it, keeping finished
regions and scores), the schedule is paused, and one line says so (:mod:`flows.serve_runner`).
Stop ``serve`` before the server.

Examples
--------
::

    prefect server start --host 127.0.0.1 --port 4200 &
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    lenshunt serve --source /data/incoming --workdir /data/lenshunt-work --cron "0 2 * * *"
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from flows.common import add_cluster_arguments
from flows.preflight import existing_directory, positive_int
from flows.run import add_run_parameters, check_parameters, run_options
from flows.serve_orphans import orphan_age_s, orphans_crashed
from flows.serve_owner import SERVE_BUSY, SERVE_LOCK, check_not_served, pause_command, pause_schedules
from flows.serve_runner import ServedRunner, server_grace_s, slow_server_s
from flows.stops import stop_of
from pipeline.errors import LenshuntError
from pipeline.locking import output_lock

USES_PREFECT = False  # it needs a real server and checks PREFECT_API_URL itself
STARTS_FLOW_RUNS = True  # in subprocesses, whose local Dask workers leave a Ctrl-C to serve
JOINS_CLUSTER_NOW = False  # its scheduled runs join --scheduler later; the address is not tried now
LOADS_KERAS = True  # flows.cli checks the Keras backend first
HELP = "serve the run flow with a cron or interval schedule (needs a Prefect server)"
DEFAULT_NAME = "lenshunt-nightly"


class ServeError(LenshuntError, ValueError):
    """``lenshunt serve`` cannot start: bad schedule or no Prefect server configured."""


def run_parameters(
    source: str | Path,
    workdir: str | Path,
    *,
    layout: str | None = None,
    model: str | None = None,
    catalog: str | None = None,
    threshold: float | None = None,
    tta: bool = False,
    top_n: int | None = None,
    batch_size: int = 256,
    known_lenses: str | None = None,
    known_lens_radius: float | None = None,
    cluster: str = "local",
    n_workers: int | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Parameters of every scheduled run of the run flow (paths made absolute; ``None`` left out).

    Scheduled runs execute in a subprocess of ``serve``: relative paths would depend on its
    working directory, so they are resolved here.
    """
    parameters: dict[str, Any] = {
        "source": str(Path(source).expanduser().resolve()),
        "workdir": str(Path(workdir).expanduser().resolve()),
        "layout": layout,
        "model": str(Path(model).expanduser().resolve()) if model else None,
        "catalog": str(Path(catalog).expanduser().resolve()) if catalog else None,
        "threshold": threshold,
        "tta": tta,
        "top_n": top_n,
        "batch_size": batch_size,
        "known_lenses": _known_lenses_parameter(known_lenses),
        "known_lens_radius": known_lens_radius,
        "cluster": cluster,
        "n_workers": n_workers,
        "scheduler": scheduler,
    }
    return {key: value for key, value in parameters.items() if value is not None}


def _known_lenses_parameter(known_lenses: str | None) -> str | None:
    """'lenscat' and 'none' as given; a table path made absolute; None (each firing: the work directory's)."""
    if known_lenses is None or str(known_lenses).lower() in ("lenscat", "none"):
        return None if known_lenses is None else str(known_lenses).lower()
    return str(Path(known_lenses).expanduser().resolve())


def make_schedule(cron: str | None = None, interval: float | None = None, timezone: str | None = None):
    """A Prefect schedule from exactly one of ``cron`` and ``interval`` (seconds), in ``timezone`` (an
    IANA name; ``None``: UTC). Each wrong value is a :class:`ServeError` naming its option (trial: an
    unknown timezone was a 56-line pydantic traceback once the deployment was being made)."""
    import datetime
    import math
    import zoneinfo

    from prefect.schedules import Cron, Interval

    if (cron is None) == (interval is None):
        raise ServeError("give exactly one of --cron (e.g. '0 2 * * *') and --interval SECONDS")
    if timezone is not None and timezone not in zoneinfo.available_timezones():  # Prefect's own list
        raise ServeError(
            f"--timezone {timezone!r} is not an IANA timezone name (e.g. UTC, Europe/Paris, America/New_York)"
        )
    if interval is not None:
        if not math.isfinite(interval) or interval < 1:
            raise ServeError(f"--interval must be a number of seconds, at least 1, not {interval:g}")
        if interval > MAX_INTERVAL_S:
            raise ServeError(f"--interval {interval:g} is too long: at most {MAX_INTERVAL_S:g} s (100 years)")
        return Interval(datetime.timedelta(seconds=interval), timezone=timezone)
    try:
        schedule = Cron(cron, timezone=timezone)
    except ValueError as exc:
        raise ServeError(f"invalid --cron {cron!r}: {exc}") from exc
    _check_cron_fires(cron)
    return schedule


def _check_cron_fires(cron: str) -> None:
    """A :class:`ServeError` for a cron expression that Prefect takes but that is not what a user
    means (trial): six fields (Prefect's croniter reads the sixth as seconds: 60 runs a night), or
    a date that never comes (30 February: the server's scheduler then logs an error every loop)."""
    import datetime

    from prefect._vendor.croniter import croniter  # what Prefect's server schedules with

    fields = cron.split()
    if not cron.strip().startswith("@") and len(fields) != 5:
        raise ServeError(
            f"--cron {cron!r} has {len(fields)} fields: give the 5 of minute, hour, day of month, month "
            "and day of week (e.g. '0 2 * * *'); Prefect would read a sixth as seconds"
        )
    try:
        croniter(cron, datetime.datetime(2026, 1, 1)).get_next(datetime.datetime)
    except Exception as exc:  # croniter's CroniterBadDateError: no such date within its search
        raise ServeError(f"--cron {cron!r} never fires (no such date); check its day and month") from exc


MAX_INTERVAL_S = 100 * 365.25 * 86400
BANNED_IN_NAMES = "/%&><"
"""Characters Prefect refuses in a deployment name."""


def check_name(name: str) -> None:
    """A :class:`ServeError` for a deployment name Prefect would refuse (empty, or with ``/%&><``)."""
    if not name.strip():
        raise ServeError("--name must not be empty")
    banned = sorted({c for c in name if c in BANNED_IN_NAMES})
    if banned:
        raise ServeError(
            f"--name {name!r} has {' '.join(banned)}: Prefect refuses {BANNED_IN_NAMES} in names"
        )


def build_deployment(
    run_flow: Any, name: str, schedule: Any, parameters: dict[str, Any], paused: bool
) -> Any:
    """The deployment ``lenshunt-run/<name>`` as Prefect validates it, made here without a server.

    Anything Prefect refuses in it (a value the checks of :func:`make_schedule` and
    :func:`check_name` let through) is a one-line :class:`ServeError`, before anything is created.
    """
    import dataclasses

    from prefect.deployments.runner import EntrypointType

    check_name(name)
    try:
        return run_flow.to_deployment(
            name=name,
            # --paused: the schedule inactive, the switch a stop turns off too (pause_schedules)
            schedules=[dataclasses.replace(schedule, active=False) if paused else schedule],
            parameters=parameters,
            paused=False,
            description=(
                f"Incremental lenshunt run of {parameters['source']} into {parameters['workdir']} "
                "(ingest new cutouts, score them, rewrite the catalog, report)."
            ),
            tags=["lenshunt", "scheduled"],
            # Runs import flows.run by module name, so they work from any working directory.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise ServeError(f"Prefect refuses deployment lenshunt-run/{name}: {_first_error(exc)}") from None


def _first_error(exc: BaseException) -> str:
    """One line of ``exc``: a pydantic error's first field and message, else its text's first line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            first = errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            message = str(first.get("msg", "")).removeprefix("Value error, ")
            return f"{where}: {message}" if where else message
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_server() -> str:
    """The configured Prefect API URL; an error that says how to set one when there is none."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ServeError(
            "schedules need a Prefect server, and PREFECT_API_URL is not set. Start one "
            "(`prefect server start --host 127.0.0.1 --port 4200`) and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`, or log in to Prefect Cloud."
        )
    return url


def serve_run_flow(
    parameters: dict[str, Any],
    *,
    name: str = DEFAULT_NAME,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str | None = None,
    limit: int = 1,
    paused: bool = False,
) -> None:
    """Serve :func:`flows.run.run_flow` as deployment ``lenshunt-run/<name>``; blocks until stopped.

    Parameters
    ----------
    parameters
        Default parameters of each scheduled run (see :func:`run_parameters`); a run started by
        hand from the UI or ``prefect deployment run`` may override them.
    name
        Deployment name.
    cron, interval, timezone
        The schedule: a cron string or an interval in seconds, and an optional IANA timezone.
    limit
        Runs executing at once (1: firings queue up instead of overlapping on the work directory).
    paused
        Create the deployment with its schedule paused (inactive; resume it with
        ``prefect deployment schedule resume``, the UI's toggle, or a serve without it).
    """
    from flows.failures import quiet_resource_tracker
    from flows.prefect_api import check_api
    from flows.run import run_flow

    quiet_resource_tracker()  # the runs' semaphores, removed at exit: no warning after the last line
    schedule = make_schedule(cron, interval, timezone)
    server_grace_s()  # a wrong LENSHUNT_SERVE_SERVER_GRACE_S is refused before anything is made
    slow_server_s()  # and LENSHUNT_SERVE_SLOW_SERVER_S
    orphan_age_s()  # and LENSHUNT_SERVE_ORPHAN_AGE_S
    if not Path(parameters["source"]).is_dir():
        raise ServeError(f"--source {parameters['source']} is not a directory")
    deployment = build_deployment(run_flow, name, schedule, parameters, paused)
    url = check_server()
    check_api(url, fix=SERVER_FIX)  # trial: a server that was down printed a 112-line traceback
    full_name = f"lenshunt-run/{name}"
    check_not_served(full_name, parameters["workdir"])  # trial: a second serve took the first over
    with output_lock(parameters["workdir"], purpose=SERVE_LOCK, advice=SERVE_BUSY):
        _serve_deployment(deployment, full_name, url, limit, parameters, cron, interval, timezone)


def _serve_deployment(
    deployment: Any,
    full_name: str,
    url: str,
    limit: int,
    parameters: dict[str, Any],
    cron: str | None,
    interval: float | None,
    timezone: str | None,
) -> None:
    """Make the deployment, serve it until stopped, and pause its schedule at the end."""
    from flows.failures import PrefectApiError

    global _stopped
    _stopped = ""
    runner = None
    server_gone = False
    try:
        runner = _serve(deployment, full_name, url, limit)
        print(
            f"lenshunt serve: deployment {full_name} on {url}, schedule {_describe(cron, interval, timezone)}"
        )
        for line in orphans_crashed(runner.deployment_id):  # left Running while the server was away
            print(f"lenshunt serve: {line}")
        print(
            f"lenshunt serve: waiting for scheduled runs; start one now with `prefect deployment run "
            f"'{full_name}'`; Ctrl-C stops serve and cancels a run in flight"
        )
        runner.serve()
    except BaseException as exc:
        if (
            stop_of(exc) is not None
        ):  # Ctrl-C or SIGTERM, also wrapped (flows.stops): runs in flight cancelled
            _stopped = runner.stop_report if runner is not None else "no run was in flight"
            if "cancelled" in _stopped:
                _stopped += (
                    f": the next firing resumes it (finished regions and scores are kept in "
                    f"{parameters['workdir']}; `lenshunt run` there does too)"
                )
            raise
        if not isinstance(exc, PrefectApiError):
            raise
        server_gone = True  # the server went away while serving (flows.serve_runner)
        if runner is None:
            raise
        raise PrefectApiError(
            f"PREFECT_API_URL={url} stopped answering ({exc}): serve stopped ({runner.stop_report}); start "
            f"that server and serve again (serve did not pause the schedule of {full_name}: "
            f"{pause_command(full_name)} does)"
        ) from None
    finally:
        # nothing to pause where nothing was created, nor on a server that is gone
        made = runner is not None and not server_gone
        paused = pause_schedules(full_name, quiet=bool(_stopped)) if made else ""
        if paused and _stopped:
            _stopped += f"; {paused}"


SERVER_FIX = (
    "start that server (`prefect server start`) or point PREFECT_API_URL at one that runs; "
    "schedules need a server that stays up"
)


_stopped = ""
"""What the last stop of :func:`serve_run_flow` did, for :func:`interrupted` (the CLI's stop line)."""


def interrupted(args: argparse.Namespace) -> str:
    """The rest of the CLI's line after a stop (``lenshunt serve: stopped (SIGINT); ...``)."""
    return _stopped or "no run was in flight"


def _serve(deployment: Any, full_name: str, url: str, limit: int) -> ServedRunner:
    """Create ``deployment`` with a :class:`prefect.runner.Runner` (what ``Flow.serve`` does), not
    started yet: :meth:`ServedRunner.serve` runs it so that a stop cancels the runs in flight, and
    ends it with one line when the server stops answering. A server that fails meanwhile is one line
    too (:class:`~flows.failures.PrefectApiError`, or a :class:`ServeError` where it refuses it)."""
    import httpx
    from prefect.runner import Runner

    from flows.failures import PrefectApiError
    from flows.prefect_api import unanswered

    # Its schedules are paused by pause_schedules (Prefect's pause on shutdown left them active).
    runner = Runner(name=deployment.name, pause_on_shutdown=False, limit=limit)
    try:
        deployment_id = runner.add_deployment(deployment)
    except httpx.HTTPStatusError as exc:
        raise ServeError(
            f"the Prefect server at {url} refused deployment {full_name} "
            f"({exc.response.status_code}: {exc.response.text[:300]})"
        ) from None
    except httpx.HTTPError as exc:
        raise PrefectApiError(
            f"PREFECT_API_URL={url} stopped answering ({type(exc).__name__}: {exc}) while serve created "
            f"deployment {full_name}; {SERVER_FIX}"
        ) from None
    return ServedRunner(runner, deployment_id, health=lambda: unanswered(url, timeout=2.0))


def _describe(cron: str | None, interval: float | None, timezone: str | None) -> str:
    what = f"cron '{cron}'" if cron else f"every {interval:g} s"
    return what + (f" ({timezone})" if timezone else "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", type=Path, required=True, help="directory watched for new cutouts")
    parser.add_argument("--workdir", type=Path, required=True, help="work directory (store.zarr, scores/)")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", default=None, help="cron schedule, e.g. '0 2 * * *' (02:00 every night)")
    when.add_argument("--interval", type=float, default=None, help="run every SECONDS")
    parser.add_argument("--timezone", default=None, help="IANA timezone of the cron schedule (default UTC)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"deployment name (default {DEFAULT_NAME})")
    parser.add_argument("--limit", type=positive_int, default=1, help="runs executing at once (default 1)")
    parser.add_argument("--paused", action="store_true", help="create the schedule paused (inactive)")
    add_run_parameters(parser.add_argument_group("run parameters (defaults of every scheduled run)"))
    add_cluster_arguments(parser)


def check(args: argparse.Namespace) -> None:
    """What every firing would refuse, before Prefect starts and the deployment is made (trial: a
    missing --model or --layout was served, and each firing failed, after ingesting): the run
    parameters as :func:`flows.run.check_parameters` checks them. The source may be empty yet."""
    existing_directory(args.source, "--source")
    check_parameters(args, overwrite=False)
    warn_if_unreachable(args)


def warn_if_unreachable(args: argparse.Namespace) -> None:
    """Warn, in one line, where ``--scheduler`` (or ``--cluster``'s batch system) does not answer now: each
    firing joins it only when it fires (it may be started later), and fails while it does not answer (ops
    trial: an unreachable address was served without a word, and every firing failed 30 s in). An
    address that is no address at all is refused (:func:`pipeline.compute.check_cluster`, in flows.cli)."""
    import sys

    from pipeline.compute import check_cluster
    from pipeline.errors import ClusterError

    if args.scheduler is None and args.cluster == "local":
        return
    with contextlib.suppress(ClusterError):  # refused as it is by flows.cli, after this check
        check_cluster(args.cluster, args.scheduler, n_workers=args.workers, reach=False)
        try:
            check_cluster(args.cluster, args.scheduler, n_workers=args.workers, timeout=5.0)
        except ClusterError as exc:
            print(
                f"lenshunt serve: warning: {exc} Served anyway: each firing joins it as it fires, and fails "
                "while it does not answer.",
                file=sys.stderr,
                flush=True,
            )


def run(args: argparse.Namespace) -> int:
    parameters = run_parameters(
        args.source,
        args.workdir,
        **run_options(args),
        cluster=args.cluster,
        n_workers=args.workers,
        scheduler=args.scheduler,
    )
    serve_run_flow(
        parameters,
        name=args.name,
        cron=args.cron,
        interval=args.interval,
        timezone=args.timezone,
        limit=args.limit,
        paused=args.paused,
    )
    return 0
