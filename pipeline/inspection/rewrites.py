"""What changed under a grading page: the store (an ingest's re-reads), the run's catalog (a score run).

An ingest that finds replaced or late band files re-reads those objects and rewrites their rows
(:mod:`pipeline.store.repair`), so the images a page shows can change under it: a page opened
before (its images read then, or kept by the browser) would record a grade of the old images as
one of the new. :class:`RewriteWatch` tells the page which objects were rewritten after it opened.

A score run into the page's run (rescored by another model, or grown by new objects) replaces its
catalog: a page opened before keeps the old queue and would record a grade with a score and a model
the catalog no longer has (new-user trial), and refuse a new object as not in the catalog.
:class:`CatalogWatch` tells it that the catalog was replaced since it was loaded, and what changed; a
rewrite with the same model, store, objects, scores and ranks (another threshold, the grades
applied) is none of that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.store import rewritten_since_scored
from schemas.catalog import Provenance

__all__ = [
    "KEY_COLUMNS",
    "CatalogWatch",
    "RewriteWatch",
    "file_identity",
    "key_columns",
    "object_changes",
    "rewritten_since_scored",
]


@dataclass(frozen=True)
class RewriteWatch:
    """The store's re-reads when a page opened, to tell which objects an ingest rewrote since.

    Attributes
    ----------
    store : pathlib.Path
        The store the page shows.
    seen : frozenset of str
        Ids of the repair records that existed at :attr:`since`.
    since : pandas.Timestamp
        When the page opened (UTC).
    """

    store: Path
    seen: frozenset[str]
    since: pd.Timestamp

    @classmethod
    def start(cls, store: str | Path) -> RewriteWatch:
        """Watch ``store`` from now."""
        from pipeline.store.repair import repair_ids

        return cls(Path(store), frozenset(repair_ids(Path(store))), pd.Timestamp.now(tz="UTC"))

    def rewritten(self, object_id: int) -> pd.Timestamp | None:
        """When an ingest rewrote ``object_id`` after :attr:`since`; None if it did not.

        Costs a listing of the repair records while no re-read is new (each grade asks).
        """
        from pipeline.store import rewrite_times
        from pipeline.store.repair import repair_ids

        if set(repair_ids(self.store)) <= self.seen:
            return None
        when = rewrite_times(self.store).get(int(object_id))
        return when if when is not None and when > self.since else None


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, modification time in ns) of ``path``; None where it is not there."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


KEY_COLUMNS = ("object_id", "score", "score_std", "rank")
"""What a grade and the page's queue take from the catalog: which objects, their scores, spreads
(``--order uncertainty``) and ranks. A rewrite that changes none of them (nor the model or the
store) leaves the page gradable."""


@dataclass
class CatalogWatch:
    """The run's catalog as a page loaded it, to tell when a score run replaced it since.

    Each check costs one ``stat`` of the catalog file while it is the one loaded. A file replaced
    since is compared with what the page grades by (read once per new file): its model and store
    (provenance) and each object's score, spread and rank (:data:`KEY_COLUMNS`). A rewrite that
    changes none of them leaves the page gradable: the grade consensus of ``lenshunt inspect
    --apply``, a score run that only changes the threshold or the known-lens crossmatch (it
    rescores no object; trial: a threshold change locked every open page as "rescored or new
    objects" with the same 300 scores). Comparing the whole provenance (its date, threshold,
    known-lens catalog) refused those.

    Attributes
    ----------
    run_dir : pathlib.Path
        The run the page grades.
    path : pathlib.Path
        Its ``catalog.parquet``.
    provenance : schemas.catalog.Provenance
        The provenance of the catalog the page loaded.
    loaded : pandas.DataFrame
        The page's :data:`KEY_COLUMNS` but ``object_id``, indexed by object id.
    seen : tuple
        The last file identity checked (:func:`file_identity`, taken before the catalog was read)
        and what :meth:`rewritten` said of it.
    """

    run_dir: Path
    path: Path
    provenance: Provenance
    loaded: pd.DataFrame
    seen: tuple = field(default=(None, None))

    @classmethod
    def start(
        cls, run_dir: Path, path: Path, identity, provenance: Provenance, catalog: pd.DataFrame
    ) -> CatalogWatch:
        """Watch the catalog ``path`` of ``run_dir`` that had ``identity`` before it was read into
        ``catalog`` (its :data:`KEY_COLUMNS` are kept)."""
        return cls(Path(run_dir), Path(path), provenance, key_columns(catalog), (identity, None))

    def rewritten(self) -> str | None:
        """Why the page may not grade: its catalog was replaced by another since; None while not."""
        identity = file_identity(self.path)
        seen, said = self.seen
        if identity is not None and identity == seen:
            return said
        said = self._why(identity)
        self.seen = (identity, said)  # one assignment: the page's threads see one pair or the other
        return said

    def _why(self, identity) -> str | None:
        import pipeline.catalog

        restart = f"restart `lenshunt inspect {self.run_dir}` to grade the new catalog"
        if identity is None:  # a score run with --overwrite removes it first
            return (
                f"the run's catalog {self.path} was removed since this page was opened (a score run with "
                f"--overwrite writes it again): once it is written, {restart}"
            )
        try:
            now = pipeline.catalog.read_provenance(self.path)
            changes = [] if now == self.provenance else self._changes(now)
        except (pipeline.catalog.CatalogError, OSError, ValueError) as error:
            return (
                f"the run's catalog was rewritten since this page was opened and cannot be read ({error}): "
                f"{restart}"
            )
        if not changes:  # e.g. another threshold or known-lens crossmatch, the grades applied
            return None
        was = self.provenance
        return (
            f"the run's catalog was rewritten since this page was opened ({', '.join(changes)}: now "
            f"{now.n_scored} of {now.n_objects} objects scored by {now.model_id} at {now.date_iso()}, this "
            f"page has {was.n_scored} of {was.n_objects} scored by {was.model_id} at {was.date_iso()}): "
            f"{restart}"  # scored objects, not rows (trial: 151 rows said as 151 scored)
        )

    def _changes(self, now: Provenance) -> list[str]:
        """What of the model, the store and the objects' scores and ranks changed; [] when none."""
        import pyarrow.parquet as pq

        was = self.provenance
        changes = []
        if (now.model_id, now.model_sha256) != (was.model_id, was.model_sha256):
            changes.append("scored by another model")
        if now.store_created != was.store_created:
            changes.append("scored from another store")
        present = set(pq.read_schema(self.path).names)
        table = pq.read_table(self.path, columns=[name for name in KEY_COLUMNS if name in present])
        return changes + object_changes(self.loaded, key_columns(table.to_pandas()))


