"""``lenshunt info STORE``: what a store holds (no Prefect flow, no Dask: metadata and two columns)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.store import store_summary

USES_PREFECT = False
HELP = "summarise a lenshunt store: layout, objects, labels and flags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, help="a lenshunt Zarr store")


def run(args: argparse.Namespace) -> int:
    summary = store_summary(args.store)
    attributes = summary.attributes
    print(f"store      {args.store}")
    print(f"layout     {attributes.layout}  groups {attributes.groups}")
    print(f"objects    {summary.n_objects}  (chunks of {attributes.chunk_objects})")
    if summary.n_pending:
        planned = f"{summary.n_pending} more objects" if summary.n_pending > 0 else "more objects"
        print(
            f"pending    an interrupted ingest planned {planned}, not committed yet; rerun "
            f"`lenshunt ingest SOURCE {args.store}` to finish it"
        )
    print(f"labels     lens {summary.n_lens}, non-lens {summary.n_non_lens}, unknown {summary.n_unknown}")
    print(
        f"flagged    {summary.n_flagged}"
        + "".join(f"\n  {n:8d} {k}" for k, n in sorted(summary.flag_counts.items()))
    )
    print(f"producer   {attributes.producer}, created {attributes.created:%Y-%m-%d %H:%M} UTC")
    if summary.zero_fill:  # last session's known problem: such stores read a deleted chunk as clean data
        print(
            f"WARNING    {', '.join(summary.zero_fill)} have Zarr fill value 0 (written by an older "
            "lenshunt): a missing chunk file of them would read as object id 0, non-lenses or clean "
            f"objects, not as unknown and UNREADABLE; re-ingest into a new store to be safe: "
            f"lenshunt ingest {attributes.source} NEW_STORE"
        )
    return 0
