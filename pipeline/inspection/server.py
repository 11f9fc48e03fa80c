"""What the grading page of one inspector serves: the queue, the candidates' rows and this inspector's
grades (:class:`InspectSession`); the HTTP layer is :mod:`pipeline.inspection.web`.

Moving forward (``→``, or a grade, which moves on) goes to the next object this inspector has not
graded since the server started (:meth:`InspectSession.next_position`): a reloaded page, or one
sent back with ``←`` to change a grade, returns to where the inspector left off rather than
walking them through objects they graded minutes ago, where one key press would silently replace
a grade. That is what a new ``lenshunt inspect`` does too (it leaves graded objects out of the
queue). ``←`` reaches every object, and shows its grade. With ``--regrade`` the objects graded
before the server started are not passed over: they are what the inspector asked to see again,
and each shows its earlier grade.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError
from pipeline.evaluation.cards import ood_fields
from pipeline.evaluation.grades import (
    GRADES,
    GradeError,
    GradeLog,
    check_grade,
    empty_grades,
    grades_dir,
    latest_grades,
    read_grades,
)
from pipeline.evaluation.outdated import split_outdated, store_rewrites
from pipeline.evaluation.outputs_view import output_caption, score_text
from pipeline.flags import UNUSABLE, describe, documentation
from pipeline.inspection.images import ObjectImages, UnknownObjectError
from pipeline.inspection.queue import OOD_COLUMN, after_refused, candidate_order, order_refused, range_refused
from pipeline.inspection.rewrites import CatalogWatch, RewriteWatch, file_identity, rewritten_since_scored
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec
from schemas.catalog import band_flags_column

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class InspectError(LenshuntError, ValueError):
    """The inspection cannot start: not a scored run, no store, a non-loopback host."""


class CandidateRangeError(LenshuntError, ValueError):
    """Candidates asked for outside the queue, or too many at once (the page's ``/api/candidates``: 400)."""


class CatalogRewrittenError(GradeError):
    """A grade refused: a score run replaced the run's catalog since the page loaded it."""


@dataclass
class InspectSession:
    """What one inspection serves: the queue, the catalog rows, the images and the grade log."""

    run_dir: Path
    catalog: pd.DataFrame
    queue: np.ndarray
    images: ObjectImages
    log: GradeLog
    order: str
    model_id: str
    my_grades: dict[int, str] = field(default_factory=dict)
    """Object id -> this inspector's latest grade (earlier servers' included)."""
    my_times: dict[int, str] = field(default_factory=dict)
    """Object id -> when that grade was given (the log's ISO UTC ``time``)."""
    graded_here: set[int] = field(default_factory=set)
    """Objects graded since this server started: moving forward passes over them."""
    outputs: tuple[OutputSpec, ...] = ()
    """The model's declared outputs shown beside the score (e.g. ``theta_e``)."""
    n_bad_lines: int = 0
    """Unreadable lines (torn by a kill) of this inspector's log, skipped."""
    band_flag_columns: dict[str, str] = field(default_factory=dict)
    """Band -> its ``flags_<band>`` column, in the store's band order, for the bands the catalog has
    one of (none in a catalog written before these columns existed)."""
    n_rewritten: int = 0
    """Objects an ingest re-read into the store (changed files) since the run was scored: their
    images are new, their scores and flags are not (:func:`rewritten_since_scored`)."""
    watch: RewriteWatch | None = None
    """Which objects an ingest rewrote after the page opened (their grades are refused)."""
    catalog_watch: CatalogWatch | None = None
    """Whether a score run replaced the run's catalog after the page loaded it with other scores,
    ranks, objects, model or store (then every grade is refused: its score, model, queue and ranks
    are the old catalog's)."""
    n_outdated: int = 0
    """This inspector's grades made before an ingest re-read their objects' images: not counted as
    graded, so the queue offers those objects again (:mod:`pipeline.evaluation.outdated`)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        inspector: str,
        *,
        store: str | Path | None = None,
        order: str = "score",
        seed: int = 0,
        regrade: bool = False,
    ) -> InspectSession:
        """The session of ``inspector`` on the run in ``run_dir`` (store: the one it scored)."""
        from pipeline.catalog import check_same_store, read_catalog, read_provenance, run_store
        from pipeline.catalog.columns import table_layout
        from pipeline.paths import catalog_parquet
        from pipeline.store import read_attributes

        run_dir = Path(run_dir)
        if not catalog_parquet(run_dir).is_file():
            raise InspectError(
                f"{run_dir} has no catalog.parquet: give the output directory of `lenshunt score` or "
                "`lenshunt run`"
            )
        identity = file_identity(catalog_parquet(run_dir))  # before reading: a rewrite meanwhile shows
        catalog = read_catalog(catalog_parquet(run_dir))
        provenance = read_provenance(catalog_parquet(run_dir))
        store = Path(store or run_store(run_dir, provenance))  # a copy beside the run first
        if not store.exists():
            raise InspectError(
                f"the store {store} that {run_dir} scored is not there; give its new place with --store"
            )
        # the run's object ids name objects of the store it scored only: refuse another set's images
        check_same_store(provenance, store, read_attributes(store).created, run=str(run_dir))
        log = GradeLog(grades_dir(run_dir), inspector)
        mine = read_grades(log.path) if log.path.is_file() else empty_grades()
        n_bad_lines = int(mine.attrs["n_bad_lines"])
        # grades of images an ingest has replaced since no longer count: those objects are offered again
        mine, outdated = split_outdated(latest_grades(mine), store_rewrites(store))
        my_grades = dict(zip(mine["object_id"].tolist(), mine["grade"].tolist()))
        my_times = dict(zip(mine["object_id"].tolist(), mine["time"].tolist()))
        if refused := order_refused(catalog, order):  # trial: --order ood of a catalog without ood_score
            raise InspectError(refused)
        queue = candidate_order(catalog, order, seed=seed, exclude=() if regrade else my_grades)
        images = ObjectImages(store)
        if not band_flag_columns(catalog, images.layout.band_names):  # scored before it had them (review)
            catalog = catalog.join(store_band_flags(store), on="object_id").pipe(_with_attrs, catalog.attrs)
        return cls(
            run_dir=run_dir,
            catalog=catalog.set_index("object_id", drop=False),
            queue=queue,
            images=images,
            log=log,
            order=order,
            model_id=provenance.model_id,
            my_grades=my_grades,
            my_times=my_times,
            outputs=tuple(spec for spec in table_layout(catalog).outputs if spec != DEFAULT_SCORE),
            n_bad_lines=n_bad_lines,
            band_flag_columns=band_flag_columns(catalog, images.layout.band_names),
            n_rewritten=rewritten_since_scored(run_dir, store),
            n_outdated=len(outdated),
            watch=RewriteWatch.start(store),
            catalog_watch=CatalogWatch.start(
                run_dir, catalog_parquet(run_dir), identity, provenance, catalog
            ),
        )

    def next_position(self, after: int) -> int:
        """Queue position of the first object after position ``after`` (-1: from the start) that this
        inspector has not graded since the server started; the queue's length when none is left.

        Examples
        --------
        >>> session = InspectSession.__new__(InspectSession)
        >>> session.queue, session.graded_here = np.array([7, 8, 9, 10]), {8, 9}
        >>> session.next_position(0), session.next_position(-1), session.next_position(3)
        (3, 0, 4)

        Raises
        ------
        CandidateRangeError
            For ``after`` outside -1 to the last position, in the words of the page's ``/api/next``
            (:func:`~pipeline.inspection.queue.after_refused`; trial: clamped here, unsaid, where the
            page refused).
        """
        refused = after_refused(after, len(self.queue))
        if refused:
            raise CandidateRangeError(refused)
        ids = self.queue.tolist()
        start = after + 1
        return next((i for i in range(start, len(ids)) if ids[i] not in self.graded_here), len(ids))

    def info(self) -> dict:
        first = self.next_position(-1)
        return {
            "inspector": self.log.inspector,
            "order": self.order,
            "run": str(self.run_dir),
            "model_id": self.model_id,
            "catalog_rewritten": self.catalog_rewritten(),
            "panels": self.images.panels,
            "scale_bars": self.images.scale_bars,
            "n_candidates": len(self.queue),
            **self.counts(),
            "first_ungraded": first,
            "grades": list(GRADES),
            "no_pixel_flags": describe(int(UNUSABLE)),
            "flag_meanings": documentation(),
            "outputs": [
                {"name": spec.name, "kind": spec.kind, "unit": spec.unit, "description": spec.description}
                for spec in self.outputs
            ],
            "has_ood_score": OOD_COLUMN in self.catalog.columns,  # not in a model without statistics
        }

    def counts(self) -> dict[str, int]:
        """This inspector's graded objects and skipped ones apart (``n_graded``, ``n_skipped``): a skip
        is no grade (trial: the page's "graded" count took skips in)."""
        n_skipped = sum(grade == "skip" for grade in self.my_grades.values())
        return {"n_graded": len(self.my_grades) - n_skipped, "n_skipped": n_skipped}

    def counted(self) -> str:
        """:meth:`counts` in words, as the page's header says them: ``"12 graded, 3 skipped"``."""
        counts = self.counts()
        return f"{counts['n_graded']} graded, {counts['n_skipped']} skipped"

    def catalog_rewritten(self) -> str | None:
        """Why this page may no longer grade (a score run replaced the run's catalog); None if not."""
        return self.catalog_watch.rewritten() if self.catalog_watch is not None else None

    def check_current(self) -> None:
        """Refuse to serve the queue once a score run replaced the run's catalog: its objects, order,
        scores and ranks are the old catalog's (trial: ``/api/candidates`` served them on while grades
        were refused).

        Raises
        ------
        CatalogRewrittenError
            Saying why, and to restart ``lenshunt inspect`` (as :meth:`grade` does).
        """
        rewritten = self.catalog_rewritten()
        if rewritten is not None:
            raise CatalogRewrittenError(rewritten)

    def candidates(self, start: int, n: int) -> list[dict]:
        """``n`` candidates of the queue from position ``start`` (fewer at its end).

        Raises
        ------
        CatalogRewrittenError
            As :meth:`check_current` says.
        CandidateRangeError
            For ``start`` outside 0 to the queue's length or ``n`` outside 1 to
            :data:`~pipeline.inspection.queue.MAX_BATCH` (200), in the words of the page's
            ``/api/candidates`` (:func:`~pipeline.inspection.queue.range_refused`; trial: clamped here,
            unsaid, where the page refused).
        """
        self.check_current()
        refused = range_refused(start, n, len(self.queue))
        if refused:
            raise CandidateRangeError(refused)
        ids = self.queue[start : start + n]
        return [self._candidate(int(object_id), start + i) for i, object_id in enumerate(ids)]

    def _candidate(self, object_id: int, position: int) -> dict:
        row = self.catalog.loc[object_id]

        def number(value) -> float | None:
            value = float(value)
            return value if math.isfinite(value) else None

        return {
            "position": position,
            "object_id": object_id,
            "score": number(row["score"]),
            "score_text": score_text(float(row["score"]), 4),  # "1 − 4e-8" where 4 decimals say 1.0000
            "score_std": number(row["score_std"]),
            "rank": int(row["rank"]),
            "flags": describe(int(row["flags"])),
            "band_flags": {  # left out where the store has none for it (an id it lost)
                band: describe(int(value))
                for band, name in self.band_flag_columns.items()
                if (value := row[name]) >= 0
            },
            "ra": number(row["ra"]),
            "dec": number(row["dec"]),
            "known_lens": str(row["known_lens"]),
            "known_lens_grade": str(row["known_lens_grade"]),
            "known_lens_sep": number(row["known_lens_sep"]),
            "outputs": [output_caption(spec, row) for spec in self.outputs],
            **ood_fields(row),
            "grade": self.my_grades.get(object_id),
            "grade_time": self.my_times.get(object_id),
        }

    def grade(self, object_id: int, grade: str, *, replacing: str | None = None) -> dict:
        """Save one grade (durably) and remember it for the page.

        Parameters
        ----------
        object_id : int
            The graded object.
        grade : str
            One of :data:`~pipeline.evaluation.grades.GRADES`.
        replacing : str or None
            The ``time`` of this inspector's grade of the object that the page showed (its
            ``grade_time``), None where it showed none.

        Returns
        -------
        dict
            ``saved``: the log row written; ``previous``: the grade it replaces (``grade`` and
            ``time``) or None; ``unseen``: True when that grade is not the one the page showed (another
            tab, or another session of this inspector, gave it meanwhile); ``message``: what the page
            says of it (:func:`saved_message`).

        Raises
        ------
        GradeError
            For an ``object_id`` that is not an integer (a bool or a float included), a grade not
            of :data:`~pipeline.evaluation.grades.GRADES`, an object the run did not score (not in
            the queue), or an object whose images an ingest rewrote after the page opened.
        CatalogRewrittenError
            For any grade once a score run replaced the run's catalog since the page loaded it
            (rescored, or grown by new objects): it would record the old catalog's score and model.
        UnknownObjectError
            For an id the run's catalog does not hold.
        """
        self.check_current()  # trial: grades saved with the old model's scores after a rescoring
        if not isinstance(object_id, int | np.integer) or isinstance(object_id, bool):
            raise GradeError(
                f"object_id {object_id!r} is not an integer: give the object's id as a JSON integer"
            )
        object_id = int(object_id)
        if not INT64_MIN <= object_id <= INT64_MAX or object_id not in self.catalog.index:
            raise UnknownObjectError(f"object {object_id} is not in the run's catalog")
        score = float(self.catalog.loc[object_id, "score"])
        if not math.isfinite(score):  # trial: saved, and counted as a graded object
            flags = ", ".join(describe(int(self.catalog.loc[object_id, "flags"]))) or "none"
            raise GradeError(
                f"object {object_id} is not in the queue: it has no score in this run (flags: {flags}); "
                "only scored objects are graded"
            )
        grade = check_grade(grade)
        if replacing is not None and not isinstance(replacing, str):
            raise GradeError(f"replacing {replacing!r} is not the time of a grade: give a string or null")
        changed = self.watch.rewritten(object_id) if self.watch is not None else None
        if changed is not None:  # trial: a grade of the old images, made on a page opened before
            raise GradeError(
                f"the images of object {object_id} were re-read by an ingest at {changed:%Y-%m-%d %H:%M:%S} "
                "UTC, after this page opened: restart `lenshunt inspect` to see them, then grade it"
            )
        with self.lock:  # trial: two tabs of one inspector replaced each other's grades unawares
            before = self.my_grades.get(object_id)
            previous = None if before is None else {"grade": before, "time": self.my_times[object_id]}
            row = self.log.append(object_id, grade, score=score, model_id=self.model_id)
            self.my_grades[object_id], self.my_times[object_id] = grade, row["time"]
            self.graded_here.add(object_id)
        unseen = previous is not None and previous["time"] != replacing
        message = saved_message(object_id, grade, previous, unseen, self.log.inspector)
        return {"saved": row, "previous": previous, "unseen": unseen, "message": message}


def saved_message(object_id: int, grade: str, previous: dict | None, unseen: bool, inspector: str) -> str:
    """What the page says of a saved grade: what it replaced, and that a skip withdraws a grade.

    The latest grade of each (object, inspector) counts and a skip is no grade, so a skip given
    after a grade withdraws it from the consensus (trial: the page said "was A, now skip" as if the
    skip were a grade, and the A dropped out of ``grade_n`` unsaid).

    Examples
    --------
    >>> print(saved_message(7, "skip", {"grade": "A", "time": "2026-12-05T12:03:05Z"}, False, "ann"))
    Saved skip for 7: grade A withdrawn (a skip is no grade: it no longer counts; grade 7 again to give one).
    >>> saved_message(7, "X", {"grade": "A", "time": "2026-12-05T12:03:05Z"}, False, "ann")
    'Saved X for 7: was A, now X.'
    """
    said = f"Saved {grade} for {object_id}."
    if previous is None:
        return said
    before = previous["grade"]
    withdrawn = grade == "skip" and before != "skip"
    if unseen:  # another tab or session of this inspector graded it meanwhile
        when = str(previous["time"]).replace("T", " ")[:19]
        said = (
            f"Saved {grade} for {object_id}: it replaced {before} given at {when} UTC in another tab or "
            f"session of {inspector}, which this page did not show."
        )
        return said + (" That grade is withdrawn (a skip is no grade)." if withdrawn else "")
    if withdrawn:
        return (
            f"Saved skip for {object_id}: grade {before} withdrawn (a skip is no grade: it no longer counts; "
            f"grade {object_id} again to give one)."
        )
    if before != grade:
        return f"Saved {grade} for {object_id}: was {before}, now {grade}."
    return f"Saved {grade} for {object_id} again (it was {grade})."


def band_flag_columns(catalog: pd.DataFrame, bands: list[str]) -> dict[str, str]:
    """Band -> name of its per-band flags column (``flags_<band>``), for each of ``bands`` (in their
    order) that ``catalog`` has one for; empty for a catalog written before these columns existed.

    Parameters
    ----------
    catalog : pandas.DataFrame
        The run's catalog.
    bands : list of str
        The store's band names, in its order.

    Returns
    -------
    dict of str to str
        Band name -> column name.

    Examples
    --------
    >>> band_flag_columns(pd.DataFrame(columns=["flags", "flags_VIS", "flags_H"]), ["VIS", "Y", "H"])
    {'VIS': 'flags_VIS', 'H': 'flags_H'}
    """
    names = {band: band_flags_column(band).name for band in bands}
    return {band: name for band, name in names.items() if name in catalog.columns}


def _with_attrs(table: pd.DataFrame, attrs: dict) -> pd.DataFrame:
    """``table`` with ``attrs`` (the catalog's layout, which a join drops)."""
    table.attrs = dict(attrs)
    return table


def store_band_flags(store: Path) -> pd.DataFrame:
    """Each band's ingest flags in the store, as the ``flags_<band>`` columns of a score run's catalog.

    For a run scored before its catalog had them (2026-12-02): the page still shows which band of a
    candidate is flagged. Indexed by object id (rows with a lost id, or one seen twice, left out).

    Returns
    -------
    pandas.DataFrame
        One int32 column ``flags_<band>`` per band, in the store's order (:func:`read_band_flags`).
    """
    from pipeline.store import open_store
    from pipeline.store.columns import read_band_flags
    from pipeline.store.zarr_store import read_column

    dataset = open_store(store, chunks=None)
    per_band = read_band_flags(dataset, store)
    frame = pd.DataFrame(
        {band_flags_column(band).name: values for band, values in per_band.items()},
        index=pd.Index(read_column(dataset, "object_id"), name="object_id"),
    )
    return frame[(frame.index >= 0) & ~frame.index.duplicated(keep=False)]
