"""Helpers shared by the flows: cluster arguments and progress reporting."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact


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
        "--workers", type=int, default=None, help="workers to start (default: one per core/GPU)"
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
def progress_reporter(title: str) -> Iterator[Callable[[int, int], None]]:
    """A callback (done, total) that logs progress and keeps a Prefect progress artifact."""
    logger = get_run_logger()
    artifact: dict[str, object] = {}
    last_logged = [-1]

    def report(done: int, total: int) -> None:
        percent = 100.0 * done / total if total else 100.0
        if "id" not in artifact:
            artifact["id"] = create_progress_artifact(progress=percent, description=title)
        else:
            update_progress_artifact(artifact["id"], progress=percent)
        decile = int(percent // 10)
        if decile != last_logged[0] or done == total:
            last_logged[0] = decile
            logger.info("%s: %d/%d (%.0f%%)", title, done, total, percent)

    yield report
