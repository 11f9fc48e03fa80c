"""Simulate flow: write a labelled challenge-format set (FITS cutouts + catalog) for a layout."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from prefect import flow, task

from flows.common import add_cluster_arguments, cluster_options, log_summary, progress_reporter
from pipeline.compute import connect
from pipeline.simulate import DEFAULT_BATCH_SIZE, DEFAULT_FIRST_ID, SimulationSummary, simulate_set
from schemas.layout import available_layouts, load_layout

HELP = "simulate a labelled lens-finding set in a layout's exact file and catalog format"


@task(name="simulate-objects")
def simulate_stage(
    layout: str,
    out: str,
    n_objects: int,
    options: dict,
    compute: dict | None,
) -> SimulationSummary:
    """One Prefect task for the whole stage; batches fan out on Dask (``compute`` None: in-process).

    Not retried: a retry after the catalog was written would clash with its own ids.
    """
    with progress_reporter("simulate objects") as progress:
        client_context = connect(**compute) if compute is not None else contextlib.nullcontext()
        with client_context as client:
            return simulate_set(
                load_layout(layout), n_objects, out, client=client, progress=progress, **options
            )


@flow(name="lenshunt-simulate", log_prints=True)
def simulate_flow(
    out: str,
    n_objects: int,
    layout: str = "euclid-sglc2",
    seed: int = 0,
    first_id: int = DEFAULT_FIRST_ID,
    lens_fraction: float = 0.5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    catalog_name: str | None = None,
    overwrite: bool = False,
    in_process: bool = False,
    cluster: str = "local",
    n_workers: int | None = None,
    scheduler: str | None = None,
    dashboard: bool = False,
) -> SimulationSummary:
    """Simulate ``n_objects`` objects of ``layout`` into ``out`` (:func:`pipeline.simulate.simulate_set`)."""
    load_layout(layout)  # fail before any work on a bad layout
    options = {
        "seed": seed,
        "first_id": first_id,
        "lens_fraction": lens_fraction,
        "batch_size": batch_size,
        "catalog_name": catalog_name,
        "overwrite": overwrite,
    }
    compute = (
        None
        if in_process
        else {
            "cluster": cluster,
            "n_workers": n_workers,
            "scheduler": scheduler,
            "dashboard": dashboard,
        }
    )
    summary = simulate_stage(layout, out, n_objects, options, compute)
    log_summary(summary.summary())
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out", type=Path, help="root directory of the set to write (created; may hold an earlier set)"
    )
    parser.add_argument(
        "--layout",
        default="euclid-sglc2",
        help=f"layout name ({', '.join(available_layouts())}) or YAML path",
    )
    parser.add_argument("--n", type=int, required=True, help="number of objects to simulate")
    parser.add_argument(
        "--seed", type=int, default=0, help="master seed; object i uses SeedSequence([seed, i])"
    )
    parser.add_argument(
        "--first-id",
        type=int,
        default=DEFAULT_FIRST_ID,
        help=f"id of the first object (default {DEFAULT_FIRST_ID}); new ids into an existing set add objects",
    )
    parser.add_argument(
        "--lens-fraction",
        type=float,
        default=0.5,
        help="fraction drawn as lenses (labels follow the layout's rule)",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="objects per Dask task")
    parser.add_argument(
        "--catalog-name", default=None, help="file name of a new catalog (must match the pattern)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace objects whose ids the catalog has")
    parser.add_argument("--in-process", action="store_true", help="render in this process, without Dask")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    summary = simulate_flow(
        out=str(args.out),
        n_objects=args.n,
        layout=args.layout,
        seed=args.seed,
        first_id=args.first_id,
        lens_fraction=args.lens_fraction,
        batch_size=args.batch_size,
        catalog_name=args.catalog_name,
        overwrite=args.overwrite,
        in_process=args.in_process,
        **cluster_options(args),
    )
    print(summary.summary())
    return 0
