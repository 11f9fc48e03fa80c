"""What changed under a grading page: the store (an ingest's re-reads), the run's catalog (a score run).

An ingest that finds replaced or late band files re-reads those objects and rewrites their rows
(:mod:`pipeline.store.repair`), so the images a page shows can change under it: a page opened
before (its images read then, or kept by the browser) would record a grade of the old images as
one of the new. :class:`RewriteWatch` tells the page which objects were rewritten after it opened.

A score run into the page's run (rescored by another model, or grown by new objects) replaces its
catalog: a page opened before keeps the old queue and would record a grade with a score and a model
the catalog no longer has (new-user trial). :class:`CatalogWatch` tells it that the catalog was
replaced since it was loaded, and what changed; a rewrite with the same model, store, and the same
scores and spreads of the page's objects (another threshold, the grades applied) is none of that,
and one that only adds objects (or scores objects that had no score) leaves the page gradable and
says to reload it to see them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.store import rewritten_since_scored
from schemas.catalog import Provenance

__all__ = [
    "KEY_COLUMNS",
    "SCORE_TOLERANCE",
    "CatalogWatch",
    "RewriteWatch",
    "file_identity",
    "gained_note",
    "key_columns",
    "object_changes",
    "object_gains",
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
    joined : dict of int to pandas.Timestamp
        Objects that joined the page's queue later, and when (a page reloaded on a grown catalog:
        :meth:`pipeline.inspection.server.InspectSession.reload_grown`): no page showed them before,
        so a re-read before then is none of their grades' concern (a late band file's object).
    """

    store: Path
    seen: frozenset[str]
    since: pd.Timestamp
    joined: dict[int, pd.Timestamp] = field(default_factory=dict, hash=False)

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
        since = self.joined.get(int(object_id), self.since)
        return when if when is not None and when > since else None

    def join(self, object_ids, when: pd.Timestamp) -> RewriteWatch:
        """This watch with ``object_ids`` joined the page's queue at ``when`` (:attr:`joined`)."""
        return replace(self, joined={**self.joined, **{int(object_id): when for object_id in object_ids}})


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, modification time in ns) of ``path``; None where it is not there."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


KEY_COLUMNS = ("object_id", "score", "score_std")
"""What a grade takes from the catalog: which objects, their scores and spreads (the queue's order,
``--order uncertainty`` included). A rewrite that changes none of them for the objects the page
loaded (nor the model or the store) leaves the page gradable. Ranks are left out: a score run that
adds objects shifts the ranks of those after them, and a grade is of an object, not of its rank
(trial: a late band file's objects, scored, refused every grade as "597 objects with another
score, spread or rank")."""

SCORE_TOLERANCE = {"score": (1e-5, 1e-7), "score_std": (1e-5, 1e-5)}
"""(rtol, atol) of :func:`numpy.isclose` within which a loaded object's score and spread are the
same after a rewrite (:func:`object_changes`): float32 rounding, not a change. Compared exactly, a
rerun that only added objects refused every grade as "N objects with another score or spread"
where a real model (another batch composition, oneDNN or GPU kernels: another summation order)
gave the unchanged objects of a rescored chunk scores off in their last bits.

A model computes in float32 (eps 1.2e-7): such a rerun moves a score by a few to some tens of
float32 ulps, a relative 1e-7 to 1e-6 (a float64 sigmoid head, :mod:`pipeline.models.logits`,
moves by less still). rtol 1e-5 (about 80 ulps) takes that, with atol 1e-7 for scores near 0: a
score within about 1e-5 is the same, under the 4 decimals the page shows; what that leaves unsaid is a
change of a best candidate's "1 − 1e-10" to "1 − 1e-8" (the float64 head's digits past float32),
no change to a grade. The spread (float32, a std over members and augmentations of such scores)
takes rtol 1e-5 and atol 1e-5: a spread near 0 (members that agree) is itself rounding of their
scores. Another model moves scores by far more (two untrained test models of one seed, whose
recipes differ, by a relative 1e-4 near 0.5), and is refused."""


