"""The ``lenshunt`` command line: one subcommand per flow, each in its own module.

Every command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args)``;
optionally ``check(args)`` (path checks run before Prefect and Dask start), ``interrupted(args)``
(what a stopped run kept and how to resume it) and ``USES_PREFECT = False`` (no flow runs).

A command that runs flows gets a Prefect API for its lifetime (:mod:`flows.prefect_api`): the
user's server, or a temporary server the CLI owns and stops (it also dies with the CLI on a
kill). SIGINT and SIGTERM stop the command in seconds with a line saying what was kept.
Deterministic failures print one line (what, why, fix) and exit 1; a stop exits 130 (SIGINT)
or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator

COMMANDS: dict[str, str] = {
    "simulate": "flows.simulate",
    "ingest": "flows.ingest",
    "train": "flows.train",
    "score": "flows.score",
    "evaluate": "flows.evaluate",
    "run": "flows.run",
    "serve": "flows.serve",
    "info": "flows.info",
    "cutout": "flows.cutout",
    "inspect": "flows.inspect",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenshunt",
        description="Find strong gravitational lenses in survey-scale FITS cutouts.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives, so a stop unwinds like a Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    def raise_stopped(signum, frame):
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _local_workers_ignore_sigint() -> Iterator[None]:
    """Dask workers this CLI starts ignore SIGINT: a Ctrl-C stops the CLI, which closes them.

    A Ctrl-C reaches the whole foreground process group; workers killed by it mid-task print
    tracebacks while the CLI is already shutting the cluster down. The setting (a Dask worker
    preload, see :mod:`flows.worker_signals`) is inherited through the environment by local
    workers only, and never replaces a preload the user configured.
    """
    key = "DASK_DISTRIBUTED__WORKER__PRELOAD"
    if key in os.environ:
        yield
        return
    import dask

    if dask.config.get("distributed.worker.preload", None):
        yield
        return
    # The environment for processes that read it; dask's config for nannies, which hand their
    # own config to the worker processes (dask may have read the environment before this).
    os.environ[key] = '["flows.worker_signals"]'
    try:
        with dask.config.set({"distributed.worker.preload": ["flows.worker_signals"]}):
            yield
    finally:
        os.environ.pop(key, None)


def _run_command(args: argparse.Namespace) -> int:
    module = args._module
    if hasattr(module, "check"):
        module.check(args)  # before Prefect and Dask start: a wrong path fails at once
    if not getattr(module, "USES_PREFECT", True):
        return int(module.run(args) or 0)
    from flows.common import summaries_off_console
    from flows.failures import quiet_expected_tracebacks
    from flows.prefect_api import prefect_api

    with _stop_on_sigterm(), _local_workers_ignore_sigint(), prefect_api():
        quiet_expected_tracebacks()
        summaries_off_console()
        return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from pipeline import __version__

        print(f"lenshunt {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from flows.failures import is_deterministic, one_line
    from pipeline.compute import quiet_tensorflow

    quiet_tensorflow()
    try:
        return _run_command(args)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        kept = getattr(args._module, "interrupted", None)
        detail = kept(args) if kept else "rerun the same command to start again"
        print(f"lenshunt {args.command}: stopped ({signal.Signals(signum).name}); {detail}", file=sys.stderr)
        return 128 + int(signum)
    except Exception as exc:
        if not is_deterministic(exc):
            raise
        print(f"lenshunt {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
