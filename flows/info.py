"""``lenshunt info STORE``: what a store holds (no Prefect flow: it only reads metadata)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.flags import describe
from pipeline.store import open_store, read_attributes

USES_PREFECT = False
HELP = "summarise a lenshunt store: layout, objects, labels and flags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, help="a lenshunt Zarr store")


def run(args: argparse.Namespace) -> int:
    attributes = read_attributes(args.store)
    dataset = open_store(args.store)
    labels = dataset["label"].values
    flags = dataset["flags"].values
    counts: Counter[str] = Counter()
    for value, n in zip(*np.unique(flags, return_counts=True)):
        for name in describe(int(value)):
            counts[name] += int(n)
    print(f"store      {args.store}")
    print(f"layout     {attributes.layout}  groups {attributes.groups}")
    print(f"objects    {dataset.sizes['object']}  (chunks of {attributes.chunk_objects})")
    print(
        f"labels     lens {int((labels == 1).sum())}, non-lens {int((labels == 0).sum())}, "
        f"unknown {int((labels < 0).sum())}"
    )
    print(
        f"flagged    {int(np.count_nonzero(flags))}"
        + "".join(f"\n  {n:8d} {k}" for k, n in sorted(counts.items()))
    )
    print(f"producer   {attributes.producer}, created {attributes.created:%Y-%m-%d %H:%M} UTC")
    return 0
