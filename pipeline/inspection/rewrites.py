"""What changed under a grading page: the store (an ingest's re-reads), the run's catalog (a score run).

An ingest that finds replaced or late band files re-reads those objects and rewrites their rows
(:mod:`pipeline.store.repair`), so the images a page shows can change under it: a page opened
before (its images read then, or kept by the browser) would record a grade of the old images as
one of the new. :class:`RewriteWatch` tells the page which objects were rewritten after it opened.

A score run into the page's run (rescored by another model, or grown by new objects) replaces its
catalog: a page opened before keeps the old queue and would record a grade with a score and a model
the catalog no longer has (new-user trial), and refuse a new object as not in the catalog.
:class:`CatalogWatch` tells it that the catalog was replaced since it was loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.store import rewritten_since_scored
from schemas.catalog import Provenance

__all__ = ["CatalogWatch", "RewriteWatch", "file_identity", "rewritten_since_scored"]


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


@dataclass
class CatalogWatch:
    """The run's catalog as a page loaded it, to tell when a score run replaced it since.

    Each check costs one ``stat`` of the catalog file while it is the one loaded; a file replaced
    since is told apart by its provenance (Parquet metadata, read once per new file): the grade
    consensus of ``lenshunt inspect --apply`` rewrites the catalog with the same provenance (the
    same scores and model), a score run with its own (its date, model and number of objects).

    Attributes
    ----------
    run_dir : pathlib.Path
        The run the page grades.
    path : pathlib.Path
        Its ``catalog.parquet``.
    provenance : schemas.catalog.Provenance
        The provenance of the catalog the page loaded.
    seen : tuple
        The last file identity checked (:func:`file_identity`, taken before the catalog was read)
        and what :meth:`rewritten` said of it.
    """

    run_dir: Path
    path: Path
    provenance: Provenance
    seen: tuple = field(default=(None, None))

    @classmethod
    def start(cls, run_dir: Path, path: Path, identity, provenance: Provenance) -> CatalogWatch:
        """Watch the catalog ``path`` of ``run_dir`` that had ``identity`` before it was read."""
        return cls(Path(run_dir), Path(path), provenance, (identity, None))

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
        from pipeline.catalog import CatalogError, read_provenance

        restart = f"restart `lenshunt inspect {self.run_dir}` to grade the new catalog"
        if identity is None:  # a score run with --overwrite removes it first
            return (
                f"the run's catalog {self.path} was removed since this page was opened (a score run with "
                f"--overwrite writes it again): once it is written, {restart}"
            )
        try:
            now = read_provenance(self.path)
        except CatalogError as error:
            return (
                f"the run's catalog was rewritten since this page was opened and cannot be read ({error}): "
                f"{restart}"
            )
        if now == self.provenance:
            return None
        was = self.provenance
        return (
            "the run's catalog was rewritten since this page was opened (rescored or new objects: now "
            f"{now.n_scored} of {now.n_objects} objects scored by {now.model_id} at {now.date_iso()}, this "
            f"page has {was.n_scored} of {was.n_objects} scored by {was.model_id} at {was.date_iso()}): "
            f"{restart}"  # scored objects, not rows (trial: 151 rows said as 151 scored)
        )
