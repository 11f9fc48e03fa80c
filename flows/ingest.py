"""Ingest flow: FITS cutouts in a layout -> a lenshunt Zarr store (incremental, resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow, task

from flows.common import (
    add_cluster_arguments,
    cluster_options,
    log_dashboard,
    log_summary,
    progress_reporter,
    stage_client,
    start_early_cluster,
)
from flows.failures import retry_unless_deterministic
from flows.preflight import label_catalog, layout_source, writable_directory
from pipeline.store import DEFAULT_CHUNK_OBJECTS, IngestReport, ingest
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
) -> IngestReport:
    """One Prefect task for the whole stage; the work fans out on Dask.

    Idempotent, so retried, except after deterministic failures (a bad layout, catalog or path).
    """
    with progress_reporter("ingest regions") as progress, stage_client(compute) as client:
        log_dashboard(client, compute.get("dashboard", False))
        return ingest(
            load_layout(layout),
            source,
            store,
            client,
            catalog=catalog,
            chunk_objects=chunk_objects,
            progress=progress,
            source_moved=source_moved,
        )


@flow(name="lenshunt-ingest", log_prints=True)
def ingest_flow(
    source: str,
    store: str,
    layout: str = "euclid-sglc2",
    catalog: str | None = None,
    chunk_objects: int = DEFAULT_CHUNK_OBJECTS,
    cluster: str = "local",
    n_workers: int | None = None,
    scheduler: str | None = None,
    dashboard: bool = False,
    source_moved: bool = False,
) -> IngestReport:
    """Ingest the cutouts under ``source`` (a ``layout`` set) into the Zarr store ``store``."""
    load_layout(layout)  # fail before any work on a bad layout
    compute = {"cluster": cluster, "n_workers": n_workers, "scheduler": scheduler, "dashboard": dashboard}
    report = ingest_stage(layout, source, store, catalog, chunk_objects, compute, source_moved)
    log_summary(report.summary())
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="root directory of the cutouts")
    parser.add_argument("store", type=Path, help="Zarr store to create or extend")
    parser.add_argument(
        "--layout",
        default="euclid-sglc2",
        help=f"layout name ({', '.join(available_layouts())}) or YAML path",
    )
    parser.add_argument(
        "--catalog", default=None, help="label catalog (default: the layout's pattern in SOURCE)"
    )
    parser.add_argument(
        "--chunk-objects", type=int, default=DEFAULT_CHUNK_OBJECTS, help="objects per shard of a new store"
    )
    parser.add_argument(
        "--source-moved",
        action="store_true",
        help="SOURCE is the store's own source at a new place: record it (a store never mixes sets)",
    )
    add_cluster_arguments(parser)


def early_start(args: argparse.Namespace) -> None:
    """Start the ingest's Dask cluster (workers importing the ingest) while Prefect starts."""
    start_early_cluster(
        {**cluster_options(args)}, warm_modules=("pipeline.store.ingestion", "pipeline.sources.fits_io")
    )


def check(args: argparse.Namespace) -> None:
    """Paths and layout first, before Prefect and Dask start."""
    layout = load_layout(args.layout)
    layout_source(layout, args.source)
    writable_directory(args.store, "store")
    label_catalog(layout, args.source, args.catalog)


def interrupted(args: argparse.Namespace) -> str:
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
        **cluster_options(args),
    )
    print(report.summary())
    return 0
