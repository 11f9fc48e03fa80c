"""The ``lenshunt`` command line: one subcommand per flow, each in its own module.

Every command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args)``;
optionally ``check(args)`` (path checks run before Prefect and Dask start), ``early_start(args)``
(work that may start while Prefect's server starts: a stage's Dask cluster), ``interrupted(args)``
(what a stopped run kept and how to resume it), ``USES_PREFECT = False`` (no flow runs in
this process; ``STARTS_FLOW_RUNS = True`` too where it starts them in subprocesses: ``serve``) and
``holds(args)`` (a context manager: the lock of the folder it writes, held from before Prefect starts
to the end) and ``LOADS_KERAS = True`` (its Keras backend is checked before anything starts;
``"here"``: Keras is imported in this process, which imports it then, so that a backend failing to
import is one line).

A command that runs flows gets a Prefect API for its lifetime (:mod:`flows.prefect_api`): the
user's server, or a temporary server the CLI owns and stops (it also dies with the CLI on a
kill). SIGINT and SIGTERM stop the command in seconds with a line saying what was kept, also where
library code turned the stop into an error of its own (:func:`flows.stops.stop_of`).
Deterministic failures print one line (what, why, fix) and exit 1, with either kind of Prefect
server (Prefect's console records of the failed runs are dropped; :mod:`flows.failures`); an
unexpected exception prints its traceback once; a stop exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import NoReturn

from flows.stops import stop_of, stop_on_sigterm

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
#: Each command's one-line help, as its module's ``HELP`` says (a test keeps them equal), so that
#: ``lenshunt --help`` imports no command module (Prefect, Dask, xarray: seconds).
HELPS: dict[str, str] = {
    "simulate": "simulate a labelled lens-finding set in a layout's exact file and catalog format",
    "ingest": "ingest FITS cutouts into a chunked Zarr v3 store (incremental and resumable)",
    "train": "train a lens-finding model on a labelled store and save it as a model bundle",
    "score": "score a store with a model bundle on Dask workers and write the catalog",
    "evaluate": "compute metrics, plots and the HTML report (with a gallery) of a score run",
    "run": "ingest, score, evaluate and report in one flow (the main job)",
    "serve": "serve the run flow with a cron or interval schedule (needs a Prefect server)",
    "info": (
        "summarise a store, a model bundle or ensemble, a work or score folder's latest run, or its catalog "
        "or report"
    ),
    "cutout": "write objects' bands as FITS files with the input's pixels and WCS (for DS9, Aladin, ...)",
    "inspect": "grade a run's candidates by eye on a local page (A/B/C/X), and apply or export the grades",
}


class _Parser(argparse.ArgumentParser):
    """argparse, its errors in one line: what is wrong and where the options are listed.

    Trial: a number out of range printed the usage block (up to 20 lines) before the error line.
    An option taking a list (``--negative-mix``, ``--bands``) given last takes the positional
    arguments after it as its own; the error then says so (trial: ``simulate --negative-mix 0 0 0 0
    DIR`` read DIR as a fifth weight).
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        """As argparse's, but words left over are the command's error, pointing at its own ``--help``
        (trial: ``lenshunt cutout STORE 1 2`` pointed at ``lenshunt --help``)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(self, "commands", {}).get(getattr(parsed, "command", None))
            (command or self).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        hint = _greedy_list_hint(self, getattr(self, "_argv", []))
        self.exit(2, f"{self.prog}: error: {message}{hint} (`{self.prog} --help` lists the options)\n")


def _greedy_list_hint(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """``" (--bands takes every word after it: ...)"`` when a list option of ``argv`` took words and
    positional arguments of ``parser`` are missing (those words may have been meant for them); else
    ``""``."""
    positionals = [a.metavar or a.dest for a in parser._actions if not a.option_strings]  # no public list
    if not positionals:
        return ""
    lists = {name for a in parser._actions if a.nargs in ("+", "*") for name in a.option_strings}
    taking = [  # list options followed by words (trial: cutout --bands VIS J STORE ID --out X)
        word for i, word in enumerate(argv[:-1]) if word in lists and not argv[i + 1].startswith("-")
    ]
    if not taking or "--" in argv or _positionals_before(parser, argv) >= len(positionals):
        return ""
    names = " ".join(str(name).upper() for name in positionals)
    return f" ({taking[0]} takes every word after it: give {names} before it, or end its list with --)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``lenshunt`` parser; with ``command``, only that command's module is imported.

    ``None`` imports every command module (all sub-parsers complete); a name imports that one
    and lists the others by their help line only (enough for ``lenshunt --help``).
    """
    parser = _Parser(
        prog="lenshunt",
        description="Find strong gravitational lenses in survey-scale FITS cutouts.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.commands = {}  # name -> its sub-parser (for its errors)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if command is not None and name != command:
            subparsers.add_parser(name, help=HELPS[name], description=HELPS[name])
            continue
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        parser.commands[name] = sub
        sub.set_defaults(_module=module)
    return parser


def _command_in(argv: list[str]) -> str:
    """The command named in ``argv`` (its first word that is not an option), or ''."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else ""
    return ""


def _positionals_before(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """How many words of ``argv`` are positional arguments (neither options nor their values)."""
    given, i = 0, 0
    while i < len(argv):
        word, i = argv[i], i + 1
        if not word.startswith("-") or word == "-":
            given += 1
            continue
        action = parser._option_string_actions.get(word.split("=")[0])  # argparse's own table
        if action is None or "=" in word:
            continue
        nargs = action.nargs
        if nargs is None or nargs == "?":
            i += 1 if nargs is None or (i < len(argv) and not argv[i].startswith("-")) else 0
        elif isinstance(nargs, int):
            i += nargs
        else:  # "+" or "*": the words up to the next option
            while i < len(argv) and not argv[i].startswith("-"):
                i += 1
    return given


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


def _writing_in(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Note the folder a command writes (its module's ``WRITES_IN`` argument) on a full disk's error.

    Trial: a full disk in ``simulate``, ``train``, ``cutout`` or ``inspect`` said "a file: No space
    left on device" (a write names no file); the stages' own, narrower notes stay.
    """
    from flows.failures import writing_to

    folder = getattr(args, getattr(args._module, "WRITES_IN", ""), None)
    return writing_to(folder) if folder is not None else contextlib.nullcontext()


def _run_command(args: argparse.Namespace) -> int:
    module = args._module
    if getattr(module, "LOADS_KERAS", False):  # trial: KERAS_BACKEND=torch failed inside the flow, "a bug"
        from pipeline.compute import check_keras_backend, import_keras

        import_keras() if module.LOADS_KERAS == "here" else check_keras_backend()
    if hasattr(module, "check"):
        module.check(args)  # before Prefect and Dask start: a wrong path fails at once
    if hasattr(args, "scheduler"):  # trial: --cluster slurm:nope failed after the flow had started
        from pipeline.compute import check_cluster, oversubscription_warning

        check_cluster(
            args.cluster,
            args.scheduler,
            n_workers=args.workers,
            reach=getattr(module, "JOINS_CLUSTER_NOW", True),
        )
        crowded = oversubscription_warning(args.cluster, args.scheduler, args.workers)
        if crowded:
            print(f"lenshunt {args.command}: warning: {crowded}", file=sys.stderr)
    # the lock of what it writes, from before Prefect starts (trial: a second run a second later began a
    # flow run before it was refused)
    with module.holds(args) if hasattr(module, "holds") else contextlib.nullcontext():
        if not getattr(module, "USES_PREFECT", True):
            if not getattr(module, "STARTS_FLOW_RUNS", False):
                return _finished(args, module.run(args))
            with _local_workers_ignore_sigint():  # serve: its runs' local workers inherit the setting
                return _finished(args, module.run(args))
        from flows.common import close_early_clusters, summaries_off_console
        from flows.failures import (
            keep_interrupts_out_of_gc_callbacks,
            quiet_distributed_cancel_race,
            quiet_expected_tracebacks,
            quiet_resource_tracker,
        )
        from flows.prefect_api import prefect_api

        quiet_distributed_cancel_race()  # before any Dask client: a Ctrl-C prints no stray traceback
        quiet_resource_tracker()  # ... nor, after its last line, the tracker's leaked-semaphore warning
        keep_interrupts_out_of_gc_callbacks()  # ... and is never swallowed by a gc callback
        with stop_on_sigterm(), _local_workers_ignore_sigint():
            try:
                if hasattr(module, "early_start"):
                    url = os.environ.get("PREFECT_API_URL")
                    if url:  # a server that does not answer fails the command before any work starts
                        from flows.prefect_api import check_api

                        check_api(url)
                    module.early_start(args)  # its Dask cluster starts while Prefect's server does
                with prefect_api():
                    quiet_expected_tracebacks()
                    summaries_off_console()
                    return _finished(args, module.run(args))
            finally:
                close_early_clusters()


def _finished(args: argparse.Namespace, rc: int | None) -> int:
    """Mark the command's work as done (its summary printed): a stop from here on loses nothing."""
    args._finished = True
    return int(rc or 0)


def main(argv: list[str] | None = None) -> int:
    """The ``lenshunt`` command; a Ctrl-C (SIGTERM) while it starts (imports) says so in one line,
    exit 130 (143).

    As the console script (``argv`` None), a Ctrl-C after the command has ended, while Python
    exits (threads, atexit handlers), also says so in one line and exits 130 at once; and once the
    atexit handlers have run, Python's last second of teardown ignores it (Python would otherwise
    reset SIGINT to the default there, and a Ctrl-C would end the process with no line: exit
    status -2 to a parent, measured in 1 of 1 tries 0.6 s after an ingest's summary).

    A stdout whose reader has gone (``lenshunt info STORE | head -2``) ends any command quietly,
    exit 1, with no ``BrokenPipeError`` traceback (Python docs, "Note on SIGPIPE").
    """
    if argv is None:  # registered first, so it runs after every other atexit handler
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_sigterm():  # trial: a SIGTERM while it started ended it without a word
            rc = _main(argv)
    except SystemExit:  # argparse's --help and usage errors
        if not _flush_stdout():
            raise SystemExit(1) from None
        raise
    except BrokenPipeError:
        if not _stdout_closed():  # e.g. a socket to a Dask or Prefect process: not ours to hide
            raise
        _stdout_to_devnull()
        return 1
    except BaseException as exc:  # a stop, also one that library code wrapped (flows.stops.stop_of)
        signum = stop_of(exc)
        if signum is None:
            raise
        print(f"lenshunt: stopped ({signum.name}) while starting; nothing was done", file=sys.stderr)
        return 128 + int(signum)
    if not _flush_stdout():  # a reader that stopped early (`| head`) is met here, not in Python's exit
        return 1
    if argv is None:
        signal.signal(signal.SIGINT, _stopped_while_exiting)
    return rc


def _flush_stdout() -> bool:
    """Flush stdout; False if its reader has gone (then stdout is devnull from here on)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        _stdout_to_devnull()
        return False
    return True


def _stdout_to_devnull() -> None:
    """Python docs, "Note on SIGPIPE": the reader of stdout is gone (`lenshunt info STORE | head -2`);
    what is left to print goes to devnull, so that Python's exit raises no second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone (poll says POLLERR or POLLHUP)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real file descriptor (an embedding, a test)
        return False


def _stopped_while_exiting(signum: int, frame: object) -> None:
    """SIGINT handler once the command has ended: one line, exit 130 without the rest of teardown."""
    sys.stdout.flush()
    print(
        f"lenshunt: stopped ({signal.Signals(signum).name}) while exiting, after the command had ended; "
        "its result stands",
        file=sys.stderr,
        flush=True,
    )
    os._exit(128 + signum)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    if command:  # before its module's imports (Prefect, Dask, TensorFlow: 11-60 s; trial)
        from flows.busy import refuse_if_busy
        from pipeline.errors import LenshuntError

        try:
            refuse_if_busy(command, argv[argv.index(command) + 1 :])
        except LenshuntError as exc:
            print(f"lenshunt {command}: error: {exc}", file=sys.stderr)
            return 1
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.version:
        from pipeline import __version__

        print(f"lenshunt {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from flows.failures import is_deterministic, one_line, shown_on_console
    from pipeline.errors import WorkersLostError

    if getattr(args._module, "USES_PREFECT", True):  # metadata commands skip Dask's import
        from pipeline.compute import quiet_tensorflow

        quiet_tensorflow()
    try:
        with _writing_in(args):
            return _run_command(args)
    except KeyboardInterrupt as exc:
        return _stopped(args, stop_of(exc) or signal.SIGINT)
    except Exception as exc:
        signum = stop_of(exc)  # a stop that library code wrapped (trial: pydantic's, as Prefect started)
        if signum is not None:
            return _stopped(args, signum)
        if shown_on_console(exc):  # a bug whose traceback a Prefect run record printed: not twice
            print(
                f"lenshunt {args.command}: error: unexpected {type(exc).__name__}: {exc} (a bug; its "
                "traceback is above)",
                file=sys.stderr,
            )
            return 1
        if isinstance(exc, BrokenPipeError) or not is_deterministic(exc):
            raise  # a closed stdout: main() ends quietly
        message = one_line(exc)
        kept = getattr(args._module, "interrupted", None)
        if isinstance(exc, WorkersLostError) and kept:  # what the finished work left, as after a stop
            message += "; " + kept(args).replace("the same command", "the command")
        print(f"lenshunt {args.command}: error: {message}", file=sys.stderr)
        return 1
    except BaseException as exc:  # a stop in a group (anyio's) or as a CancelledError (flows.stops.stop_of)
        signum = stop_of(exc)
        if signum is None or isinstance(exc, SystemExit):
            raise
        return _stopped(args, signum)


def _stopped(args: argparse.Namespace, signum: signal.Signals) -> int:
    """Say that the command was stopped, and what it kept (its module's ``interrupted``); its exit code."""
    kept = getattr(args._module, "interrupted", None)
    detail = kept(args) if kept else "rerun the same command to start again"
    if getattr(args, "_finished", False):  # the stop came while closing the cluster and Prefect
        detail = "it came after the work was done and its summary printed: nothing is lost"
    print(f"lenshunt {args.command}: stopped ({signum.name}); {detail}", file=sys.stderr)
    return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
