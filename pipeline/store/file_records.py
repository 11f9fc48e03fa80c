"""What an ingest remembers of the band files it read: size and modification time, per object and band.

Every ingest region and every re-read (:mod:`pipeline.store.repair`) saves a :class:`FileTable`
of the files it read (taken just before reading them, so a file that changes meanwhile differs at
the next ingest). A later ingest compares the table with the files on disk to find objects whose
files appeared, were replaced or vanished since.

The tables are NumPy ``.npz`` files: 16 bytes per object and band, about 7 MB for 100,000 objects
of four bands, read as two arrays (the JSON ``file_stats`` of earlier versions, kept for flagged
objects only, are still read). Size and modification time are what
``rsync`` compares by default; a file rewritten with the same size and a preserved modification
time is not noticed (a content hash would mean reading every file at every ingest).

A band with duplicate files (DUPLICATE_ID) also has the names, sizes and times of its other files
recorded, as one number (:mod:`pipeline.store.duplicate_records`; 24 bytes more per such band):
any of them may be the file its pixels were read from.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.sources.discovery import Manifest
from pipeline.store.duplicate_records import (
    NO_DUPLICATES,
    NOT_RECORDED,
    duplicate_signatures,
    packed,
    unpacked,
)

NO_FILE = -1
"""Size and modification time recorded for a band without a file."""


@dataclass(frozen=True)
class FileTable:
    """Size and modification time of each band file of some objects.

    Attributes
    ----------
    object_ids : numpy.ndarray
        Shape (n,), int64.
    bands : tuple of str
        Band names, the columns of ``size`` and ``mtime_ns``.
    size, mtime_ns : numpy.ndarray
        Shape (n, n_bands), int64: bytes and modification time (ns since the epoch) of each file,
        :data:`NO_FILE` where the object had no file in that band.
    duplicates : numpy.ndarray
        Shape (n, n_bands), int64: the signature of each band's duplicate files
        (:func:`pipeline.store.duplicate_records.signature`), ``NO_DUPLICATES`` where it has none,
        ``NOT_RECORDED`` where a table of an earlier version did not say.
    """

    object_ids: np.ndarray
    bands: tuple[str, ...]
    size: np.ndarray
    mtime_ns: np.ndarray
    duplicates: np.ndarray

    def in_bands(self, bands: tuple[str, ...]) -> FileTable:
        """The same table with columns ``bands`` (:data:`NO_FILE` for a band it lacks)."""
        size = np.full((self.object_ids.size, len(bands)), NO_FILE, np.int64)
        mtime = np.full_like(size, NO_FILE)
        duplicates = np.full_like(size, NO_DUPLICATES)
        for column, band in enumerate(bands):
            if band in self.bands:
                size[:, column] = self.size[:, self.bands.index(band)]
                mtime[:, column] = self.mtime_ns[:, self.bands.index(band)]
                duplicates[:, column] = self.duplicates[:, self.bands.index(band)]
        return FileTable(self.object_ids, tuple(bands), size, mtime, duplicates)

    def take(self, rows: np.ndarray) -> FileTable:
        """The table of the objects ``rows`` (indices or a boolean mask) only."""
        return FileTable(
            self.object_ids[rows], self.bands, self.size[rows], self.mtime_ns[rows], self.duplicates[rows]
        )


def stat_files(manifest: Manifest) -> FileTable:
    """The :class:`FileTable` of ``manifest``'s files as they are now (a vanished file: NO_FILE), with
    the signatures of its bands' duplicates (those files only are looked at besides the preferred)."""
    bands = tuple(manifest.paths)
    size = np.full((len(manifest), len(bands)), NO_FILE, np.int64)
    mtime = np.full_like(size, NO_FILE)
    for column, band in enumerate(bands):
        for row, path in enumerate(manifest.paths[band]):
            if path is None:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                continue
            size[row, column], mtime[row, column] = stat.st_size, stat.st_mtime_ns
    ids = manifest.object_ids.astype(np.int64)
    return FileTable(ids, bands, size, mtime, duplicate_signatures(ids, bands, manifest.duplicates))


