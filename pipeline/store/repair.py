"""Re-read stored objects whose band files appeared or were replaced since they were read.

Every ingest records the size and modification time of each band file it reads
(:mod:`pipeline.store.file_records`). A later ingest compares them with the files on disk now:

- an object with a file that appeared or differs (a late file arrived, a half-copied file was
  completed, a broken or a good file was replaced; a duplicate of a band's file appeared, went or
  was replaced: :mod:`pipeline.store.duplicate_records`) is read again, and the rows whose pixels,
  flags or header values came out otherwise are rewritten in place. Each re-read leaves a repair
  record naming the rewritten rows, which a score run uses to rescore exactly those rows (see
  :mod:`pipeline.scoring.run`); a file only touched or copied anew changes no row and costs no
  rescore;
- an object with band files that vanished keeps the pixels read from them (a store never loses
  what it read) and is not read again while they are missing, even if its other files changed;
  the ingest report counts such objects and names a few, with every object none of whose files
  is left;
- an object with a band read fine before (stored band flags without
  :data:`~pipeline.sources.duplicate_files.FILE_FAILURES`) whose file now fails to read because of
  the file itself (empty, unreadable, cut short, another shape: a copy in progress made in place)
  keeps its stored row: it is not rewritten (nor scored again), the report names it in its
  "files failing" lines (:func:`pipeline.store.repair_lines.failing_lines`), and its files are not
  recorded, so the next ingest compares them with the good files' records again (a completed copy
  then differs again and is read as any replaced file; a file still broken is said again). An
  object whose bands were broken already, or that changes otherwise, is rewritten as before; so is
  every object on ``--reread``, which takes the files as they are now (a file broken for good).

The re-read runs under the store's writer lock. Its record is written before any row is, listing
every row to re-read, and narrowed at the end; a kill in between leaves those rows to be scored
again (some needlessly), and the next ingest re-reads the objects whose shards had not finished.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.errors import StoreBusyError
from pipeline.flags import Flag
from pipeline.sources.discovery import Manifest
from pipeline.sources.duplicate_files import FILE_FAILURES
from pipeline.store.duplicate_records import duplicates_differ
from pipeline.store.file_records import NO_FILE, FileTable, recorded_file_table, save_file_table, stat_files
from pipeline.store.flag_reasons import reasons_beside, save_reasons
from pipeline.store.header_columns import band_units_in, merge_band_units
from pipeline.store.ingest_report import merge_named
from pipeline.store.lock import store_being_written
from pipeline.store.reading import INGEST_FLAGS, flag_counts, read_objects
from pipeline.store.row_writes import read_rows, write_rows
from pipeline.store.zarr_store import open_store, read_attributes


@dataclass
class Changes:
    """What changed in the files of a store's objects since they were read.

    ``rows``/``object_ids``: objects to read again (a file appeared or differs). ``gone``: ids of
    objects with vanished band files, with those bands (their pixels are kept, and they are not read
    again, even when other band files differ: ``not_reread`` of them); ``no_file_left`` of them
    have no file in any band now. ``unrecorded``: the files now of stored objects that no ingest
    recorded (a store made before file tables), to save as their baseline. ``failing``: ids of the
    objects the re-read kept as they were, with the bands whose files read fine before and fail now
    (filled in by :func:`repair_changed_objects`).
    """

    rows: np.ndarray
    object_ids: np.ndarray
    gone: dict[int, list[str]] = field(default_factory=dict)
    no_file_left: int = 0
    not_reread: int = 0
    unrecorded: FileTable | None = None
    failing: dict[int, list[str]] = field(default_factory=dict)

    @property
    def left_as_stored(self) -> bool:
        """Whether some objects keep rows read earlier (files gone, or failing now): not all read today."""
        return bool(self.gone or self.failing)


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
    reason_objects: dict[str, list[int]] = field(default_factory=dict)


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


def changed_objects(
    store: Path, manifest: Manifest, reread_all: bool = False, reread_rows: np.ndarray | None = None
) -> Changes:
    """Committed objects whose files differ from when they were read, and those that lost files.

    An object read by no recorded ingest (a clean object of a store made before file tables) cannot
    be compared; a flagged one counts as changed when a band flagged MISSING_FILE now has a file.
    A band's duplicate file arriving, going or replaced changes the object too (any of them may be
    the one read); a record without duplicates' signatures (an earlier version's) counts as changed
    where a band has duplicates now.
    Objects none of whose files is left are in ``gone`` with the bands they had. ``reread_all``:
    every object counts as changed whose bands read from a file all have one now (``--reread``);
    ``reread_rows``: so do those rows (an interrupted ``--reread``'s rows left:
    :mod:`pipeline.store.reread_marker`).
    """
    data = open_store(store, chunks=None)
    ids = data["object_id"].values.astype(np.int64)
    bands = tuple(str(band) for band in data["band"].values)
    index = {int(object_id): row for row, object_id in enumerate(manifest.object_ids)}
    source_rows = np.asarray([index.get(int(object_id), -1) for object_id in ids], dtype=np.int64)
    present = np.flatnonzero(source_rows >= 0)
    index_in_present = {int(object_id): i for i, object_id in enumerate(ids[present])}
    now = stat_files(manifest.select_or_missing(ids[present])).in_bands(bands)
    recorded = recorded_file_table(store, bands)
    position = {int(object_id): row for row, object_id in enumerate(recorded.object_ids)}
    gone = {}
    for object_id in ids[source_rows < 0]:  # every file gone (those it had, where recorded)
        had = recorded.size[position[int(object_id)]] != NO_FILE if int(object_id) in position else None
        if had is None or had.any():  # (an object planned when its files had vanished had none)
            gone[int(object_id)] = [band for i, band in enumerate(bands) if had is None or had[i]]
    n_no_file = len(gone)
    record_rows = np.asarray([position.get(int(i), -1) for i in ids[present]], dtype=np.int64)
    known = record_rows >= 0
    before_size = recorded.size[record_rows[known]]
    before_mtime = recorded.mtime_ns[record_rows[known]]
    now_size, now_mtime = now.size[known], now.mtime_ns[known]
    exists = now_size != NO_FILE
    before_duplicates = recorded.duplicates[record_rows[known]]
    replaced = duplicates_differ(before_duplicates, now.duplicates[known])
    differs = exists & ((now_size != before_size) | (now_mtime != before_mtime) | replaced)
    vanished = ~exists & (before_size != NO_FILE)
    changed = np.zeros(present.size, dtype=bool)
    lost = vanished.any(axis=1)
    changed[known] = differs.any(axis=1) & ~lost  # a re-read would write NaN over a vanished band
    lost_present = np.zeros(present.size, dtype=bool)
    lost_present[known] = lost
    known_rows = present[known]
    for i in np.flatnonzero(lost):
        gone[int(ids[known_rows[i]])] = [band for band, missing in zip(bands, vanished[i]) if missing]
    # flagged objects of older ingests, which recorded nothing: a band flagged MISSING_FILE has a file now
    unknown = np.flatnonzero(~known)
    unknown = unknown[(data["flags"].values[present[unknown]] & INGEST_FLAGS) != 0]
    if unknown.size:
        missing = (data["band_flags"].values[present[unknown]] & Flag.MISSING_FILE) != 0
        changed[unknown] = (missing & (now.size[unknown] != NO_FILE)).any(axis=1)
    # a second file of a band that arrived since (e.g. a .fits.gz beside the .fits): DUPLICATE_ID
    if manifest.duplicates:
        band_flags = data["band_flags"].values
        for object_id, band in manifest.duplicates:
            row = index_in_present.get(object_id)
            if row is not None and not band_flags[present[row], bands.index(band)] & Flag.DUPLICATE_ID:
                changed[row] = not lost_present[row]
    # a band flagged DUPLICATE_ID whose second file has gone since: the flag no longer holds
    duplicate_now = set(manifest.duplicates)
    for i, band_index in zip(*np.nonzero(data["band_flags"].values[present] & Flag.DUPLICATE_ID)):
        if (int(ids[present[i]]), bands[band_index]) not in duplicate_now and not lost_present[i]:
            changed[i] = True
    if reread_all or reread_rows is not None:  # not where a band read from a file has none now (blanked)
        had_file = (data["band_flags"].values[present] & Flag.MISSING_FILE) == 0
        whole = ~(had_file & (now.size == NO_FILE)).any(axis=1)
        changed = whole if reread_all else (changed | np.isin(present, reread_rows)) & whole
    rows = present[changed]
    baseline = np.flatnonzero(~known & ~changed)
    unrecorded = now.take(baseline)  # (the rows of ``now`` are those of ``present``)
    return Changes(
        rows=rows,
        object_ids=ids[rows],
        gone=gone,
        no_file_left=n_no_file,
        not_reread=int((differs.any(axis=1) & lost).sum()),
        unrecorded=unrecorded if baseline.size else None,
    )


def repair_rows_task(
    store: str,
    layout_yaml: str,
    rows: np.ndarray,
    manifest: Manifest,
    labels: np.ndarray,
    table_path: str,
    keep_failing: bool = True,
) -> dict:
    """Worker task: read the objects again, rewrite the (committed) rows that came out otherwise.

    Saves the file table of what it read at ``table_path`` (read once the repair record is written).
    An object with a band that read fine before and now fails because of its file is kept as stored
    (not rewritten, its files not recorded, its counts and reasons left out): ``"failing"``, id ->
    those bands; not with ``keep_failing`` False (``--reread``: the files as they are now).
    """
    import yaml

    from schemas.layout import parse_layout

    layout = parse_layout(yaml.safe_load(layout_yaml), source="store attributes")
    stats_time = time.time()
    table = stat_files(manifest)  # before reading: a file changed meanwhile is re-read later
    dataset, reasons = read_objects(layout, manifest, labels, store)
    stored = read_rows(store, rows, dataset)
    failing = newly_failing_bands(stored if keep_failing else None, dataset["band_flags"].values)
    kept = failing.any(axis=1)
    differ = differing_rows(stored, dataset) & ~kept
    if differ.any():
        write_rows(store, rows[differ], dataset.isel(object=np.flatnonzero(differ)))
    ids = manifest.object_ids
    if kept.any():  # their earlier records stay the latest: the next ingest compares with those
        _, their_reasons = read_objects(layout, manifest.select_or_missing(ids[kept]), labels[kept])
        reasons.take_out(their_reasons, ids[kept])
        table = table.take(~kept)
    save_reasons(reasons_beside(table_path), ids[~kept], reasons.by_object, stats_time)  # replaces theirs
    save_file_table(Path(table_path), table, stats_time)
    flags = dataset["flags"].values[~kept]
    bands = list(layout.band_names)
    return {
        "rows": [int(row) for row in rows[differ]],
        "n_read": int(np.count_nonzero(~kept)),
        "failing": {
            int(ids[i]): [bands[b] for b in np.flatnonzero(failing[i])] for i in np.flatnonzero(kept)
        },
        "n_clean": int(np.count_nonzero(flags == 0)),
        "flag_counts": flag_counts(flags[flags != 0]),
        "reasons": dict(reasons),
        "reason_objects": reasons.objects,
        "band_units": band_units_in(dataset["header_cards"].values, list(layout.band_names)),
    }


def newly_failing_bands(stored: dict[str, np.ndarray] | None, band_flags: np.ndarray) -> np.ndarray:
    """(n, n_bands) bool: bands read fine before (``stored`` band flags without
    :data:`~pipeline.sources.duplicate_files.FILE_FAILURES`) whose read now (``band_flags``) failed
    because of the file; none where the stored rows could not be read (``stored`` None).

    >>> ok, empty = 0, int(Flag.UNREADABLE)
    >>> newly_failing_bands({"band_flags": np.array([[ok, ok], [empty, ok]])}, np.array([[empty, ok]] * 2))
    array([[ True, False],
           [False, False]])
    """
    band_flags = np.asarray(band_flags)
    if stored is None:
        return np.zeros(band_flags.shape, dtype=bool)
    before = stored["band_flags"].reshape(band_flags.shape)
    return ((before & FILE_FAILURES) == 0) & ((band_flags & FILE_FAILURES) != 0)


def differing_rows(stored: dict[str, np.ndarray] | None, dataset) -> np.ndarray:
    """Which objects of ``dataset`` differ from ``stored`` (variable -> stored values), NaN equal to NaN.

    Every object differs where the stored rows could not be read (``stored`` None).
    """
    n = int(dataset.sizes["object"])
    if stored is None:
        return np.ones(n, dtype=bool)
    same = np.ones(n, dtype=bool)
    for name, old in stored.items():
        new = np.asarray(dataset[name].values, dtype=old.dtype).reshape(n, -1)
        old = old.reshape(n, -1)
        equal = new == old
        if old.dtype.kind == "f":
            equal |= np.isnan(new) & np.isnan(old)
        same &= equal.all(axis=1)
    return ~same


def repair_changed_objects(
    store: Path,
    manifest: Manifest,
    client,
    reread_all: bool = False,
    progress=None,
    finish=None,
    started=None,
) -> tuple[RepairResult | None, Changes]:
    """Re-read the changed objects on ``client``, one task per shard; None when none changed.
    ``reread_all``: every object whose files are there (:func:`changed_objects`), a band file that
    read fine before and fails now taken as it is (flagged), not kept as stored. ``progress``:
    called with (shards done, shards total, ``"re-read regions"``) as shards finish. ``finish``: rows
    an interrupted ``--reread`` left, re-read as ``reread_all`` would; ``started``: called with the
    repair id once its record is written, before any row is rewritten.

    The repair record is written first with every row to re-read (a kill after a worker rewrote
    rows then leaves them to be scored again, where the next ingest would find them unchanged),
    and narrowed to the rows that came out otherwise at the end. Objects no ingest recorded get
    their files saved as a baseline.
    """
    close_interrupted_repairs(store)
    stats_time = time.time()
    changes = changed_objects(store, manifest, reread_all, finish)
    if changes.unrecorded is not None:
        baseline = paths.file_baseline_table(store, _new_id())
        save_file_table(baseline, changes.unrecorded, stats_time)
    rows, object_ids = changes.rows, changes.object_ids
    if not rows.size:
        return None, changes
    attributes = read_attributes(store)
    labels = open_store(store, chunks=None)["label"].values[rows]
    repair_id = _new_id()
    shards = rows // attributes.chunk_objects
    intent = {"repair_id": repair_id, "rows": [int(row) for row in rows], "complete": False}
    write_json_atomic(paths.repair_record_file(store, repair_id), intent)
    if started:
        started(repair_id)
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
                str(paths.repair_file_table(store, repair_id, int(shard))),
                not (reread_all or finish is not None),  # --reread: a file broken for good as it is (trial)
                pure=False,
            )
        )
    from pipeline.compute import results_as_completed

    finished: dict = {}
    for future, done in itertools.chain([(None, None)], results_as_completed(client, futures, "repair rows")):
        if future is not None:
            finished[future] = done
        if progress:  # trial: a re-read of 600 objects said nothing for minutes
            progress(len(finished), len(futures), "re-read regions")
    results = [finished[future] for future in futures]
    changes.failing = {key: bands for result in results for key, bands in result["failing"].items()}
    band_units: dict[str, list[str]] = {}
    for result in results:
        band_units = merge_band_units(band_units, result["band_units"])
    record = {
        "repair_id": repair_id,
        "rows": sorted(row for result in results for row in result["rows"]),
        "object_ids": [int(i) for i in object_ids],
        "shards": [int(shard) for shard in np.unique(shards)],
        "complete": True,
        "time": utc_time(),  # when the rows were rewritten: grades made before are of older pixels
    }
    write_json_atomic(paths.repair_record_file(store, repair_id), record)
    result = RepairResult(
        repair_id=repair_id,
        rows=record["rows"],
        n_reread=sum(result["n_read"] for result in results),
        n_clean=sum(result["n_clean"] for result in results),
        reasons=dict(sum((Counter(result["reasons"]) for result in results), Counter())),
        flag_counts=dict(sum((Counter(result["flag_counts"]) for result in results), Counter())),
        band_units=band_units,
        reason_objects=merge_named(*(result.get("reason_objects", {}) for result in results)),
    )
    return result, changes


def close_interrupted_repairs(store: Path) -> list[str]:
    """Mark the records of re-reads that a kill cut short as closed; their ids.

    They keep every row they were to re-read, so score runs still score those rows again; closed,
    they no longer make a score run wait for an ingest (review: a dead record refused every later
    score run while any ingest held the store). The caller holds the writer lock, so no re-read of
    them is still running.
    """
    closed = []
    for repair_id in repair_ids(store):
        path = paths.repair_record_file(store, repair_id)
        record = json.loads(path.read_text())
        if not record.get("complete", True):
            write_json_atomic(path, {**record, "complete": True, "interrupted": True, "time": utc_time()})
            closed.append(repair_id)
    return closed


def check_no_repair_running(store: Path, ids: list[str]) -> None:
    """Refuse to score while an ingest is rewriting rows of ``store`` (a repair of ``ids`` not complete
    and the writer lock held): its rows could be scored before they are rewritten, and never again.

    Raises
    ------
    StoreBusyError
        Naming the writer.
    """
    unfinished = [
        repair_id
        for repair_id in ids
        if not json.loads(paths.repair_record_file(store, repair_id).read_text()).get("complete", True)
    ]
    holder = store_being_written(store) if unfinished else None
    if holder is not None:
        raise StoreBusyError(
            f"an ingest is re-reading objects of {store} now ({holder}); score when it has finished "
            "(a score run started before it scores those objects again)"
        )


def utc_time() -> str:
    """Now as ``YYYY-MM-DDThh:mm:ss.ffffffZ`` (UTC), the format of grade times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    """A record id: the client's time (records are ordered by it) and a random suffix."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(path)
