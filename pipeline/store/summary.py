"""What a store holds, from its attributes and small columns only (``lenshunt info``).

Reads with zarr alone (no xarray, no Dask): the labels and flags of the committed rows and the
validated attributes, in a fraction of a second.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.flags import describe
from pipeline.store.zarr_store import read_attributes
from schemas.store import PENDING_PLAN_ATTR, StoreAttributes


@dataclass(frozen=True)
class StoreSummary:
    """Counts of a store's committed objects: labels (1 lens, 0 non-lens, -1 unknown) and flags."""

    attributes: StoreAttributes
    n_objects: int
    n_lens: int
    n_non_lens: int
    n_unknown: int
    n_flagged: int
    flag_counts: dict[str, int]
    n_pending: int = 0
    """Objects of an interrupted ingest's plan, not committed yet (the next ingest finishes them)."""


def store_summary(path: str | os.PathLike[str]) -> StoreSummary:
    """Summarise the store at ``path``.

    Raises
    ------
    StoreNotFoundError, StoreError
        If there is no lenshunt store at ``path`` (see :func:`read_attributes`).
    """
    import zarr

    attributes = read_attributes(path)
    group = zarr.open_group(Path(path), mode="r")
    n = attributes.n_objects
    labels = np.asarray(group["label"][:n])
    flags = np.asarray(group["flags"][:n])
    counts: Counter[str] = Counter()
    for value, count in zip(*np.unique(flags, return_counts=True)):
        for name in describe(int(value)):
            counts[name] += int(count)
    return StoreSummary(
        attributes,
        n,
        int((labels == 1).sum()),
        int((labels == 0).sum()),
        int((labels < 0).sum()),
        int(np.count_nonzero(flags)),
        dict(counts),
        _pending_objects(Path(path), attributes),
    )


def _pending_objects(path: Path, attributes: StoreAttributes) -> int:
    """Objects planned by an ingest that did not commit (0 when none is pending)."""
    plan_id = (attributes.model_extra or {}).get(PENDING_PLAN_ATTR)
    if not plan_id:
        return 0
    try:
        plan = json.loads(paths.ingest_plan_file(path, plan_id).read_text())
        return len(plan["object_ids"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1  # a plan is pending but its file is unreadable
