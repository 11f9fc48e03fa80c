"""Ingest flow: FITS cutouts in a layout -> a lenshunt Zarr store (incremental, resumable)."""

from __future__ import annotations

import argparse
import contextlib
import os
from functools import partial
from pathlib import Path

from prefect import flow, task

from flows.common import (
    PositiveInt,
    add_cluster_arguments,
    cluster_options,
    log_dashboard,
    log_summary,
    progress_reporter,
    stage_client,
    start_early_cluster,
    start_early_stage,
    take_early_stage,
)
from flows.failures import retry_unless_deterministic, writing_to
from flows.firing import busy_firing, skip_firing
from flows.preflight import (
    DEFAULT_LAYOUT,
    label_catalog,
    layout_choice,
    layout_or_stores,
    layout_source,
    outside_source,
    outside_stores,
    shard_objects,
    writable_directory,
)
from pipeline.errors import LenshuntError
from pipeline.store import (
    DEFAULT_CHUNK_OBJECTS,
    IngestReport,
    check_existing_store,
    check_store_not_busy,
    check_store_source,
    ingest,
)
from schemas.layout import available_layouts, load_layout

HELP = "ingest FITS cutouts into a chunked Zarr v3 store (incremental and resumable)"


@task(name="ingest-cutouts", retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_deterministic)
def ingest_stage(
    layout: str,
    source: str,
    store: str,
    catalog: str | None,
    chunk_objects: int,
    compute: dict,
    source_moved: bool = False,
    reread: bool = False,
) -> IngestReport:
    """One Prefect task for the whole stage; the work fans out on Dask.

    Idempotent, so retried, except after deterministic failures (a bad layout, catalog or path).
    A small set's ingest may have started in-process before the flow (:func:`early_start`): the
    task then takes its result.
    """
    key = _stage_key(layout, source, store, catalog, chunk_objects, compute, source_moved, reread)
    early = take_early_stage(key)
    if early is not None:
        with writing_to(store), progress_reporter("ingest regions") as progress:
            return early.result(progress)
    work = partial(_ingest, layout, source, store, catalog, chunk_objects, source_moved, reread)
    with writing_to(store), progress_reporter("ingest regions") as progress, stage_client(compute) as client:
        log_dashboard(client, compute.get("dashboard", False))
        return work(client, progress)


def _ingest(  # type: ignore[no-untyped-def]
    layout, source, store, catalog, chunk_objects, source_moved, reread, client, progress
) -> IngestReport:
    """The stage's work on ``client`` (in the task, or in-process before the flow)."""
    return ingest(
        load_layout(layout),
        source,
        store,
        client,
        catalog=catalog,
        chunk_objects=chunk_objects,
        progress=progress,
        source_moved=source_moved,
        reread=reread,
    )


@flow(name="lenshunt-ingest", log_prints=True)
def ingest_flow(
    source: str,
    store: str,
    layout: str | None = None,
    catalog: str | None = None,
    chunk_objects: PositiveInt = DEFAULT_CHUNK_OBJECTS,
    cluster: str = "local",
    n_workers: PositiveInt | None = None,
    scheduler: str | None = None,
    dashboard: bool = False,
    source_moved: bool = False,
    reread: bool = False,
) -> IngestReport:
    """Ingest the cutouts under ``source`` (a ``layout`` set) into the Zarr store ``store``.

    ``layout`` None takes the store's recorded layout, else :data:`~flows.preflight.DEFAULT_LAYOUT`, as
    ``lenshunt ingest`` does (a deployment not naming it would otherwise read an sglc1 set as sglc2).
    """
    layout = layout_or_stores(layout, store)
    load_layout(layout)  # fail before any work on a bad layout
    if (busy := busy_firing(partial(check_store_not_busy, store))) is not None:  # a deployment's (trial)
        return skip_firing(busy)
    compute = {"cluster": cluster, "n_workers": n_workers, "scheduler": scheduler, "dashboard": dashboard}
    report = ingest_stage(layout, source, store, catalog, chunk_objects, compute, source_moved, reread)
    log_summary(report.summary())
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="root directory of the cutouts")
    parser.add_argument("store", type=Path, help="Zarr store to create or extend")
    parser.add_argument(
        "--layout",
        default=None,
        help=f"layout name ({', '.join(available_layouts())}) or YAML path or a store (the layout it "
        f"recorded) (default: an existing store's, else {DEFAULT_LAYOUT})",
    )
    parser.add_argument(
        "--catalog", default=None, help="label catalog (default: the layout's pattern in SOURCE)"
    )
    parser.add_argument(
        "--chunk-objects",
        type=shard_objects,
        default=DEFAULT_CHUNK_OBJECTS,
        help=f"objects per shard of a new store: at most 16, or a multiple of 16 (default "
        f"{DEFAULT_CHUNK_OBJECTS})",
    )
    parser.add_argument(
        "--source-moved",
        action="store_true",
        help="SOURCE is the store's own source at a new place: record it (a store never mixes sets)",
    )
    parser.add_argument(
        "--reread",
        action="store_true",
        help="read every stored object again with today's rules of reading files (after an upgrade "
        "that changed them: ingest says so), and files replaced keeping their size and modification time, "
        "which an ingest does not notice, and band files broken for good since (as they are now, flagged, "
        "where an ingest keeps the rows read before); objects that come out otherwise are rewritten and "
        "rescored",
    )
    add_cluster_arguments(parser)


