"""When an ingest last rewrote each object's pixels: what a visual grade made earlier did not see.

A later ingest re-reads objects whose band files appeared or were replaced and rewrites the rows
that came out otherwise (:mod:`pipeline.store.repair`); its record lists those rows and the time
(UTC) they were rewritten. A grade made before that time was made on the old pixels (a half-copied
file, an earlier reduction), so it need not hold for the images the store has now.

Records of versions before the time was saved are dated by their id, the local time the re-read
began (read in this machine's time zone), which a copy of the store keeps. A re-read cut short by
a kill is dated when the next ingest closed it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths

__all__ = ["rewrite_times", "rewritten_since_scored"]


def rewrite_times(store: str | Path) -> pd.Series:
    """The latest time an ingest rewrote each object of ``store``; only objects it rewrote.

    Parameters
    ----------
    store : path-like
        A lenshunt Zarr store.

    Returns
    -------
    pandas.Series
        Index ``object_id`` (int64), values ``datetime64[ns, UTC]``; empty when no ingest rewrote
        a row. Records that cannot be read are left out (an unreadable record makes a score run
        fail with its own message).
    """
    from pipeline.store.repair import repair_ids
    from pipeline.store.zarr_store import open_store, read_column

    store = Path(store)
    latest: dict[int, pd.Timestamp] = {}
    object_ids = None
    for repair_id in repair_ids(store):
        path = paths.repair_record_file(store, repair_id)
        try:
            record = json.loads(path.read_text())
            rows = np.asarray(record.get("rows", []), dtype=np.int64)
            when = record_time(record, repair_id)
        except (OSError, ValueError, TypeError):
            continue
        if not rows.size:
            continue
        if object_ids is None:
            object_ids = np.asarray(read_column(open_store(store, chunks=None), "object_id", store=store))
        for object_id in object_ids[rows[rows < object_ids.size]].tolist():
            if object_id not in latest or when > latest[object_id]:
                latest[object_id] = when
    series = pd.Series(latest, dtype="datetime64[ns, UTC]")
    series.index = series.index.astype(np.int64)
    series.index.name = "object_id"
    return series


def record_time(record: dict, repair_id: str) -> pd.Timestamp:
    """When a repair record's rows were rewritten: its ``time`` (UTC), else when it began (its id).

    Raises
    ------
    ValueError
        For a record with neither (not written by lenshunt).
    """
    if record.get("time"):
        return pd.to_datetime(record["time"], utc=True)
    began = datetime.strptime(repair_id.split("-")[0], "%Y%m%dT%H%M%S").astimezone()  # local time
    return pd.Timestamp(began.astimezone(UTC))


def rewritten_since_scored(run_dir: str | Path, store: str | Path) -> int:
    """How many objects of ``store`` an ingest re-read (changed files) since ``run_dir`` was scored.

    From the store's repair records (:mod:`pipeline.store.repair`) that the run's ``score-run.json``
    has not seen; 0 for a run without one. The grading page and the evaluation say so (trials: the
    page showed a repaired band as "no pixels"; the report said nothing).
    """
    from pipeline.store.repair import repair_ids, repaired_rows

    try:
        seen = set(json.loads(paths.score_run_file(run_dir).read_text()).get("repairs_seen", []))
    except (OSError, ValueError, AttributeError):
        return 0
    return len(repaired_rows(store, [repair for repair in repair_ids(store) if repair not in seen]))
