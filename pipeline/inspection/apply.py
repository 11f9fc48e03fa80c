"""After grading: the consensus columns written into the run's catalogs, and what a round changed.

:func:`apply_grades` reads the run's catalog and every grade log of ``RUN_DIR/grades/``, adds the
consensus columns of :mod:`pipeline.evaluation.consensus` (``grade_n``, ``grade_mean``,
``grade_std``, ``grade_mode``, ``grade_agreement``) and the inspectors' comments
(``grade_comments``: :mod:`pipeline.evaluation.grade_comments`) and rewrites ``catalog.fits``,
``catalog.parquet``, ``catalog.vot`` and ``catalog_hats/`` with the same provenance (the
catalog writer's checks and atomic replace apply). Run it again after more grading; it replaces
the columns. :func:`round_change` compares the catalogs of two runs on the same store (before and
after fine-tuning on grades).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluation.consensus import consensus, consensus_columns, consensus_summary, grade_labels
from pipeline.evaluation.grade_comments import COMMENTS_COLUMN, comments_column
from pipeline.evaluation.grades import (
    GradeError,
    bad_lines_text,
    export_grades,
    grade_files,
    grade_notes,
    grades_dir,
    latest_grades,
    read_grades,
    split_unknown,
    unknown_note,
)
from pipeline.evaluation.outdated import outdated_note, split_outdated, store_rewrites
from pipeline.locking import score_folder_lock
from schemas.catalog import GRADE_COLUMN_NAMES

APPLY_COMMAND = "lenshunt inspect --apply"
"""What the catalog files it rewrites record as their writer (a later score run that keeps them says
so, with the time they were written: :func:`pipeline.catalog.digest.last_written`)."""


def apply_grades(run_dir: str | Path, *, hats: bool = True, store: str | Path | None = None) -> dict:
    """Write the grade consensus into the catalogs of ``run_dir``; returns the consensus summary.

    Grades made before an ingest re-read their object's images are left out
    (:mod:`pipeline.evaluation.outdated`; ``store``: the scored store, default the catalog's); the
    summary counts them (``n_outdated``) and says so (``outdated_note``), and counts the log lines
    that are not grades (``n_bad_lines``: torn by a kill, or damaged). Grades of ids the catalog does
    not hold are left out too (``n_unknown_objects``, ``unknown_note``). ``notes``: the warning lines of
    :func:`~pipeline.evaluation.grades.grade_notes` (lines skipped, files of ``grades/`` not read).
    ``n_commented``: the objects whose ``grade_comments`` holds a comment. With no grade yet (none,
    or only skips without a comment) and no consensus columns to withdraw, the catalogs are left as
    they are: the summary is then ``{"applied": False, "notes": [...]}``.
    The grades are also exported, all of them, to ``grades/grades.parquet`` and ``grades/grades.fits``.
    """
    from pipeline.paths import catalog_parquet

    run_dir = Path(run_dir)
    if not catalog_parquet(run_dir).is_file():  # no run here: the catalog reader says so, nothing made
        return _apply_grades(run_dir, hats, store)
    with score_folder_lock(run_dir, purpose="inspect --apply"):  # trial: a score run's catalogs rewritten
        return _apply_grades(run_dir, hats, store)


def _apply_grades(run_dir: Path, hats: bool, store: str | Path | None) -> dict:
    from pipeline.catalog import read_catalog, read_provenance, run_store, write_catalog
    from pipeline.catalog.columns import LAYOUT_ATTR
    from pipeline.paths import catalog_parquet

    catalog = read_catalog(catalog_parquet(run_dir))
    provenance = read_provenance(catalog_parquet(run_dir))
    store = store or run_store(run_dir, provenance)  # a copy beside the run first
    # Keep only the column layout (the declared outputs): the other attrs describe the file read.
    catalog.attrs = {key: value for key, value in catalog.attrs.items() if key == LAYOUT_ATTR}
    rows = read_grades(run_dir)
    nothing = rows["grade"].isin(("skip",)).all() and not (rows["comment"] != "").any()
    if nothing and not any(name in catalog for name in GRADE_COLUMN_NAMES):
        # no grade nor comment yet, and no consensus to withdraw: the catalog is left as it is (trial:
        # rewritten, "0 objects graded")
        return {"applied": False, "notes": grade_notes(rows)}
    columns = ConsensusColumns(run_dir, store)
    catalog = columns(catalog)
    written = write_catalog(
        catalog, run_dir, provenance, expected_n=len(catalog), hats=hats, written_by=APPLY_COMMAND
    )
    refresh_report_copies(run_dir, (written.fits, written.parquet, written.votable))
    return columns.summary()


class ConsensusColumns:
    """The grade consensus of ``run_dir``'s grades as catalog columns: called with a catalog table,
    returns it with the columns of :func:`pipeline.evaluation.consensus.consensus_columns` and
    ``grade_comments`` (:func:`~pipeline.evaluation.grade_comments.comments_column`), replacing any
    it had. Grades of ids the table lacks and grades made before an ingest re-read their
    object's images (``store``'s rewrites) are left out. :meth:`summary` says what the last call
    found; it also exports the grades (``grades/grades.parquet`` and ``.fits``).

    Used by ``inspect --apply`` (:func:`apply_grades`) and by a score run of a graded folder, which
    writes its catalog once with the columns (a rerun that changes nothing then keeps its files).
    """

    def __init__(self, run_dir: str | Path, store: str | Path | None) -> None:
        self.run_dir, self.store = Path(run_dir), store

    def __call__(self, catalog: pd.DataFrame) -> pd.DataFrame:
        self.rows = read_grades(self.run_dir)  # as they are when the catalog is written
        grades, self.unknown = split_unknown(latest_grades(self.rows), catalog["object_id"])  # trial
        grades, self.outdated = split_outdated(grades, store_rewrites(self.store))  # trial: old pixels
        self.table = consensus(grades)
        attrs = dict(catalog.attrs)
        catalog = catalog.drop(columns=[name for name in GRADE_COLUMN_NAMES if name in catalog])
        for name, values in consensus_columns(catalog["object_id"].to_numpy(), self.table).items():
            catalog[name] = values
        catalog[COMMENTS_COLUMN] = comments_column(catalog["object_id"].to_numpy(), grades)  # skips' too
        self.n_commented = int((catalog[COMMENTS_COLUMN] != "").sum())
        catalog.attrs = attrs
        return catalog

    def summary(self) -> dict:
        """The consensus summary of :func:`apply_grades`, after exporting the grades."""
        rows, table, unknown, outdated = self.rows, self.table, self.unknown, self.outdated
        export_grades(self.run_dir, store=self.store, rows=rows)
        run_dir = self.run_dir
        summary = consensus_summary(table)
        summary["n_unknown_objects"] = int(unknown["object_id"].nunique())
        summary["unknown_note"] = unknown_note(unknown)
        summary["n_bad_lines"] = int(rows.attrs.get("n_bad_lines", 0))  # trial: skipped unsaid
        summary["bad_lines_where"] = bad_lines_text(rows.attrs.get("bad_lines", []))  # trial: which file
        summary["notes"] = grade_notes(rows)  # the lines skipped, the files of grades/ not read
        summary["n_outdated"] = len(outdated)
        summary["n_commented"] = self.n_commented  # objects with an inspector's comment
        summary["outdated_note"] = outdated_note(outdated, run_dir)
        return summary


def score_run_consensus(run_dir: str | Path, store: str | Path | None) -> tuple[ConsensusColumns | None, str]:
    """The :class:`ConsensusColumns` a score run of ``run_dir`` writes into its new catalogs (None where
    the folder holds no grade log), and "" or why its grades are left out of them.

    Grade logs of inspectors differing only in case cannot be counted
    (:func:`~pipeline.evaluation.grade_rows.check_case_twins`): the score run goes on and writes its
    catalogs without grade columns, saying why, rather than failing after scoring (review: it did);
    the logs are kept, and ``inspect --apply`` puts the consensus back once they are one or two names.
    """
    if not any(grades_dir(run_dir).glob("*.jsonl")):
        return None, ""
    try:
        grade_files(run_dir)
    except GradeError as error:
        return None, f"the grade consensus is left out of the new catalogs: {error}"
    return ConsensusColumns(run_dir, store), ""


def refresh_report_copies(run_dir: Path, catalogs: tuple[Path, ...]) -> list[Path]:
    """Place rewritten ``catalogs`` over the ones the report keeps (``report/files/``, for a report
    folder sent on its own; trial: after ``--apply`` they lacked the grade columns): hard links where
    the file system allows, else copies (:func:`pipeline.evaluation.downloads.link_or_copy`); those it
    does not keep stay absent. Returns the files refreshed."""
    from pipeline import paths
    from pipeline.evaluation.downloads import link_or_copy

    refreshed = []
    files = paths.report_dir(run_dir) / "files"
    for catalog in catalogs:
        copy = files / Path(catalog).name
        if copy.is_file() and not copy.is_symlink():
            link_or_copy(Path(catalog), copy)
            refreshed.append(copy)
    return refreshed


def round_change(
    before: pd.DataFrame,
    after: pd.DataFrame,
    grades: pd.DataFrame,
    labels: pd.Series | None = None,
    rewritten: pd.Series | None = None,
) -> dict:
    """What fine-tuning on ``grades`` changed between two catalogs of one store.

    Parameters
    ----------
    before, after : pandas.DataFrame
        Catalogs (``object_id``, ``score``, optional ``label``) scored by the model before and
        after the round.
    grades : pandas.DataFrame
        The grades the round trained on (a log or table of :mod:`pipeline.evaluation.grades`).
    labels : pandas.Series, optional
        The training label of each graded object as the fine-tune recorded it (object id -> 1, 0 or
        -1; :func:`pipeline.inspection.round_grades.round_grade_labels`); given, it replaces the
        consensus of ``grades``.
    rewritten : pandas.Series, optional
        Object id -> when an ingest last re-read its images (:func:`pipeline.store.rewrite_times` of
        the graded run's store): without ``labels``, grades made before are left out, and a note
        says so (trial: they counted as graded, though ``--apply`` and training leave them out).

    Returns
    -------
    dict
        ``n_graded``, ``n_lens`` and ``n_nonlens`` (training labels from the grades), the mean
        score of graded lenses and non-lenses before and after (None where there are none, or none
        scored: ``null`` in JSON, as ``metrics.json`` writes it), and with labels the AUROC before and
        after on the labelled objects that were not graded and that neither run's model trained or
        validated on (held out from the round: ``n_heldout``, ``n_heldout_lens``,
        ``n_heldout_nonlens``; ``n_learned_left_out`` those left out as learned, by the split files
        of the bundles the catalogs' provenance names, :mod:`pipeline.evaluation.learned`), and
        ``notes``: sentences on grades left out (of ids not in the catalog) and on what the held-out
        AUROC rests on.

    Raises
    ------
    pipeline.catalog.StoreMismatchError
        If both catalogs carry provenance (read from files) and the runs scored different stores.
    """
    from pipeline.catalog import check_runs_share_store
    from pipeline.evaluation.metrics import auroc
    from schemas.catalog import Provenance

    recorded = [table.attrs.get("provenance") for table in (before, after)]
    if all(recorded):  # catalogs read from files: their object ids must name the same objects
        first, second = (Provenance.model_validate(value) for value in recorded)
        check_runs_share_store(first, second, names=("the run before", "the run after"))
    outdated = pd.DataFrame({"object_id": []})
    if labels is None:
        grades, unknown = split_unknown(grades, before["object_id"])  # trial: counted as graded
        current, outdated = split_outdated(latest_grades(grades), rewritten)
        labels = grade_labels(consensus(current))
    else:  # the fine-tune's own record (its objects are in its store, hence in the catalog)
        known = labels.index.isin(before["object_id"].to_numpy())
        unknown = pd.DataFrame({"object_id": labels.index[~known]})
        labels = labels[known]
    merged = before[["object_id", "score", *(["label"] if "label" in before else [])]].merge(
        after[["object_id", "score"]], on="object_id", suffixes=("_before", "_after")
    )
    merged["grade_label"] = merged["object_id"].map(labels).fillna(-1).astype(int)
    out: dict = {
        "n_graded": len(labels),
        "n_lens": int((labels == 1).sum()),
        "n_nonlens": int((labels == 0).sum()),
    }
    for name, value in (("lens", 1), ("nonlens", 0)):
        rows = merged[merged["grade_label"] == value]
        for when in ("before", "after"):
            mean = float(rows[f"score_{when}"].mean()) if len(rows) else math.nan
            out[f"mean_score_{name}_{when}"] = mean if math.isfinite(mean) else None  # JSON null (trial: NaN)
    out["notes"] = [note for note in (unknown_note(unknown), outdated_note(outdated)) if note]
    if "label" in merged:
        held = merged[(merged["grade_label"] < 0) & ~merged["object_id"].isin(labels.index)]
        held = held[
            held["label"].isin([0, 1]) & np.isfinite(held["score_before"]) & np.isfinite(held["score_after"])
        ]
        # trial: the "held-out" AUROC was of objects the fine-tune trained on (store labels of the
        # ungraded) and the first model learned from
        learned = _learned_ids(before) | _learned_ids(after)
        out["n_learned_left_out"] = int(held["object_id"].isin(learned).sum())
        held = held[~held["object_id"].isin(learned)]
        out["n_heldout_lens"] = int((held["label"] == 1).sum())
        out["n_heldout_nonlens"] = int((held["label"] == 0).sum())
        if held["label"].nunique() == 2:
            out["n_heldout"] = len(held)
            for when in ("before", "after"):
                out[f"auroc_heldout_{when}"] = float(
                    auroc(held["label"].to_numpy(), held[f"score_{when}"].to_numpy())
                )
            out["auroc_heldout_change_ci95"] = _change_interval(held)
        out["notes"] += _heldout_notes(out)
    return out


MIN_HELDOUT_PER_CLASS = 10
"""Fewest held-out lenses and non-lenses for the round's held-out AUROC to go without a warning (with
1 lens it moves by 1/n_nonlens per object; trial: 0.103 on 1 lens and 29 non-lenses, said plainly)."""


def _learned_ids(catalog: pd.DataFrame) -> set:
    """Ids of the catalog's objects its scoring model trained or validated on (none where unknown)."""
    from pipeline.evaluation.learned import learned_objects
    from schemas.catalog import Provenance

    recorded = catalog.attrs.get("provenance")
    if not recorded:
        return set()
    seen = learned_objects(catalog, Provenance.model_validate(recorded))
    return set(catalog["object_id"].to_numpy()[seen.learned].tolist())


def _change_interval(held: pd.DataFrame) -> list[float] | None:
    """The 95% interval of the held-out AUROC's change, after - before, by a paired bootstrap of the
    held-out objects (:func:`pipeline.evaluation.bootstrap.paired_difference_draws`); None where there
    are too few of a class. Without it a change the size of the sampling noise read as the round's gain."""
    from pipeline.evaluation.bootstrap import paired_difference_draws, percentile_interval

    labels, before, after = (held[name].to_numpy() for name in ("label", "score_before", "score_after"))
    interval = percentile_interval(paired_difference_draws(labels.astype(np.int64), before, after))
    return None if interval is None else [interval[0], interval[1]]


def _heldout_notes(change: dict) -> list[str]:
    notes = []
    if change["n_learned_left_out"]:
        notes.append(
            f"{change['n_learned_left_out']} labelled ungraded objects were left out of the held-out AUROC: "
            "a run's model trained or validated on them (their ids are in its training/split.json, or a "
            "parent's; without --grades-only a fine-tune also trains on the store's labels)"
        )
    lenses, others = change["n_heldout_lens"], change["n_heldout_nonlens"]
    if min(lenses, others) < MIN_HELDOUT_PER_CLASS:
        rests = "there is no held-out AUROC" if "n_heldout" not in change else "the held-out AUROC is noise"
        notes.append(
            f"{lenses} held-out lenses and {others} held-out non-lenses: {rests} (fewer than "
            f"{MIN_HELDOUT_PER_CLASS} of a class); label or simulate more objects the models never saw"
        )
    return notes