SMALL_SET = DEFAULT_CHUNK_OBJECTS
"""Sets of at most this many objects (one store region) are ingested in-process by default."""


def _stage_key(layout, source, store, catalog, chunk_objects, compute, *flags: bool) -> str:  # type: ignore[no-untyped-def]
    return repr((layout, str(source), str(store), catalog, chunk_objects, sorted(compute.items()), *flags))


def _small_set(args: argparse.Namespace) -> bool:
    """A default local run on a set of at most SMALL_SET objects (files of its first band)."""
    if args.cluster != "local" or args.scheduler or args.workers or args.dashboard:
        return False
    layout = load_layout(args.layout)
    folder = Path(args.source) / Path(layout.bands[0].path).parent
    try:
        with os.scandir(folder) as entries:
            return sum(1 for _ in entries) <= SMALL_SET
    except OSError:
        return False


def early_start(args: argparse.Namespace) -> None:
    """Work that starts while the CLI starts Prefect's server.

    A small set (one region) is ingested in-process right away: starting Dask workers would cost
    more than the work. Otherwise the Dask cluster starts, its workers importing the ingest.
    """
    compute = cluster_options(args)
    if _small_set(args):
        layout, source, store = args.layout, str(args.source), str(args.store)
        catalog, chunk_objects, moved = args.catalog, args.chunk_objects, args.source_moved
        work = partial(_ingest, layout, source, store, catalog, chunk_objects, moved, args.reread)
        key = _stage_key(layout, source, store, catalog, chunk_objects, compute, moved, args.reread)
        start_early_stage(key, work)
        return
    start_early_cluster(compute, warm_modules=("pipeline.store.ingestion", "pipeline.sources.fits_io"))


def holds(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The store's writer lock, held by the command from before Prefect starts (flows.cli); the ingest
    joins it, and what was made for it alone (a new ``STORE/_lenshunt``) is removed where no store was
    made (a failure or a stop before the ingest made it)."""
    from pipeline.store import store_lock_from_start

    return store_lock_from_start(args.store, purpose=f"ingest of {Path(os.path.abspath(args.source))}")


def check(args: argparse.Namespace) -> None:
    """Paths and layout first, before Prefect and Dask start."""
    args.layout, origin = layout_choice(args.layout, args.store)  # a rerun needs no --layout (trial)
    layout = load_layout(args.layout)
    try:
        layout_source(layout, args.source, origin, store=args.store)
    except LenshuntError as error:  # another set than the store's: that first (ops trial: --layout advised)
        check_store_source(args.store, args.source, args.source_moved, also=str(error))
        raise
    writable_directory(args.store, "store")
    outside_stores(args.store, "store", itself=False)
    outside_source(args.store, args.source, "store")  # as run's and serve's work directory
    label_catalog(layout, args.source, args.catalog)
    check_existing_store(args.store, layout, args.source, args.source_moved, args.reread, args.catalog)
    check_store_not_busy(args.store)  # one line, before Prefect (trial: after it and the cluster)


def interrupted(args: argparse.Namespace) -> str:
    """What a stopped ingest kept: the regions written so far, or nothing when no store was made yet."""
    if not Path(args.store).exists():  # trial: "kept in s6.zarr", which had not been created
        return f"nothing was written yet ({args.store} was not created); rerun the same command to ingest"
    return (
        f"the regions written so far are kept in {args.store}; rerun the same command to finish "
        "the ingest (nothing is read twice or duplicated)"
    )


def run(args: argparse.Namespace) -> int:
    report = ingest_flow(
        source=str(args.source),
        store=str(args.store),
        layout=args.layout,
        catalog=args.catalog,
        chunk_objects=args.chunk_objects,
        source_moved=args.source_moved,
        reread=args.reread,
        **cluster_options(args),
    )
    print(report.summary())
    return 0
