"""Apply a corrected label catalog to the objects a store already holds.

Labels are read from the catalog when objects are ingested; a catalog corrected later (a lens
confirmed, a false positive demoted) would otherwise never reach the store's ``label`` column,
and training, evaluation and the catalogs' ``label`` column would keep the old value. Each ingest
therefore reads the catalog for the committed objects too and rewrites the labels it changes.

A catalog that no longer gives a label for an object the store has one for (the row is gone, or
its rule cannot be evaluated) keeps the store's label: a partial catalog must not erase labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.sources.labels import LABEL_UNKNOWN, load_labels
from pipeline.store.without_files import forget_arrived, record_without_files
from pipeline.store.zarr_store import open_store, read_attributes
from schemas.layout import Layout

_SHOWN = 5


@dataclass
class RelabelResult:
    """What a corrected catalog changed in a store.

    ``n_changed`` labels were rewritten (``changes``: up to five ``(object_id, old, new)``);
    ``n_kept`` objects labelled in the store have no label in the catalog and kept theirs.
    """

    n_changed: int = 0
    n_unknown_before: int = 0
    """Of ``n_changed``, those the store held as unknown (a row added since, or a lost label chunk)."""
    n_kept: int = 0
    changes: list[tuple[int, int, int]] = field(default_factory=list)
    kept_ids: list[int] = field(default_factory=list)
    catalog_notes: list[str] = field(default_factory=list)
    """What reading the catalog noticed (skipped rows, delimiter, encoding, rows without files)."""
    catalog_warnings: list[str] = field(default_factory=list)
    """The catalog's warnings (:attr:`pipeline.sources.labels.Labels.warnings`)."""

    def notes(self, catalog: Path | str) -> list[str]:
        """Human-readable lines for the ingest summary (empty when nothing differs)."""
        lines = list(self.catalog_notes)  # new-user trial: an ingest without new objects said none
        if self.n_changed:
            shown = ", ".join(f"{i}: {_name(old)} -> {_name(new)}" for i, old, new in self.changes)
            more = ", ..." if self.n_changed > len(self.changes) else ""
            lines.append(
                f"{self.n_changed} label(s) of objects already in the store corrected from {catalog} "
                f"({shown}{more}); evaluations use them now, the catalogs from the next score run on "
                "(which `lenshunt run` makes next)"
            )
        if self.n_unknown_before:  # new-user trial: labels restored after damage were called corrections
            lines.append(
                f"{self.n_unknown_before} of them had no label in the store (a catalog row added since the "
                "object was ingested, or labels lost with a chunk file: `lenshunt info` says which)"
            )
        if self.n_kept:
            ids = ", ".join(str(i) for i in self.kept_ids)
            ids += ", ..." if self.n_kept > len(self.kept_ids) else ""
            lines.append(
                f"{self.n_kept} object(s) labelled in the store have no label in {catalog} (ids {ids}): "
                "their labels are kept"
            )
        return lines


def _name(label: int) -> str:
    return {1: "lens", 0: "non-lens"}.get(int(label), "unknown")


def corrected_labels(stored: np.ndarray, catalog: np.ndarray) -> np.ndarray:
    """The labels a store should hold: the catalog's where it gives one, else the stored ones.

    Parameters
    ----------
    stored, catalog
        int8 arrays of shape (n_objects,): 1 lens, 0 non-lens, -1 unknown (``catalog`` aligned
        with the store's rows).

    >>> corrected_labels(np.array([1, 0, -1, 1]), np.array([0, 0, 1, -1])).tolist()
    [0, 0, 1, 1]
    """
    stored = np.asarray(stored, dtype=np.int8)
    catalog = np.asarray(catalog, dtype=np.int8)
    return np.where(catalog != LABEL_UNKNOWN, catalog, stored).astype(np.int8)


def relabel_committed(
    store: Path,
    layout: Layout,
    source: Path,
    catalog: str | None = None,
    source_ids: np.ndarray | None = None,
) -> tuple[RelabelResult, Path | None]:
    """Rewrite the labels of committed objects that the label catalog now gives otherwise.

    The caller holds the store's writer lock. Rows without an id (never committed) are left alone.
    Only the chunks of ``label`` that change are written.

    ``source_ids`` (every object id with a file in the source) lets the catalog's notes say which
    rows name objects neither with files nor in the store (:func:`~pipeline.sources.labels.load_labels`);
    with them, the store records those objects and their labels for its evaluations
    (:mod:`pipeline.store.without_files`: replaced by a catalog read, left less the ids with files now
    where there is no catalog).

    Returns
    -------
    (result, catalog path), the path None when the set has no label catalog (nothing changes).

    Raises
    ------
    CatalogError
        If the catalog cannot be read (as for an ingest of new objects).
    """
    import zarr

    data = open_store(store, chunks=None)
    ids = data["object_id"].values.astype(np.int64)
    stored = data["label"].values.astype(np.int8)
    rows = np.flatnonzero(ids >= 0)
    known = None if source_ids is None else np.union1d(source_ids, ids[rows])  # stored: ingested
    loaded = load_labels(layout, ids[rows], source, catalog, source_ids=known)
    if loaded.without_file is not None:
        record_without_files(store, loaded.without_file, str(loaded.path))
    elif known is not None and loaded.path is None:  # those arriving now: when their plan commits
        forget_arrived(store, ids[rows])
    if loaded.path is None or not rows.size:
        return RelabelResult(
            catalog_notes=list(loaded.notes), catalog_warnings=list(loaded.warnings)
        ), loaded.path
    new = corrected_labels(stored[rows], loaded.values)
    changed = rows[new != stored[rows]]
    kept = rows[(loaded.values == LABEL_UNKNOWN) & (stored[rows] != LABEL_UNKNOWN)]
    result = RelabelResult(
        catalog_notes=list(loaded.notes),
        catalog_warnings=list(loaded.warnings),
        n_changed=int(changed.size),
        n_unknown_before=int(np.count_nonzero(stored[changed] == LABEL_UNKNOWN)),
        n_kept=int(kept.size),
        kept_ids=[int(i) for i in ids[kept[:_SHOWN]]],
    )
    if not changed.size:
        return result, loaded.path
    merged = stored.copy()
    merged[rows] = new
    result.changes = [(int(ids[row]), int(stored[row]), int(merged[row])) for row in changed[:_SHOWN]]
    array = zarr.open_group(store, mode="r+")["label"]
    chunk = int(read_attributes(store).chunk_objects)
    for start in np.unique(changed // chunk) * chunk:  # whole chunks: the shards' own writes
        stop = min(int(start) + chunk, merged.size)
        array[int(start) : stop] = merged[int(start) : stop]
    return result, loaded.path
