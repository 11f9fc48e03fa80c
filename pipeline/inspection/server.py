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
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError
from pipeline.evaluation.cards import ood_fields
from pipeline.evaluation.gallery import flag_reason_text
from pipeline.evaluation.grade_rows import MAX_COMMENT, check_comment
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
from pipeline.inspection.band_flags import band_flag_columns, with_band_flags
from pipeline.inspection.goto import find_position
from pipeline.inspection.grown import grown_catalog, read_run_catalog
from pipeline.inspection.ids import id_text, posted_object_id
from pipeline.inspection.images import ObjectImages, UnknownObjectError
from pipeline.inspection.queue import OOD_COLUMN, after_refused, candidate_order, order_refused, range_refused
from pipeline.inspection.rewrites import CatalogWatch, RewriteWatch, rewritten_since_scored
from pipeline.inspection.saved import saved_message
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec


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
    my_comments: dict[int, str] = field(default_factory=dict)
    """Object id -> the comment given with that grade ("" for none)."""
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
    """Whether a score run replaced the run's catalog after the page loaded it with other scores or
    spreads of its objects, fewer objects, another model or store (then every grade is refused: its
    score, model and queue are the old catalog's), or only grew it (:meth:`reload_grown`)."""
    seed: int = 0
    """The seed of ``--order random``."""
    excluded: frozenset[int] = frozenset()
    """Objects the queue leaves out: those graded before the server started (none with ``--regrade``)."""
    n_outdated: int = 0
    """This inspector's grades made before an ingest re-read their objects' images: not counted as
    graded, so the queue offers those objects again (:mod:`pipeline.evaluation.outdated`)."""
    generation: int = 0
    """The queue's generation: one more each time a reloaded page took in a grown catalog (a tab with
    an older one shows positions of another queue: :mod:`pipeline.inspection.web` says it in each answer)."""
    server_id: str = field(default_factory=lambda: secrets.token_hex(8))
    """This session's own id, new each time ``lenshunt inspect`` starts: a tab loaded from an earlier
    server (a new round at the same address) holds another queue though its generation may match."""
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
        from pipeline.catalog import check_same_store, run_store
        from pipeline.catalog.columns import table_layout
        from pipeline.paths import catalog_parquet
        from pipeline.store import read_attributes

        run_dir = Path(run_dir)
        if not catalog_parquet(run_dir).is_file():
            raise InspectError(
                f"{run_dir} has no catalog.parquet: give the output directory of `lenshunt score` or "
                "`lenshunt run`"
            )
        identity, catalog, provenance = read_run_catalog(run_dir)
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
        my_comments = dict(zip(mine["object_id"].tolist(), mine["comment"].tolist()))
        if refused := order_refused(catalog, order):  # trial: --order ood of a catalog without ood_score
            raise InspectError(refused)
        excluded = frozenset() if regrade else frozenset(my_grades)
        queue = candidate_order(catalog, order, seed=seed, exclude=excluded)
        images = ObjectImages(store)
        catalog = with_band_flags(catalog, store, images.layout.band_names)
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
            my_comments=my_comments,
            outputs=tuple(spec for spec in table_layout(catalog).outputs if spec != DEFAULT_SCORE),
            n_bad_lines=n_bad_lines,
            band_flag_columns=band_flag_columns(catalog, images.layout.band_names),
            n_rewritten=rewritten_since_scored(run_dir, store),
            n_outdated=len(outdated),
            watch=RewriteWatch.start(store),
            catalog_watch=CatalogWatch.start(
                run_dir, catalog_parquet(run_dir), identity, provenance, catalog
            ),
            seed=seed,
            excluded=excluded,
        )

    def reload_grown(self) -> str | None:
        """Load the run's catalog again where a score run only added objects to it (or scored objects
        it had without a score) since: they join the queue (in its order), the others keep their
        places in it. What a reloaded page asks (the page says to reload: :meth:`CatalogWatch.gained`).

        Returns
        -------
        str or None
            What joined, for the page; None where nothing was loaded (the catalog did not grow, or
            was rewritten otherwise, which :meth:`catalog_rewritten` says).
        """
        started = pd.Timestamp.now(tz="UTC")  # a re-read after this is one of images a page showed
        grown = grown_catalog(self.run_dir, self.catalog_watch, self.images.store)
        if grown is None:
            return None
        queue = candidate_order(grown.catalog, self.order, seed=self.seed, exclude=self.excluded)
        joined = np.setdiff1d(queue, self.queue)  # new, or scored since: no page showed them
        with self.lock:  # the catalog first: each id of either queue is in it
            self.images, self.catalog = grown.images, grown.catalog.set_index("object_id", drop=False)
            self.queue, self.catalog_watch, self.generation = queue, grown.watch, self.generation + 1
            self.watch = self.watch.join(joined, started) if self.watch is not None else None
            self.n_rewritten = rewritten_since_scored(self.run_dir, grown.images.store)
        return f"{grown.joined()} joined the queue ({len(queue)} candidates now)."

    def find(self, text: object) -> dict:
        """The queue position of the object id or rank ``text`` (the page's "go to"):
        ``{"position": i, "object_id": id}`` (the id as its decimal string: :func:`id_text`).

        Raises
        ------
        CatalogRewrittenError
            As :meth:`check_current` says.
        GotoError
            Saying why no position shows it (:func:`~pipeline.inspection.goto.find_position`).
        """
        self.check_current()
        position = find_position(self.catalog, self.queue, text, self.my_grades)
        return {"position": position, "object_id": id_text(self.queue[position])}

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

    def info(self, *, reload: bool = False) -> dict:
        """What the page loads first; ``reload``: a page loaded anew takes in a catalog that only grew
        (:meth:`reload_grown`; ``catalog_reloaded`` says what joined)."""
        reloaded = self.reload_grown() if reload else None
        first = self.next_position(-1)
        return {
            "inspector": self.log.inspector,
            "order": self.order,
            "run": str(self.run_dir),
            "model_id": self.model_id,
            "catalog_rewritten": self.catalog_rewritten(),
            "catalog_grown": self.catalog_grown(),
            "catalog_reloaded": reloaded,
            "panels": self.images.panels,
            "scale_bars": self.images.scale_bars,
            "n_candidates": len(self.queue),
            "queue_generation": self.generation,
            "server_id": self.server_id,
            "max_comment": MAX_COMMENT,
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

    def catalog_grown(self) -> str | None:
        """What the run's catalog gained that this page does not show, and to reload the page; None
        when nothing (:meth:`CatalogWatch.gained`)."""
        return self.catalog_watch.gained() if self.catalog_watch is not None else None

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
            "object_id": id_text(object_id),  # a JSON number is rounded in the page beyond 2**53
            "score": number(row["score"]),
            "score_text": score_text(float(row["score"]), 4),  # "1 − 4e-8" where 4 decimals say 1.0000
            "score_std": number(row["score_std"]),
            "rank": int(row["rank"]),
            "flags": describe(int(row["flags"])),
            "flag_reason": flag_reason_text(row),  # why, in words; "" in a catalog without the column
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
            "grade_comment": self.my_comments.get(object_id, "") if object_id in self.my_grades else "",
        }

    def grade(
        self, object_id: int, grade: str, *, replacing: str | None = None, comment: str | None = None
    ) -> dict:
        """Save one grade (durably) and remember it for the page.

        Parameters
        ----------
        object_id : int or str
            The graded object: its decimal string, as the page sends it, or an integer.
        grade : str
            One of :data:`~pipeline.evaluation.grades.GRADES`.
        replacing : str or None
            The ``time`` of this inspector's grade of the object that the page showed (its
            ``grade_time``), None where it showed none.
        comment : str or None
            The inspector's note with the grade (at most 1000 characters; None or "": none).

        Returns
        -------
        dict
            ``saved``: the log row written (its ``object_id`` as a decimal string); ``previous``: the grade it
            replaces (``grade`` and ``time``) or None; ``unseen``: True when that grade is not the one the
            page showed (another tab, or another session of this inspector, gave it meanwhile); ``message``:
            what the page says of it (:func:`saved_message`); ``catalog_grown``: what the run's catalog gained
            that the page does not show (:meth:`catalog_grown`), or None.

        Raises
        ------
        GradeError
            For an ``object_id`` that is not an integer or a string of one (a bool or a float included) or is
            outside int64 (:func:`~pipeline.inspection.ids.posted_object_id`), a grade not of
            :data:`~pipeline.evaluation.grades.GRADES`, a comment not text or too long, an object the run did
            not score (not in the queue), or an object whose images an ingest rewrote after the page opened.
        CatalogRewrittenError
            For any grade once a score run replaced the run's catalog since the page loaded it
            (rescored, or objects gone): it would record the old catalog's score and model. A catalog
            that only grew is none of that: grades of the page's objects are taken.
        UnknownObjectError
            For an id the run's catalog does not hold.
        """
        self.check_current()  # trial: grades saved with the old model's scores after a rescoring
        object_id = posted_object_id(object_id)  # the page's decimal string, exact beyond 2**53
        grown = self.catalog_grown()
        reload = f" ({grown})" if grown else ""  # trial: a new object refused as not in the catalog
        if object_id not in self.catalog.index:
            raise UnknownObjectError(f"object {object_id} is not in the run's catalog{reload}")
        score = float(self.catalog.loc[object_id, "score"])
        if not math.isfinite(score):  # trial: saved, and counted as a graded object
            flags = ", ".join(describe(int(self.catalog.loc[object_id, "flags"]))) or "none"
            raise GradeError(
                f"object {object_id} is not in the queue: it has no score in this run (flags: {flags}); "
                f"only scored objects are graded{reload}"
            )
        grade, comment = check_grade(grade), check_comment(comment)
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
            row = self.log.append(object_id, grade, score=score, model_id=self.model_id, comment=comment)
            self.my_grades[object_id], self.my_times[object_id] = grade, row["time"]
            self.my_comments[object_id] = comment
            self.graded_here.add(object_id)
        unseen = previous is not None and previous["time"] != replacing
        message = saved_message(object_id, grade, previous, unseen, self.log.inspector)
        return {
            "saved": {**row, "object_id": id_text(object_id)},  # the log keeps the JSON integer
            "previous": previous,
            "unseen": unseen,
            "message": message,
            "catalog_grown": grown,
        }
