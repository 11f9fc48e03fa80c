"""Each object's ingest reasons (why its flags are set), kept in the store per object.

An ingest says why objects are flagged (``"VIS: corrupt file (...)"``, ``"H: no file"``) in its report,
which counts the objects of each reason and names a few (:mod:`pipeline.store.ingest_report`); the
catalog kept the flag bits alone, so a user could not tell why object 123 was UNREADABLE (new-user
trial). Each ingest region and each re-read shard now leaves, beside the file table of what it read
(:mod:`pipeline.store.file_records`), a small JSON sidecar in a ``reasons/`` folder there
(:func:`reasons_beside`): the ids it read (as runs of consecutive ids) and the reasons of those that
have any (most objects have none).

The latest record of an object wins, ordered as the file tables are (the client's id of the ingest
plan or re-read, then when the files were looked at), so a re-read replaces an object's old reasons
(with none, where its files are fine now) and objects ingested later get theirs from their own plan.
An object no record covers (a store, or the objects of a store, ingested before 2026-12-07) has
reasons "not recorded" (:data:`NOT_RECORDED`), which is not "none".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.atomic import write_text_atomic

__all__ = ["NOT_RECORDED", "id_runs", "reasons_beside", "recorded_reasons", "save_reasons"]

NOT_RECORDED = "reason not recorded (store made before 2026-12-07)"
"""The reason given for a flagged object whose ingest kept no reasons (an older store's objects)."""
_SUFFIX = ".files.npz"


def reasons_beside(file_table: str | os.PathLike[str]) -> Path:
    """The reasons sidecar of the file table ``file_table``: ``X.files.npz`` -> ``reasons/X.json`` (in a
    folder of their own: the repairs' folder's ``repair-*.json`` are its records).

    >>> reasons_beside("ingest/p/region-000001.files.npz").as_posix()
    'ingest/p/reasons/region-000001.json'
    """
    path = Path(file_table)
    return path.parent / "reasons" / (path.name.removesuffix(_SUFFIX) + ".json")


def id_runs(object_ids: Iterable[int]) -> list[list[int]]:
    """``[first, last]`` of each run of consecutive ids among ``object_ids`` (sorted, unique first).

    >>> id_runs([5, 3, 4, 9, 11, 10, 20])
    [[3, 5], [9, 11], [20, 20]]
    """
    ids = np.unique(np.asarray(list(object_ids), dtype=np.int64))
    if not ids.size:
        return []
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    return [[int(run[0]), int(run[-1])] for run in np.split(ids, breaks)]


def save_reasons(
    path: str | os.PathLike[str],
    object_ids: Iterable[int],
    by_object: Mapping[int, list[str]],
    stats_time: float,
) -> None:
    """Record that ``object_ids`` were read at ``stats_time`` (s since the epoch, the file table's) with the
    reasons ``by_object`` (id -> its ``"<band>: <reason>"`` texts; ids without any left out), at ``path``.

    Written whole through a temporary file and a rename (a killed writer leaves no half record).

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    ids = [int(i) for i in object_ids]
    reasons = {str(i): list(by_object[i]) for i in ids if by_object.get(i)}
    payload = {"stats_time": float(stats_time), "object_ids": id_runs(ids), "reasons": reasons}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(payload, separators=(",", ":")))


def recorded_reasons(
    store: str | os.PathLike[str], object_ids: Iterable[int] | None = None
) -> dict[int, list[str]]:
    """Object id -> its reasons as last read (``[]``: read with none), for every object a record covers.

    Objects no record covers are left out (ingested before reasons were kept: :data:`NOT_RECORDED`).
    A record that cannot be read (damaged) is skipped: its objects keep an older record's reasons.

    Parameters
    ----------
    store : path
        The store.
    object_ids : iterable of int, optional
        Only these objects (the flagged ones: a dict of every object of a survey-scale store would hold
        an entry per object); None: every object a record covers.
    """
    if object_ids is not None:
        return _reasons_of(store, np.unique(np.asarray(list(object_ids), dtype=np.int64)))
    latest: dict[int, list[str]] = {}
    for payload in _ordered_payloads(Path(store)):
        reasons = payload.get("reasons", {})
        for first, last in payload.get("object_ids", []):
            for object_id in range(int(first), int(last) + 1):
                latest[object_id] = list(reasons.get(str(object_id), []))
    return latest


def _ordered_payloads(store: Path) -> list[dict]:
    """The store's reasons records, oldest first."""
    records: list[tuple[str, float, dict]] = []  # (the client's id, stats time, payload)
    for path in paths.bookkeeping_dir(store).glob("ingest/*/reasons/region-*.json"):
        records.extend((path.parent.parent.name, *loaded) for loaded in _load(path))
    for path in (paths.repair_records_dir(store) / "reasons").glob("repair-*-shard-*.json"):
        records.extend((path.name.removeprefix("repair-"), *loaded) for loaded in _load(path))
    # as recorded_file_table orders the file tables: the client's time (%Y%m%dT%H%M%S), then the files'
    records.sort(key=lambda record: (record[0][:15], record[1]))
    return [payload for _, _, payload in records]


def _load(path: Path) -> list[tuple[float, dict]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [(float(payload.get("stats_time", 0.0)), payload)] if isinstance(payload, dict) else []


def _reasons_of(store: str | os.PathLike[str], wanted: np.ndarray) -> dict[int, list[str]]:
    """:func:`recorded_reasons` of the sorted ids ``wanted`` alone: each record's id runs are matched
    against them with a binary search, in the records' order (the latest wins)."""
    latest: dict[int, list[str]] = {}
    for payload in _ordered_payloads(Path(store)):
        runs = np.asarray(payload.get("object_ids", []), dtype=np.int64).reshape(-1, 2)
        if not runs.size or not wanted.size:
            continue
        run = np.searchsorted(runs[:, 0], wanted, side="right") - 1
        covered = (run >= 0) & (wanted <= runs[np.maximum(run, 0), 1])
        reasons = payload.get("reasons", {})
        for object_id in wanted[covered].tolist():
            latest[object_id] = list(reasons.get(str(object_id), []))
    return latest