@dataclass
class CatalogWatch:
    """The run's catalog as a page loaded it, to tell when a score run replaced it since.

    Each check costs one ``stat`` of the catalog file while it is the one loaded. A file replaced
    since is compared with what the page grades by (read once per new file): its model and store
    (provenance) and each loaded object's score and spread (:data:`KEY_COLUMNS`). A rewrite that
    changes none of them leaves the page gradable: the grade consensus of ``lenshunt inspect
    --apply``, a score run that only changes the threshold or the known-lens crossmatch (it
    rescores no object; trial: a threshold change locked every open page as "rescored or new
    objects" with the same 300 scores), or one that only adds objects (or scores objects the page
    had without a score: their band files came late), which :meth:`gained` says (a reloaded page
    shows them: :meth:`pipeline.inspection.server.InspectSession.reload_grown`). Comparing the
    whole provenance (its date, threshold, known-lens catalog) refused those.

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
        and what :meth:`rewritten` and :meth:`gained` said of it.
    """

    run_dir: Path
    path: Path
    provenance: Provenance
    loaded: pd.DataFrame
    seen: tuple = field(default=(None, (None, None)))

    @classmethod
    def start(
        cls, run_dir: Path, path: Path, identity, provenance: Provenance, catalog: pd.DataFrame
    ) -> CatalogWatch:
        """Watch the catalog ``path`` of ``run_dir`` that had ``identity`` before it was read into
        ``catalog`` (its :data:`KEY_COLUMNS` are kept)."""
        return cls(Path(run_dir), Path(path), provenance, key_columns(catalog), (identity, (None, None)))

    def rewritten(self) -> str | None:
        """Why the page may not grade: its catalog was replaced by another since; None while not."""
        return self._check()[0]

    def gained(self) -> str | None:
        """What the page does not show of the run's catalog, which grew since it was loaded (new
        objects, or objects scored since), and to reload the page to see them; None while it did not
        grow, or when the page may not grade (:meth:`rewritten`)."""
        return self._check()[1]

    def _check(self) -> tuple[str | None, str | None]:
        identity = file_identity(self.path)
        seen, said = self.seen
        if identity is not None and identity == seen:
            return said
        said = self._why(identity)
        self.seen = (identity, said)  # one assignment: the page's threads see one pair or the other
        return said

    def _why(self, identity) -> tuple[str | None, str | None]:
        import pipeline.catalog

        restart = f"restart `lenshunt inspect {self.run_dir}` to grade the new catalog"
        if identity is None:  # a score run with --overwrite removes it first
            return (
                f"the run's catalog {self.path} was removed since this page was opened (a score run with "
                f"--overwrite writes it again): once it is written, {restart}"
            ), None
        try:
            now = pipeline.catalog.read_provenance(self.path)
            changes, gained = ([], (0, 0)) if now == self.provenance else self.changes(now, self._keys())
        except (pipeline.catalog.CatalogError, OSError, ValueError) as error:
            return (
                f"the run's catalog was rewritten since this page was opened and cannot be read ({error}): "
                f"{restart}"
            ), None
        if not changes:  # another threshold or known-lens crossmatch, the grades applied, new objects
            return None, gained_note(*gained)
        was = self.provenance
        return (
            f"the run's catalog was rewritten since this page was opened ({', '.join(changes)}: now "
            f"{now.n_scored} of {now.n_objects} objects scored by {now.model_id} at {now.date_iso()}, this "
            f"page has {was.n_scored} of {was.n_objects} scored by {was.model_id} at {was.date_iso()}): "
            f"{restart}"  # scored objects, not rows (trial: 151 rows said as 151 scored)
        ), None

    def _keys(self) -> pd.DataFrame:
        import pyarrow.parquet as pq

        present = set(pq.read_schema(self.path).names)
        table = pq.read_table(self.path, columns=[name for name in KEY_COLUMNS if name in present])
        return key_columns(table.to_pandas())

    def changes(self, now: Provenance, keys: pd.DataFrame) -> tuple[list[str], tuple[int, int]]:
        """What of the model, the store and the loaded objects' scores and spreads changed in a
        catalog of provenance ``now`` and :func:`key_columns` ``keys`` ([] when none), and what it
        gained (:func:`object_gains`)."""
        was = self.provenance
        changes = []
        if (now.model_id, now.model_sha256) != (was.model_id, was.model_sha256):
            changes.append("scored by another model")
        if now.store_created != was.store_created:
            changes.append("scored from another store")
        return changes + object_changes(self.loaded, keys), object_gains(self.loaded, keys)


def key_columns(catalog: pd.DataFrame) -> pd.DataFrame:
    """The :data:`KEY_COLUMNS` of ``catalog`` (those it has) as float64, indexed by object id."""
    names = [name for name in KEY_COLUMNS[1:] if name in catalog.columns]
    ids = pd.Index(catalog["object_id"].to_numpy(dtype=np.int64), name="object_id")
    return pd.DataFrame({name: catalog[name].to_numpy(dtype=np.float64) for name in names}, index=ids)


