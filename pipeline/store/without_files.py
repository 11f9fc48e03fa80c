"""The label catalog's objects that have no file: recorded by each ingest, for evaluations and ``info``.

An ingest reads the label catalog against every object id with a file in the source or a row in the
store. The ids the catalog names beyond those (files that never arrived, or the rest of a set of
which a part is ingested on purpose) become no store row: one tile of a 100k-row catalog would
otherwise bring thousands of empty rows. Their ids and labels are recorded instead, in
:func:`pipeline.paths.without_files_record`, so that an evaluation counts them (trial: a labelled
lens whose files never arrived dropped out of every count, "lost to completeness" included).

Each ingest that reads a catalog replaces the record: a later catalog replaces the list, and an id
whose files arrived since is no longer in it. An ingest without a catalog labels the objects it
adds that the record lists by the record (:func:`with_recorded_labels`), and drops ids from it as
they are committed. A store ingested before the record existed has none:
:func:`read_without_files` gives None, "not recorded".
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline import paths
from pipeline.atomic import temporary_beside

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.sources.labels import Labels

_SHOWN = 5


@dataclass(frozen=True)
class WithoutFiles:
    """The label catalog's objects without a file, as the store's latest ingest found them.

    ``object_ids`` (int64, ascending) and their ``labels`` (int8: 1 lens, 0 non-lens, -1 unknown),
    from the label catalog ``catalog`` (its path, as the ingest read it).
    """

    object_ids: np.ndarray
    labels: np.ndarray
    catalog: str

    @property
    def n(self) -> int:
        """How many objects of the catalog have no file."""
        return int(self.object_ids.size)

    @property
    def n_lenses(self) -> int:
        """How many of them the catalog labels lenses."""
        return int(np.count_nonzero(self.labels == 1))

    def counted(self) -> str:
        """``"2 object(s) of the label catalog (1 lens) have no file (ids 100006, 300003)"``."""
        lenses = f"{self.n_lenses} lens" + ("es" if self.n_lenses != 1 else "")
        shown = ", ".join(str(i) for i in self.object_ids[:_SHOWN]) + (", ..." if self.n > _SHOWN else "")
        return f"{self.n} object(s) of the label catalog ({lenses}) have no file (ids {shown})"

    def csv_text(self) -> str:
        """The list as CSV: a header ``object_id,label``, then one line per object.

        >>> WithoutFiles(np.array([100006, 300003]), np.array([1, 0], np.int8), "c.csv").csv_text()
        'object_id,label\\n100006,1\\n300003,0\\n'
        """
        lines = ["object_id,label", *(f"{i},{label}" for i, label in zip(self.object_ids, self.labels))]
        return "\n".join(lines) + "\n"


def record_without_files(store: str | os.PathLike[str], without_file: pd.Series, catalog: str) -> None:
    """Replace the store's record with ``without_file`` (label by id) of the catalog ``catalog``.

    The caller holds the store's writer lock. The record is written whole through a temporary file
    beside it and a rename.
    """
    ids = without_file.index.to_numpy(dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    _write(Path(store), ids[order], without_file.to_numpy(dtype=np.int8)[order], str(catalog))


def forget_arrived(store: str | os.PathLike[str], known_ids: np.ndarray) -> None:
    """Drop from the record the ids of ``known_ids`` (with files now, or in the store): for an ingest
    that read no label catalog. No record: nothing to do."""
    recorded = read_without_files(store)
    if recorded is None:
        return
    keep = ~np.isin(recorded.object_ids, np.asarray(known_ids, dtype=np.int64))
    if not keep.all():
        _write(Path(store), recorded.object_ids[keep], recorded.labels[keep], recorded.catalog)


def with_recorded_labels(store: str | os.PathLike[str], object_ids: np.ndarray, loaded: Labels) -> Labels:
    """``loaded`` (the labels of ``object_ids`` an ingest adds now) with the labels the store's
    record gives ids it lists, where no label catalog was read (``loaded.path`` None), and a note.

    Trial: a lens of the record whose files arrived with an ingest that found no catalog came in
    unlabelled and dropped out of every count (the record forgot it). They leave the record when
    their plan is committed (:func:`forget_arrived`): a killed ingest labels them again on resuming.
    """
    recorded = read_without_files(store) if loaded.path is None else None
    if recorded is None or not recorded.n:
        return loaded
    position = np.searchsorted(recorded.object_ids, object_ids).clip(0, recorded.n - 1)
    listed = recorded.object_ids[position] == object_ids
    if not listed.any():
        return loaded
    values = loaded.values.copy()
    values[listed] = recorded.labels[position[listed]]
    n = int(listed.sum())
    shown = ", ".join(str(i) for i in object_ids[listed][:_SHOWN]) + (", ..." if n > _SHOWN else "")
    note = (
        f"{n} object(s) whose files arrived now (ids {shown}) take the labels that "
        f"{recorded.catalog} gave them when they had no file (no label catalog read now)"
    )
    return replace(loaded, values=values, notes=(*loaded.notes, note))


def read_without_files(store: str | os.PathLike[str]) -> WithoutFiles | None:
    """The store's record; None where there is none (a store ingested before it was recorded) or it
    cannot be read: "not recorded"."""
    path = paths.without_files_record(Path(store))
    try:
        with np.load(path, allow_pickle=False) as data:
            return WithoutFiles(
                data["object_id"].astype(np.int64), data["label"].astype(np.int8), str(data["catalog"])
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent, or not a whole record
        return None


def _write(store: Path, object_ids: np.ndarray, labels: np.ndarray, catalog: str) -> None:
    target = paths.without_files_record(store)
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, object_id=object_ids, label=labels, catalog=np.str_(catalog))
    temporary = temporary_beside(target)
    try:
        temporary.write_bytes(buffer.getvalue())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
