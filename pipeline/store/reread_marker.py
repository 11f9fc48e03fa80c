"""A ``lenshunt ingest --reread`` in progress, recorded in the store so that a kill is never silent.

A re-read rewrites a store's rows shard by shard (:mod:`pipeline.store.repair`), and with an edited
layout records that layout first. A kill in between leaves some objects read by the new layout (or
today's rules) and the rest as read before: a catalog scored from it would mix two band mappings
(ops trial: 48 objects held J pixels in band Y, 152 the old Y pixels, and nothing said so). So the
ingest sets the store's :data:`~schemas.store.REREAD_PENDING_ATTR` before it records the layout or
rewrites a row, notes each attempt's re-read record when it starts (a rerun finishing it one more),
and clears it when the last shard is done (each a write of ``zarr.json``, which zarr replaces
atomically). While it is set, ``lenshunt info`` says how far the re-read got, ``lenshunt score`` refuses
(:func:`check_no_interrupted_reread`), ``lenshunt cutout`` says the object is not re-read yet, and the
next ingest, with or without ``--reread``, re-reads the objects it had not (:func:`rows_left`).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.errors import StoreError
from schemas.store import REREAD_PENDING_ATTR

__all__ = [
    "InterruptedReread",
    "check_no_interrupted_reread",
    "interrupted_reread",
    "reread_line",
]


class InterruptedRereadError(StoreError):
    """The store is half re-read: an ingest ``--reread`` was stopped before its last shard."""


@dataclass(frozen=True)
class InterruptedReread:
    """How far an interrupted re-read got.

    ``n_objects``/``n_shards``: what it was to re-read (0 where it was stopped before it began to
    rewrite rows); ``done_rows``: rows of shards it finished; ``changes``: the layout edits it recorded
    (empty: the layout as before, read by today's rules); ``source``: the source to finish it from (the
    store's, which a ``--source-moved`` ingest records).
    """

    source: str
    changes: tuple[str, ...]
    n_objects: int
    n_shards: int
    done_rows: np.ndarray
    done_shards: int

    @property
    def n_done(self) -> int:
        return int(self.done_rows.size)

    def command(self, store: str | os.PathLike[str]) -> str:
        return f"lenshunt ingest {shlex.quote(self.source)} {shlex.quote(str(store))}"

    def what(self) -> str:
        """``"with the layout edited (band Y path ...)"`` or ``"by today's rules"``."""
        return f"with the layout edited ({'; '.join(self.changes)})" if self.changes else "by today's rules"

    def progress(self) -> str:
        if not self.n_objects:
            return "before it rewrote any object"
        return (
            f"after {self.n_done} of {self.n_objects} objects ({self.done_shards} of {self.n_shards} "
            "shards) were re-read"
        )


def start_reread(store: Path, source: str, changes: list[str]) -> None:
    """Mark ``store`` as being re-read from ``source`` with the layout ``changes`` (before any write).

    An interrupted re-read's own changes are kept where this one records none (its layout is the
    store's already): finishing it is still that re-read.
    """
    from pipeline.store.zarr_store import read_attributes, update_attributes

    earlier = (read_attributes(store).model_extra or {}).get(REREAD_PENDING_ATTR) or {}
    changes = changes or list(earlier.get("changes", []))
    marker = {"source": source, "changes": changes, "repair_id": None, "repair_ids": []}  # all re-read again
    update_attributes(store, {REREAD_PENDING_ATTR: marker})


def note_repair(store: Path, repair_id: str) -> None:
    """Record the id of the re-read's repair record (written before its first row is rewritten), after
    those of the attempts before it: a rerun finishing an interrupted re-read re-reads only the rows
    left, so the rows the earlier attempts re-read stay done (review: killed twice, the objects of the
    first attempt were said to be not re-read yet, and were re-read a third time).
    """
    from pipeline.store.zarr_store import read_attributes, update_attributes

    marker = (read_attributes(store).model_extra or {}).get(REREAD_PENDING_ATTR)
    if marker:
        ids = [*_repair_ids(marker), repair_id]
        update_attributes(store, {REREAD_PENDING_ATTR: {**marker, "repair_id": repair_id, "repair_ids": ids}})


def _repair_ids(marker: dict) -> list[str]:
    """The repair records of a re-read's attempts, oldest first (a marker of one: ``repair_id`` alone)."""
    ids = marker.get("repair_ids")
    if isinstance(ids, list):
        return [str(repair_id) for repair_id in ids if repair_id]
    return [str(marker["repair_id"])] if marker.get("repair_id") else []


def finish_reread(store: Path) -> None:
    """Clear the mark: the re-read's last shard is done."""
    from pipeline.store.zarr_store import update_attributes

    update_attributes(store, {REREAD_PENDING_ATTR: None})


def interrupted_reread(store: str | os.PathLike[str], attributes=None) -> InterruptedReread | None:  # type: ignore[no-untyped-def]
    """The re-read in progress or interrupted in ``store``; None when none is.

    Parameters
    ----------
    store
        A lenshunt store.
    attributes
        Its :func:`~pipeline.store.zarr_store.read_attributes`, where the caller has them.
    """
    from pipeline.store.zarr_store import read_attributes

    store = Path(store)
    attributes = attributes if attributes is not None else read_attributes(store)
    marker = (attributes.model_extra or {}).get(REREAD_PENDING_ATTR)
    if not marker:
        return None
    chunk = attributes.chunk_objects
    to_read, done_rows = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for repair_id in _repair_ids(marker):  # every attempt's rows: a rerun re-reads those left alone
        try:
            record = json.loads(paths.repair_record_file(store, repair_id).read_text())
            rows = np.asarray(record.get("rows", []), dtype=np.int64)
        except (OSError, ValueError):
            rows = np.zeros(0, dtype=np.int64)
        finished = [
            shard
            for shard in np.unique(rows // chunk)
            if paths.repair_file_table(store, repair_id, int(shard)).exists()
        ]
        to_read = np.union1d(to_read, rows)
        done_rows = np.union1d(done_rows, rows[np.isin(rows // chunk, finished)])
    shards = np.unique(to_read // chunk)
    left_shards = np.unique(np.setdiff1d(to_read, done_rows) // chunk)
    return InterruptedReread(
        source=str(attributes.source or marker.get("source")),  # where it is now (review: moved since)
        changes=tuple(marker.get("changes", [])),
        n_objects=int(to_read.size),
        n_shards=int(shards.size),
        done_rows=done_rows,
        done_shards=int(np.setdiff1d(shards, left_shards).size),
    )


def reread_line(store: str | os.PathLike[str], state: InterruptedReread) -> str:
    """One line saying the store is half re-read, how far, by what, and the command that finishes it.

    >>> state = InterruptedReread("/d/sim", ("band Y path 'J/{id}' (was 'Y/{id}')",), 200, 13,
    ...                           np.arange(48), 3)
    >>> print(reread_line("s.zarr", state))  # doctest: +NORMALIZE_WHITESPACE
    an ingest --reread of s.zarr with the layout edited (band Y path 'J/{id}' (was 'Y/{id}')) was
    interrupted after 48 of 200 objects (3 of 13 shards) were re-read: the store records the new layout,
    but the other objects still hold what was read before; finish it with `lenshunt ingest /d/sim s.zarr`
    """
    return (
        f"an ingest --reread of {store} {state.what()} was interrupted {state.progress()}: "
        + ("the store records the new layout, but " if state.changes else "")
        + f"the other objects still hold what was read before; finish it with `{state.command(store)}`"
    )


def check_no_interrupted_reread(store: str | os.PathLike[str], what: str = "score") -> None:
    """Refuse to ``what`` (``"score"``, ``"train on"``) a half re-read store: its objects mix what two
    layouts (or rules) read, so a catalog or model made of them would too (ops trial: scored silently).
    Refused rather than warned of, unlike an interrupted plain ingest's objects, which are left out:
    here every object is committed, and which hold the old reading is for the re-read to settle.

    Raises
    ------
    InterruptedRereadError
        Naming how far the re-read got and the command that finishes it.
    """
    from pipeline.store.lock import store_being_written

    state = interrupted_reread(store)
    if state is not None and (holder := store_being_written(Path(store))) is not None:
        raise InterruptedRereadError(
            f"cannot {what} {store}: an ingest --reread is rewriting its objects now ({holder}); "
            f"{what} when it has finished"
        )
    if state is not None:
        raise InterruptedRereadError(
            f"cannot {what} {store}: {reread_line(store, state)}, then run this again"
        )


def not_reread_yet(store: str | os.PathLike[str], state: InterruptedReread, object_id: int) -> bool:
    """Whether the interrupted re-read ``state`` left ``object_id`` of ``store`` as read before."""
    from pipeline.store.zarr_store import open_store, read_column

    ids = np.asarray(read_column(open_store(store, chunks=None), "object_id", store=store))
    return int(object_id) not in set(ids[state.done_rows[state.done_rows < ids.size]].tolist())


def rows_left(state: InterruptedReread, n_rows: int) -> np.ndarray:
    """The rows (of ``n_rows``) the interrupted re-read ``state`` did not re-read."""
    return np.setdiff1d(np.arange(n_rows, dtype=np.int64), state.done_rows)


def begin_reread(store: Path, stored, layout, reread: bool, source: str):  # type: ignore[no-untyped-def]
    """Before the layout given is recorded: mark a ``--reread`` of ``store`` (:func:`start_reread`).

    Returns
    -------
    (InterruptedReread or None, numpy.ndarray or None, callable or None)
        The interrupted re-read found; the rows it left, to re-read now (None with ``reread``, which
        re-reads every row, or where none was interrupted); and what the re-read calls with its repair
        id (:func:`note_repair`; None where nothing is marked).
    """
    from functools import partial

    from pipeline.store.layout_check import reading_differences
    from pipeline.store.zarr_store import read_attributes

    state = interrupted_reread(store)
    if reread:
        start_reread(store, source, reading_differences(stored, layout))
    left = rows_left(state, read_attributes(store).n_objects) if state is not None and not reread else None
    return state, left, partial(note_repair, store) if reread or state is not None else None


def reread_objects(store: Path, stored, layout, reread: bool, source: str, manifest, client, progress):  # type: ignore[no-untyped-def]
    """Keep the layout given where it is to be kept, then re-read the stored objects whose files changed
    (every one with ``reread``; those an interrupted re-read left too), the store marked meanwhile.

    Returns
    -------
    (list of str, RepairResult or None, Changes, bool)
        The layout notes (:func:`~pipeline.store.layout_check.keep_given_layout`), what the re-read did
        and found (:func:`~pipeline.store.repair.repair_changed_objects`), and whether it finished an
        interrupted re-read.
    """
    from pipeline.store.layout_check import keep_given_layout
    from pipeline.store.repair import repair_changed_objects

    interrupted, left, started = begin_reread(store, stored, layout, reread, source)  # before any write
    notes = keep_given_layout(store, stored, layout, reread)
    repaired, changes = repair_changed_objects(store, manifest, client, reread, progress, left, started)
    if started:
        finish_reread(store)  # the last shard is done
    return notes, repaired, changes, interrupted is not None
