"""Helpers shared by the flows: cluster arguments, progress bars and logs, summaries.

A flow's closing summary is logged to the Prefect run with :func:`log_summary`; the ``lenshunt``
command prints it once itself, so :func:`summaries_off_console` keeps those records off the
terminal's Prefect console handler (they still reach the Prefect API and UI).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, TextIO

from prefect import get_run_logger
from pydantic import Field

from flows.preflight import positive_int
from pipeline.evaluation import format_metric, interval_text  # the report's and the plots' own rules

PositiveInt = Annotated[int, Field(ge=1)]
"""A flow parameter that counts (``batch_size``, ``n_workers``, ``chunk_objects``): Prefect refuses a
run, or a deployment run, giving it under 1 before any work (fresh-user trial: ``batch_size: 0`` in a
deployment ingested each firing, then failed in a ZeroDivisionError, retried; ``n_workers=-1`` waited
10 minutes for workers, blaming memory), as the CLI's options are refused."""


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """--cluster, --workers and --scheduler, as every distributed command takes them."""
    group = parser.add_argument_group("compute")
    group.add_argument(
        "--cluster",
        default="local",
        help="local (default: a local CPU cluster), cuda (one dask-cuda worker per GPU), "
        "slurm:<profile> or pbs:<profile> (dask-jobqueue profiles in deploy/jobqueue.yaml), "
        "or a scheduler address",
    )
    group.add_argument(
        "--workers",
        type=positive_int,  # trial: -1 hung for good, 0 started the default
        default=None,
        help="workers to start (default: one per core/GPU)",
    )
    group.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler to join")
    group.add_argument(
        "--dashboard", action="store_true", help="serve the Dask dashboard of a local cluster (URL logged)"
    )


def cluster_options(args: argparse.Namespace) -> dict:
    return {
        "cluster": args.cluster,
        "n_workers": args.workers,
        "scheduler": args.scheduler,
        "dashboard": args.dashboard,
    }


def log_dashboard(client, dashboard: bool) -> None:
    """Put the Dask dashboard's URL into the Prefect run's log (when ``--dashboard`` asked for it)."""
    if dashboard and client.dashboard_link:
        get_run_logger().info("Dask dashboard: %s", client.dashboard_link)


@contextlib.contextmanager
def progress_reporter(
    title: str, *, unit: str = "region", stream: TextIO | None = None, bar: bool | None = None
) -> Iterator[Callable[..., None]]:
    """A callback (done, total) that draws a progress bar and keeps a Prefect progress artifact.

    The bar (tqdm: count, rate and ETA) goes to ``stream`` (stderr) when it is a terminal, or
    always with ``bar=True``. Without a bar, progress is logged at every tenth instead. A third
    argument names another step of the stage (an ingest's ``"re-read regions"``): its own bar,
    artifact and log lines start, titled so, and ``title`` is the first step's.
    """
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from tqdm import tqdm

    logger = get_run_logger()
    artifact: dict[str, object] = {}
    last_logged = [-1]
    bars: list[tqdm] = []
    step = [title]

    def report(done: int, total: int, what: str | None = None) -> None:
        if what is not None and what != step[0]:  # another step: a bar, artifact and tenths of its own
            step[0] = what
            for progress_bar in bars:
                progress_bar.close()
            bars.clear()
            artifact.clear()
            last_logged[0] = -1
        percent = 100.0 * done / total if total else 100.0
        if "id" not in artifact:
            artifact["id"] = create_progress_artifact(progress=percent, description=step[0])
        else:
            update_progress_artifact(artifact["id"], progress=percent)
        if not bars:
            disable = None if bar is None else not bar
            bars.append(
                tqdm(
                    desc=step[0],
                    total=total,
                    unit=unit,
                    file=stream or sys.stderr,
                    disable=disable,
                    dynamic_ncols=True,
                )
            )
        progress_bar = bars[0]
        if progress_bar.total != total:
            progress_bar.total = total
        progress_bar.update(done - progress_bar.n)
        if not progress_bar.disable:
            return
        decile = int(percent // 10)
        if decile != last_logged[0] or done == total:
            last_logged[0] = decile
            logger.info("%s: %d/%d (%.0f%%)", step[0], done, total, percent)

    try:
        yield report
    finally:
        for progress_bar in bars:
            progress_bar.close()


_SUMMARY = "lenshunt_summary"


def log_summary(text: str) -> None:
    """Log a flow's closing summary to its Prefect run (not to the terminal under the CLI)."""
    get_run_logger().info("\n%s", text, extra={_SUMMARY: True})


class _NotSummaries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, _SUMMARY, False)