def object_changes(was: pd.DataFrame, now: pd.DataFrame) -> list[str]:
    """What changed between two catalogs' :func:`key_columns` that a page of ``was`` cannot grade
    on: objects gone, objects with another score or spread (NaN equal to NaN); [] when none did.
    Scores and spreads within float32 rounding (:data:`SCORE_TOLERANCE`) are the same: a real model
    rescoring a chunk gives an unchanged object a score off in its last bits.

    New objects are none of it, nor objects that had no score and have one now (their band files
    came late): a page of ``was`` did not offer them (:func:`object_gains` counts them). An object
    that had a score and has none now is one with another score.

    Examples
    --------
    >>> was = pd.DataFrame({"score": [0.9, 0.2, np.nan, 0.4]}, index=[7, 8, 9, 11])
    >>> object_changes(was, was.copy())
    []
    >>> now = pd.DataFrame({"score": [0.9, 0.3, 0.5, 0.4, 0.8]}, index=[7, 8, 9, 11, 12])
    >>> object_changes(was, now)
    ['1 object with another score or spread']
    >>> object_changes(was, now.drop([7, 8, 11]))
    ['3 objects gone']
    >>> object_changes(was, was * (1 + 1e-7))  # about 1 float32 ulp: rounding, not a change
    []
    >>> object_changes(was, was.assign(score=was["score"] - 1e-4))  # 1e-4: a change
    ['3 objects with another score or spread']
    """
    gone = was.index.difference(now.index)
    shared = was.index.intersection(now.index)
    columns = [name for name in was.columns if name in now.columns]
    differs = np.zeros((len(shared), len(columns)), dtype=bool)
    for j, name in enumerate(columns):
        before, after = (table.loc[shared, name].to_numpy(dtype=np.float64) for table in (was, now))
        rtol, atol = SCORE_TOLERANCE.get(name, (0.0, 0.0))
        differs[:, j] = ~np.isclose(before, after, rtol=rtol, atol=atol, equal_nan=True)
    if "score" in columns:  # scored since: a new candidate, whatever its spread was (NaN) and is
        differs[_unscored(was.loc[shared]) & ~_unscored(now.loc[shared])] = False
    counts = (len(gone), int(differs.any(axis=1).sum()) if len(columns) else 0)
    what = ("object gone", "object with another score or spread")
    return [
        f"{n} {name.replace('object', 'objects', 1) if n > 1 else name}"
        for n, name in zip(counts, what, strict=True)
        if n
    ]


def _unscored(table: pd.DataFrame) -> np.ndarray:
    return np.isnan(table["score"].to_numpy(dtype=np.float64))


def object_gains(was: pd.DataFrame, now: pd.DataFrame) -> tuple[int, int]:
    """(new objects, objects scored since) of two catalogs' :func:`key_columns`: what a catalog
    ``now`` has that a page of ``was`` does not offer.

    Examples
    --------
    >>> was = pd.DataFrame({"score": [0.9, np.nan, np.nan]}, index=[7, 8, 9])
    >>> object_gains(was, pd.DataFrame({"score": [0.9, 0.4, np.nan, 0.1]}, index=[7, 8, 9, 10]))
    (1, 1)
    """
    new = len(now.index.difference(was.index))
    if "score" not in was.columns or "score" not in now.columns:
        return new, 0
    shared = was.index.intersection(now.index)
    return new, int((_unscored(was.loc[shared]) & ~_unscored(now.loc[shared])).sum())


def gained_note(new: int, scored: int) -> str | None:
    """What a page says of a catalog that gained ``new`` objects and ``scored`` newly scored ones.

    Examples
    --------
    >>> print(gained_note(3, 0))
    the run's catalog gained 3 objects since this page was loaded (a score run): reload the page to see them
    >>> print(gained_note(0, 1))  # doctest: +NORMALIZE_WHITESPACE
    the run's catalog gained 1 object (0 new, 1 scored since: its band files came late) since this page
    was loaded (a score run): reload the page to see it
    >>> gained_note(0, 0) is None
    True
    """
    n = new + scored
    if not n:
        return None
    late = "its band files" if scored == 1 else "their band files"
    parts = f" ({new} new, {scored} scored since: {late} came late)" if scored else ""
    return (
        f"the run's catalog gained {n} object{'s' if n > 1 else ''}{parts} since this page was loaded (a "
        f"score run): reload the page to see {'them' if n > 1 else 'it'}"
    )