def key_columns(catalog: pd.DataFrame) -> pd.DataFrame:
    """The :data:`KEY_COLUMNS` of ``catalog`` (those it has) as float64, indexed by object id."""
    names = [name for name in KEY_COLUMNS[1:] if name in catalog.columns]
    ids = pd.Index(catalog["object_id"].to_numpy(dtype=np.int64), name="object_id")
    return pd.DataFrame({name: catalog[name].to_numpy(dtype=np.float64) for name in names}, index=ids)


def object_changes(was: pd.DataFrame, now: pd.DataFrame) -> list[str]:
    """What changed between two catalogs' :func:`key_columns`: new objects, objects gone, objects
    with another score, spread or rank (NaN equal to NaN); [] when nothing did.

    Examples
    --------
    >>> was = pd.DataFrame({"score": [0.9, 0.2, np.nan], "rank": [1, 2, 3]}, index=[7, 8, 9])
    >>> object_changes(was, was.copy())
    []
    >>> now = pd.DataFrame({"score": [0.9, 0.3, 0.5], "rank": [1, 3, 2]}, index=[7, 8, 10])
    >>> object_changes(was, now)
    ['1 new object', '1 object gone', '1 object with another score, spread or rank']
    """
    new = now.index.difference(was.index)
    gone = was.index.difference(now.index)
    shared = was.index.intersection(now.index)
    columns = [name for name in was.columns if name in now.columns]
    before, after = (table.loc[shared, columns].to_numpy() for table in (was, now))
    differs = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    counts = (len(new), len(gone), int(differs.any(axis=1).sum()) if len(columns) else 0)
    what = ("new object", "object gone", "object with another score, spread or rank")
    return [
        f"{n} {name.replace('object', 'objects', 1) if n > 1 else name}"
        for n, name in zip(counts, what, strict=True)
        if n
    ]
