"""Re-read flagged objects whose band files appeared or changed since they were ingested.

Every ingest records, for each object it flags, the size and modification time of each band
file (``file_stats`` in the region done markers and in repair records). A later ingest compares
them with the files on disk now; an object whose files differ (a late file arrived, a half-copied
file was completed, a broken file was replaced) is read again and its rows, flags and band flags
are rewritten in place. Each re-read leaves a repair record naming the rows, which a score run
uses to rescore exactly those rows (see :mod:`pipeline.scoring.run`).

The re-read runs under the store's writer lock; it is idempotent, so a kill before its record
is written only means the next ingest re-reads the same objects again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.flags import Flag
from pipeline.sources.discovery import Manifest
from pipeline.store.header_columns import band_units_in, merge_band_units
from pipeline.store.reading import (
    INGEST_FLAGS,
    FileStat,
    file_stat,
    flag_counts,
    manifest_file_stats,
    read_objects,
)
from pipeline.store.zarr_store import open_store, read_attributes, write_rows


@dataclass
class RepairResult:
    """What one re-read of changed objects did."""

    repair_id: str
    rows: list[int]
    n_reread: int
    n_clean: int
    reasons: dict[str, int]
    flag_counts: dict[str, int]
    band_units: dict[str, list[str]]


def recorded_file_stats(store: Path) -> dict[int, dict[str, FileStat]]:
    """Object id -> band -> the file stat recorded when the object was last read (latest wins)."""
    records = []
    for path in [
        *paths.bookkeeping_dir(store).glob("ingest/*/region-*.done.json"),
        *paths.repair_records_dir(store).glob("repair-*.json"),
    ]:
        payload = json.loads(path.read_text())
        if "file_stats" in payload:
            records.append((payload.get("stats_time", 0.0), payload["file_stats"]))
    merged: dict[int, dict[str, FileStat]] = {}
    for _, stats in sorted(records, key=lambda record: record[0]):
        merged.update({int(object_id): value for object_id, value in stats.items()})
    return merged


def repair_ids(store: Path) -> list[str]:
    """Ids of the repair records of ``store``, oldest first."""
    records = paths.repair_records_dir(store).glob("repair-*.json")
    return sorted(path.stem.removeprefix("repair-") for path in records)


def repaired_rows(store: Path, ids: list[str]) -> set[int]:
    """Store rows rewritten by the repairs ``ids``."""
    rows: set[int] = set()
    for repair_id in ids:
        rows.update(json.loads(paths.repair_record_file(store, repair_id).read_text())["rows"])
    return rows


def changed_objects(store: Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """Rows and object ids of flagged committed objects whose files differ from when they were read.

    An object flagged by an ingest that kept no file stats (older lenshunt) counts as changed
    when a band flagged MISSING_FILE now has a file.
    """
    data = open_store(store, chunks=None)
    ids = data["object_id"].values
    flags = data["flags"].values
    candidates = np.flatnonzero(flags & INGEST_FLAGS)
    if not candidates.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    band_flags = data["band_flags"].values
    bands = list(data["band"].values)
    recorded = recorded_file_stats(store)
    index = {int(object_id): row for row, object_id in enumerate(manifest.object_ids)}
    rows = []
    for row in candidates:
        source_row = index.get(int(ids[row]))
        if source_row is None:
            continue  # its files are gone: nothing new to read
        now = {band: file_stat(manifest.paths[band][source_row]) for band in manifest.paths}
        before = recorded.get(int(ids[row]))
        if before is None:
            missing = {band for band in now if band_flags[row, bands.index(band)] & Flag.MISSING_FILE}
            changed = any(now[band] is not None for band in missing)
        else:
            changed = any(now[band] != before.get(band) for band in now)
        if changed:
            rows.append(int(row))
    rows_array = np.asarray(rows, dtype=np.int64)
    return rows_array, ids[rows_array].astype(np.int64)


def repair_rows_task(
    store: str, layout_yaml: str, rows: np.ndarray, manifest: Manifest, labels: np.ndarray
) -> dict:
    """Worker task: read the objects again and rewrite their (committed) rows in place."""
    import yaml

    from schemas.layout import parse_layout

    layout = parse_layout(yaml.safe_load(layout_yaml), source="store attributes")
    stats_time = time.time()
    stats = manifest_file_stats(manifest)
    dataset, reasons = read_objects(layout, manifest, labels)
    write_rows(store, rows, dataset)
    flags = dataset["flags"].values
    return {
        "rows": [int(row) for row in rows],
        "n_clean": int(np.count_nonzero(flags == 0)),
        "flag_counts": flag_counts(flags[flags != 0]),
        "reasons": dict(reasons),
        "band_units": band_units_in(dataset["header_cards"].values, list(layout.band_names)),
        "stats_time": stats_time,
        "file_stats": {str(int(i)): stats[str(int(i))] for i in manifest.object_ids},
    }


def repair_changed_objects(store: Path, manifest: Manifest, client) -> RepairResult | None:
    """Re-read the changed flagged objects on ``client``, one task per shard; None when none changed."""
    rows, object_ids = changed_objects(store, manifest)
    if not rows.size:
        return None
    attributes = read_attributes(store)
    labels = open_store(store, chunks=None)["label"].values[rows]
    shards = rows // attributes.chunk_objects
    futures = []
    for shard in np.unique(shards):
        mine = shards == shard
        futures.append(
            client.submit(
                repair_rows_task,
                str(store),
                attributes.layout_yaml,
                rows[mine],
                manifest.select_or_missing(object_ids[mine]),
                labels[mine],
                pure=False,
            )
        )
    results = [future.result() for future in futures]
    repair_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    stats: dict[str, dict[str, FileStat]] = {}
    band_units: dict[str, list[str]] = {}
    for result in results:
        stats.update(result["file_stats"])
        band_units = merge_band_units(band_units, result["band_units"])
    record = {
        "repair_id": repair_id,
        "rows": sorted(row for result in results for row in result["rows"]),
        "object_ids": [int(i) for i in object_ids],
        "stats_time": min(result["stats_time"] for result in results),
        "file_stats": stats,
    }
    write_json_atomic(paths.repair_record_file(store, repair_id), record)
    return RepairResult(
        repair_id=repair_id,
        rows=record["rows"],
        n_reread=int(rows.size),
        n_clean=sum(result["n_clean"] for result in results),
        reasons=dict(sum((Counter(result["reasons"]) for result in results), Counter())),
        flag_counts=dict(sum((Counter(result["flag_counts"]) for result in results), Counter())),
        band_units=band_units,
    )


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(path)