def save_file_table(target: Path, table: FileTable, stats_time: float) -> None:
    """Save ``table`` (stats taken at ``stats_time``, s since the epoch) at ``target``, atomically.

    Saved before the done marker or record of what read the files: a table without one is never read.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        object_id=table.object_ids,
        bands=np.asarray(table.bands, dtype=str),
        size=table.size,
        mtime_ns=table.mtime_ns,
        stats_time=np.float64(stats_time),
        **packed(table.duplicates),
    )
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(target)


def recorded_file_table(store: Path, bands: tuple[str, ...]) -> FileTable:
    """Object id -> the files recorded when each object of ``store`` was last read (latest wins).

    Reads the tables of finished ingest regions and re-reads, the ``file_stats`` that earlier
    versions kept in their JSON markers for flagged objects only, and the baselines an ingest saved
    for stored objects that none of those recorded (a store made before this version: its clean
    objects are compared from its first ingest by this version on).
    """
    records: list[tuple[str, float, FileTable]] = []  # (the client's id, stats time, table)
    for marker in paths.bookkeeping_dir(store).glob("ingest/*/region-*.done.json"):
        region = int(marker.name.removeprefix("region-").removesuffix(".done.json"))
        tables = [paths.region_file_table(store, marker.parent.name, region)]
        found = _read_tables(marker, [table for table in tables if table.exists()], bands)
        records.extend((marker.parent.name, *record) for record in found)
    for marker in paths.repair_records_dir(store).glob("repair-*.json"):
        tables = sorted(marker.parent.glob(f"{marker.stem}-shard-*.files.npz"))
        found = _read_tables(marker, tables, bands)
        records.extend((marker.stem.removeprefix("repair-"), *record) for record in found)
    for path in paths.file_baseline_table(store, "*").parent.glob("baseline-*.files.npz"):
        baseline_id = path.name.removeprefix("baseline-").removesuffix(".files.npz")
        records.extend((baseline_id, *record) for record in _read_tables(path, [path], bands))
    # ordered by the ids the client gave (they start with its time, %Y%m%dT%H%M%S), then by when the
    # files were looked at: a worker's clock never decides between two ingests
    records.sort(key=lambda record: (record[0][:15], record[1]))
    if not records:
        empty = np.zeros((0, len(bands)), np.int64)
        return FileTable(np.zeros(0, np.int64), bands, empty, empty.copy(), empty.copy())
    ids = np.concatenate([table.object_ids for *_, table in records])
    size = np.concatenate([table.size for *_, table in records])
    mtime = np.concatenate([table.mtime_ns for *_, table in records])
    duplicates = np.concatenate([table.duplicates for *_, table in records])
    # the last record of each id wins: unique over the reversed order gives the first of the reversed
    _, first_reversed = np.unique(ids[::-1], return_index=True)
    keep = ids.size - 1 - first_reversed
    return FileTable(ids[keep], bands, size[keep], mtime[keep], duplicates[keep])


def _read_tables(marker: Path, tables: list[Path], bands: tuple[str, ...]) -> list[tuple[float, FileTable]]:
    """(stats time, table) of each saved table of ``marker``; else its JSON ``file_stats`` (older)."""
    if not tables:
        payload = json.loads(marker.read_text())
        stats = payload.get("file_stats")
        return [(payload.get("stats_time", 0.0), _legacy_table(stats, bands))] if stats else []
    records = []
    for path in tables:
        with np.load(path) as saved:
            size = saved["size"]
            duplicates = unpacked(saved, size.shape)  # NOT_RECORDED: saved by an earlier version
            bands_saved = tuple(str(b) for b in saved["bands"])
            table = FileTable(saved["object_id"], bands_saved, size, saved["mtime_ns"], duplicates)
            records.append((float(saved["stats_time"]), table.in_bands(bands)))
    return records


def _legacy_table(stats: dict[str, dict[str, list[int] | None]], bands: tuple[str, ...]) -> FileTable:
    """A :class:`FileTable` from the JSON ``{id: {band: [size, mtime_ns] or None}}`` of earlier versions."""
    ids = np.asarray([int(object_id) for object_id in stats], dtype=np.int64)
    size = np.full((ids.size, len(bands)), NO_FILE, np.int64)
    mtime = np.full_like(size, NO_FILE)
    for row, per_band in enumerate(stats.values()):
        for column, band in enumerate(bands):
            stat = per_band.get(band)
            if stat is not None:
                size[row, column], mtime[row, column] = stat
    return FileTable(ids, bands, size, mtime, np.full_like(size, NOT_RECORDED))