def summaries_off_console() -> None:
    """Keep :func:`log_summary` records off Prefect's console handlers (the CLI prints them)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _NotSummaries) for f in handler.filters
        ):
            handler.addFilter(_NotSummaries())


METRIC_KEYS = ("auroc", "average_precision", "precision", "recall", "f_beta", "tpr0", "tpr10")
"""The metrics a command's summary prints, in this order."""


def metrics_lines(
    metrics: dict | None,
    path: object = None,
    no_metrics: str | None = None,
    said: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> list[str]:
    """The summary's lines on metrics: the values, where ``metrics.json`` is, the metrics' own notes
    (trial: "no scored non-lenses: AUROC ... undefined" reached the page only, the console printing
    ``auroc=n/a``), or why there are none. Notes among ``warnings`` (metrics on objects the model
    learned from) are ``warning:`` lines; those in ``said`` are left out. Each value is followed by
    its 95% interval where ``metrics["ci95"]`` has one (trial: point values only, differences between
    models the size of the sampling noise).

    >>> metrics_lines({"auroc": 0.5, "tpr0": None, "notes": ["no scored non-lenses"]}, "m.json")
    ['metrics: auroc=0.5, tpr0=n/a', '         m.json', 'note:    no scored non-lenses']
    >>> metrics_lines({"auroc": 0.9, "notes": ["48 of the 60 ..."]}, warnings=["48 of the 60 ..."])
    ['metrics: auroc=0.9', 'warning: 48 of the 60 ...']
    >>> metrics_lines({"auroc": 0.9, "precision": 1.0, "threshold": 0.7, "beta": 1.0})
    ['metrics: auroc=0.9, precision=1 (at score >= 0.7, beta=1)']
    >>> metrics_lines(None, no_metrics="none of the 3 objects has a label")
    ['metrics: none, none of the 3 objects has a label']
    >>> metrics_lines({"auroc": 0.9905, "tpr0": 0.5, "ci95": {"auroc": [0.983, 0.996], "tpr0": None,
    ...                "resamples": 1000}})
    ['metrics: auroc=0.9905 [0.983, 0.996], tpr0=0.5 ([ ]: 95% intervals, 1000 bootstrap resamples)']
    """
    if metrics is None:
        return [f"metrics: none, {no_metrics}"] if no_metrics else []
    intervals = metrics.get("ci95") or {}
    line = "metrics: " + ", ".join(
        f"{k}={format_metric(metrics[k])}" + (f" {text}" if (text := interval_text(intervals.get(k))) else "")
        for k in METRIC_KEYS
        if k in metrics
    )
    at = []
    if "threshold" in metrics:  # precision, recall and f_beta are at it (it was printed nowhere)
        beta = f", beta={format_metric(metrics['beta'])}" if "beta" in metrics else ""
        at.append(f"at score >= {format_metric(metrics['threshold'])}{beta}")
    if any(intervals.get(k) for k in METRIC_KEYS):
        at.append(f"[ ]: 95% intervals, {intervals['resamples']} bootstrap resamples")
    line += f" ({'; '.join(at)})" if at else ""
    lines = [line]
    if path is not None:
        lines.append(f"         {path}")
    notes = [note for note in metrics.get("notes", ()) if note not in said]
    lines += [f"{'warning:' if note in warnings else 'note:   '} {note}" for note in notes]
    return lines


class EarlyCluster:
    """A stage's Dask cluster, started in a background thread while the CLI starts Prefect.

    ``connect(**compute)`` is entered in the thread, the listed modules are imported on every
    worker, and the client waits there until the stage takes it (:func:`stage_client`) or the
    CLI closes it (:func:`close_early_clusters`). Starting the cluster and Prefect's server one
    after the other cost their sum (about 4 s + 7 s on 2 cores); side by side, their maximum.
    """

    def __init__(self, compute: dict, warm_modules: tuple[str, ...] = ()) -> None:
        import threading

        self.compute = dict(compute)
        self.warm_modules = warm_modules
        self.client = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lenshunt-early-cluster", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import importlib

        from pipeline.compute import connect

        try:
            with connect(**self.compute) as client:
                for module in self.warm_modules:  # workers import the stage while Prefect starts
                    client.run(importlib.import_module, module)
                self.client = client
                self._ready.set()
                self._release.wait()
        except BaseException as exc:  # handed to the stage, which raises it where it would have
            self.error = exc
        finally:
            self._ready.set()

    def wait(self):
        """The started client; raises what starting the cluster raised."""
        self._ready.wait()
        if self.error is not None:
            raise self.error
        return self.client

    def close(self, timeout: float = 60.0) -> None:
        self._release.set()
        self._thread.join(timeout)


_EARLY: dict[str, EarlyCluster] = {}


def _compute_key(compute: dict) -> str:
    return repr(sorted(compute.items()))


def start_early_cluster(compute: dict, warm_modules: tuple[str, ...] = ()) -> None:
    """Start the cluster that :func:`stage_client` will hand to a stage with these ``compute`` options."""
    key = _compute_key(compute)
    if key not in _EARLY:
        _EARLY[key] = EarlyCluster(compute, warm_modules)


def close_early_clusters() -> None:
    """Close the early clusters (taken or not) and stop the early stages still running
    (:meth:`EarlyStage.stop`); the CLI calls this when its command ends, a stop's included."""
    while _EARLY:
        _, early = _EARLY.popitem()
        early.close()
    while _RUNNING_STAGES:
        _RUNNING_STAGES.pop().stop()


@contextlib.contextmanager
def stage_client(compute: dict) -> Iterator:
    """A Dask client for a stage: the early cluster started for ``compute``, else a new one.

    An early cluster serves one stage; a later stage (or a retry) starts its own.
    """
    early = _EARLY.get(_compute_key(compute))
    if early is not None and not early._release.is_set():
        client = early.wait()
        try:
            yield client
        finally:
            early.close()
        return
    from pipeline.compute import connect

    with connect(**compute) as client:
        yield client


class EarlyStageStoppedError(Exception):
    """Raised in an early stage's work when the CLI stops it (:meth:`EarlyStage.stop`)."""


class EarlyStage:
    """A small stage's whole work, run in this process while the CLI starts Prefect.

    For a set small enough that starting Dask workers costs more than the work (one store region
    on the 2-core machine: about 0.6 s of CPU against 3 to 4 s to start two workers), the stage
    runs at once on an in-process Dask client of one thread, and its Prefect task adopts the
    result (:meth:`result`) when the flow reaches it: the first file is read while Prefect's
    server starts instead of after it. A failure is raised in the task as if it had happened
    there (so retries and deterministic-failure rules apply); a retry runs the stage normally.
    The work must be resumable: a stop of the CLI ends it after the Dask task in flight
    (:meth:`stop`).
    """

    def __init__(self, work) -> None:
        import threading

        self._work = work
        self._done = threading.Event()
        self._progress: tuple | None = None
        self._value = None
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lenshunt-early-stage", daemon=True)
        _RUNNING_STAGES.append(self)
        self._thread.start()

    def _record(self, done: int, total: int, *what: str) -> None:
        if self._stopping.is_set():
            raise EarlyStageStoppedError("the command was stopped")
        self._progress = (done, total, *what)

    def _run(self) -> None:
        from pipeline.compute import in_process_client

        try:
            # its HTTP server on a free port (trial: "Port 8787 is already in use" printed by every
            # small ingest while another Dask ran, its dashboard_address=None still taking 8787)
            with in_process_client(threads=1) as client:
                self._value = self._work(client, self._record)
        except BaseException as exc:  # raised again in the stage's task
            self._error = exc
        finally:
            self._done.set()

    def stop(self, timeout: float = 20.0) -> None:
        """End the work at its next progress report (a region written), before the CLI exits.

        The report raises :class:`EarlyStageStoppedError` in the work; leaving its in-process client
        cancels the tasks not started and waits for the one in flight (the worker's close waits
        for its thread). Without this the thread, a daemon, went on writing while Python exited,
        and the exit's own cleanups (Zarr's executor shut down, Dask's clusters closed) broke the
        write under it: after ``lenshunt ingest: stopped (SIGINT)`` came "Compute Failed ...
        RuntimeError('cannot schedule new futures after shutdown')" and more tracebacks (trial: 3
        of 11 Ctrl-Cs of a small set's ingest). Returns at once for finished work; waits at most
        ``timeout`` seconds (work that has not ended then ends with the process).
        """
        self._stopping.set()
        self._thread.join(timeout)

    def result(self, progress: Callable[..., None] | None = None):
        """Wait for the work (reporting its progress) and return its value or raise its error."""
        shown = None
        while not self._done.wait(0.2):
            if progress and self._progress and self._progress != shown:
                shown = self._progress
                progress(*shown)
        if progress and self._progress and self._progress != shown:
            progress(*self._progress)
        if self._error is not None:
            raise self._error
        return self._value


_EARLY_STAGES: dict[str, EarlyStage] = {}
_RUNNING_STAGES: list[EarlyStage] = []
"""Every early stage started in this process and not yet stopped (taken by its task or not)."""


def start_early_stage(key: str, work) -> None:
    """Run ``work(client, progress)`` now, in-process, for the stage that :func:`take_early_stage` ``key``."""
    if key not in _EARLY_STAGES:
        _EARLY_STAGES[key] = EarlyStage(work)


def take_early_stage(key: str) -> EarlyStage | None:
    """The early work started for ``key``, once (a retry finds none and runs the stage itself)."""
    return _EARLY_STAGES.pop(key, None)
