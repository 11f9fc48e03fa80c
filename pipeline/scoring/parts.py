"""A score run's parts: one Parquet file per scored row range, ``parts/scores-START-STOP.parquet``.

Scoring writes a part per region as it finishes (:mod:`pipeline.scoring.run`); a rerun scores only
the rows no part covers, and the catalog is assembled from all parts, each store row exactly once.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.errors import ConservationError
from pipeline.store.ingestion import plan_regions

PART_NAME = re.compile(r"^scores-(\d{12})-(\d{12})\.parquet$")
"""A finished part's file name: its first row and the row after its last (12 digits each)."""
PART_TMP_NAME = re.compile(r"^scores-(\d{12})-(\d{12})\.tmp$")
"""A part being written (renamed to :data:`PART_NAME` when complete)."""


def uncovered_regions(
    covered: list[tuple[int, int]], n_rows: int, chunk_objects: int
) -> list[tuple[int, int]]:
    """Row regions of ``[0, n_rows)`` that no covered range holds, split every ``chunk_objects`` rows.

    Scoring only reads the store, so regions need not match its shards; a region size that
    divides the shard size keeps every read within one shard.

    >>> uncovered_regions([(0, 1024), (1024, 1500)], 2600, 1024)
    [(1500, 2048), (2048, 2600)]
    """
    regions: list[tuple[int, int]] = []
    row = 0
    for start, stop in [*sorted(covered), (n_rows, n_rows)]:
        if start > row:
            regions.extend(plan_regions(row, min(start, n_rows) - row, chunk_objects))
        row = max(row, stop)
    return regions


def existing_parts(out_dir: Path) -> dict[tuple[int, int], Path]:
    """Score parts already written in ``out_dir``, by row range."""
    parts = {}
    directory = paths.score_parts_dir(out_dir)
    if directory.is_dir():
        for path in directory.iterdir():
            match = PART_NAME.match(path.name)
            if match:
                parts[(int(match.group(1)), int(match.group(2)))] = path
    return parts


def assemble_parts(out_dir: Path, store_object_ids: np.ndarray) -> pd.DataFrame:
    """All parts concatenated in row order, checked to cover each store row exactly once."""
    parts = existing_parts(out_dir)
    frames = [pd.read_parquet(path) for _, path in sorted(parts.items())]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"row": [], "object_id": []})
    n = len(store_object_ids)
    rows = table["row"].to_numpy()
    if len(table) != n or not np.array_equal(np.sort(rows), np.arange(n)):
        raise ConservationError(
            f"score parts in {out_dir} cover {len(table)} rows ({len(np.unique(rows))} distinct) but the "
            f"store has {n}; rerun the score stage to fill gaps, or --overwrite"
        )
    table = table.sort_values("row").reset_index(drop=True)
    if not np.array_equal(table["object_id"].to_numpy(), store_object_ids):
        raise ConservationError(
            f"score parts in {out_dir} name other objects than the store rows they cover: the store "
            "was rebuilt since; score it into a new --out or pass --overwrite"
        )
    return table
