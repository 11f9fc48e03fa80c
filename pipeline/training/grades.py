"""Training labels from visual grades (``lenshunt train --grades``): the active-learning round.

The grades of one or more grade tables (run directories, ``grades/`` folders, ``.jsonl`` logs or
exported ``grades.parquet`` / ``grades.fits``; :mod:`pipeline.evaluation.grades`) are combined per
object into a consensus (latest grade per inspector; :mod:`pipeline.evaluation.consensus`) and
turned into labels: mean grade >= 1.5 (A or B on average) is a lens, < 0.5 (X) a non-lens, and
the C band in between is left out (``grade_c_as="exclude"``, the default), or counted as lenses
(``"lens"``) or non-lenses (``"nonlens"``). These labels replace the store's own labels of the
graded objects; with ``grades_only`` the store's labels of ungraded objects are dropped too, so
the model learns from the inspectors alone (a survey store has no labels anyway). Typically
with ``--init BUNDLE`` (fine-tune the model that scored the graded run). What the grades gave is
written beside the bundle (``training/grades.json``).

Object ids number objects within one set only, so grades made on a run of another store would
label unrelated objects: :func:`check_grade_stores` refuses a grade source whose run scored
another store (:mod:`pipeline.catalog.store_match`: same store identity, so a moved or copied
store is fine; a run whose catalog is gone, by its ``score-run.json``). A grade table without its
run (a ``.jsonl``, ``grades.parquet`` or ``grades.fits`` outside ``RUN_DIR/grades/``) cannot be
checked; it is named in ``store_unchecked`` of the summary and training logs a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.catalog import check_same_store, read_provenance
from pipeline.evaluation.consensus import consensus, grade_labels
from pipeline.evaluation.grades import GRADES_DIR, bad_lines_text, latest_grades, read_grades
from pipeline.evaluation.outdated import split_outdated, store_rewrites
from pipeline.paths import catalog_fits, catalog_parquet
from pipeline.training.config import TrainConfig, TrainingError
from pipeline.training.config_arg import ConfigArg, as_train_config
from schemas.catalog import LABEL_UNKNOWN

GRADES_FILE = "grades.json"


def grade_source_run(source: str | Path) -> Path | None:
    """The run directory whose catalog the grades of ``source`` were made on; None when unknown.

    ``source`` is a run directory, its ``grades/`` folder or a grade table inside that folder.
    """
    for candidate in _candidate_runs(source):
        if catalog_parquet(candidate).is_file() or catalog_fits(candidate).is_file():
            return candidate
    return None


def _candidate_runs(source: str | Path) -> list[Path]:
    """The directories a grade source may be the run of: itself, or the run above its ``grades/``."""
    path = Path(source)
    if path.is_dir():
        return [path, path.parent] if path.name == GRADES_DIR else [path]
    return [path.parent.parent] if path.parent.name == GRADES_DIR else []


def check_grade_stores(store: str | Path, sources: list[str]) -> list[str]:
    """Refuse grades made on a run of another store; returns the sources that could not be checked.

    Parameters
    ----------
    store : path-like
        The training store.
    sources : list of str
        Grade sources (see module docstring).

    Returns
    -------
    list of str
        The sources without a run catalog to check against (grade tables outside ``RUN_DIR/grades/``).

    Raises
    ------
    pipeline.catalog.StoreMismatchError
        If a source's run scored another store: its object ids name other objects.
    """
    from pipeline.store import read_attributes

    created = read_attributes(store).created
    unchecked = []
    for source in sources:
        run_dir = grade_source_run(source)
        if run_dir is not None:
            check_same_store(read_provenance(run_dir), store, created, run=f"the graded run {run_dir}")
        elif not _check_run_record(source, store):
            unchecked.append(str(source))
    return unchecked


def _check_run_record(source: str | Path, store: str | Path) -> bool:
    """Check grades of a run directory without a catalog against its ``score-run.json``; False where
    there is none (trial: a run whose ``--overwrite`` was stopped lent its grades to another store)."""
    from pipeline.catalog import StoreMismatchError, read_run_record, store_identity
    from pipeline.paths import score_run_file
    from pipeline.store import read_attributes

    for run_dir in _candidate_runs(source):
        run = read_run_record(run_dir)
        if not run.get("store"):
            continue
        recorded = run.get("store_created")
        same = (
            recorded == store_identity(read_attributes(store))
            if recorded
            else run["store"] == str(Path(store).resolve())
        )
        if not same:
            raise StoreMismatchError(
                f"the graded run {run_dir} (no catalog; its {score_run_file(run_dir).name}) scored the store "
                f"{run['store']}, not {store}: its grades' object ids need not name the same objects; train "
                "on the store that run scored, or grade a run of this store"
            )
        return True
    return False


def check_grades(store: str | Path, config: ConfigArg) -> None:
    """The ``config.grades`` sources as training will use them on ``store``, before training starts.

    Trial: a missing path, an unreadable table or one without grades failed only after Prefect
    started; ``lenshunt train`` makes this check first.

    Raises
    ------
    pipeline.catalog.StoreMismatchError
        As :func:`check_grade_stores`.
    TrainingError, pipeline.evaluation.grades.GradeError
        As :func:`labels_from_grades`.
    """
    from pipeline.store import open_store

    config = as_train_config(config, "check_grades")
    check_grade_stores(store, list(config.grades))
    dataset = open_store(store)
    labels_from_grades(
        dataset["object_id"].values,
        dataset["label"].values,
        list(config.grades),
        c_as=config.grade_c_as,
        grades_only=config.grades_only,
        rewritten=store_rewrites(store),
    )


def grade_warnings(summary: dict) -> list[str]:
    """Warning lines for what training left out of the grades: torn or damaged log lines (and table
    rows), grades older than their images, graded ids not in the store, grade tables whose store
    could not be checked."""
    lines = []
    if summary.get("n_bad_lines"):  # trial: skipped without a word
        lines.append(
            f"WARNING: {summary['n_bad_lines']} line(s) of the grade logs are not grades (torn by a kill in "
            f"mid-write, or damaged) and were skipped ({summary.get('bad_lines_where', '')}); every other "
            "grade is used"
        )
    foreign = summary.get("n_before_store", 0)  # trial: a grade log copied from another run
    if (
        summary.get("n_outdated", 0) > foreign
    ):  # trial: grades of images an ingest replaced labelled the new ones
        lines.append(
            f"WARNING: {summary['n_outdated'] - foreign} grade(s) were made before an ingest re-read their "
            "objects' images (band files replaced or arrived late) and were left out; grade those objects "
            "again (lenshunt inspect RUN_DIR) to use them"
        )
    if foreign:
        lines.append(
            f"WARNING: {foreign} grade(s) were made before the training store was made, so of another "
            "store's objects sharing their ids (a grade log copied from another run?), and were left out"
        )
    if summary.get("n_not_in_store"):  # trial: grades of ids nobody scored went unsaid
        lines.append(
            f"WARNING: {summary['n_not_in_store']} graded object id(s) are not in the training store and "
            "were left out (grades of another set, or an edited log or table); every other grade is used"
        )
    if summary.get("store_unchecked"):
        lines.append(unchecked_warning(summary["store_unchecked"]))
    return lines


def grade_line(summary: dict) -> str:
    """The line of training's closing summary on what the grades gave (``training/grades.json``'s
    counts; fresh-user trial: said only in a JSON line of the log).

    Examples
    --------
    >>> grade_line({"n_graded": 95, "n_lens": 59, "n_nonlens": 31, "n_left_out": 5, "grade_c_as": None,
    ...             "n_store_labels_changed": 0, "grades_only": True})  # doctest: +NORMALIZE_WHITESPACE
    'labels from grades: 95 graded objects of the store gave 59 lenses and 31 non-lenses, 5 left out
     (graded C, or inspectors disagreed; --grade-c lens or nonlens counts C); only these are trained on
     (--grades-only)'
    """
    text = (
        f"labels from grades: {summary['n_graded']} graded objects of the store gave {summary['n_lens']} "
        f"lenses and {summary['n_nonlens']} non-lenses"
    )
    if summary["n_left_out"]:
        counts = "" if summary.get("grade_c_as") else "; --grade-c lens or nonlens counts C"
        text += f", {summary['n_left_out']} left out (graded C, or inspectors disagreed{counts})"
    if summary["grades_only"]:
        return text + "; only these are trained on (--grades-only)"
    changed = summary["n_store_labels_changed"]
    return text + f"; they replace the store's labels of those objects ({changed} changed)"


def unchecked_warning(unchecked: list[str]) -> str:
    """The warning line for grade tables whose store could not be checked."""
    return (
        f"WARNING: the store of the grades in {', '.join(unchecked)} could not be checked (no run catalog "
        "beside them); they are used by object id, so make sure they were made on a run of this store, "
        "or give the graded run directory instead (--grades RUN_DIR)"
    )


def labels_from_grades(
    object_ids: np.ndarray,
    store_labels: np.ndarray,
    sources: list[str],
    *,
    c_as: str = "exclude",
    grades_only: bool = False,
    rewritten: pd.Series | None = None,
) -> tuple[np.ndarray, dict]:
    """The store's labels with the graded objects' labels from their grades.

    Parameters
    ----------
    object_ids, store_labels : numpy.ndarray
        The store's ``object_id`` and ``label`` columns, shape (n,).
    sources : list of str
        Grade tables (see module docstring).
    c_as : str
        ``exclude``, ``lens`` or ``nonlens``: what a C-ish consensus becomes.
    grades_only : bool
        Ungraded objects get label -1 (unknown) instead of the store's.
    rewritten : pandas.Series or None
        Object id -> when an ingest last re-read its images (:func:`pipeline.store.rewrite_times`):
        grades made before are left out (:mod:`pipeline.evaluation.outdated`).

    Returns
    -------
    labels : numpy.ndarray
        int8 labels, shape (n,).
    summary : dict
        Counts: graded objects, lenses, non-lenses, left out, not in the store, store labels
        changed by the grades, grades left out as older than their images (``n_outdated``), and
        unreadable log lines skipped (``n_bad_lines``: grades torn by a kill).

    Raises
    ------
    TrainingError
        When the sources hold no grade, none made on the images the store has now, or no graded
        object is in the store.
    pipeline.evaluation.grades.GradeError
        When a source does not exist or cannot be read.
    """
    rows = read_grades(*sources)
    if rows.empty:  # trial: training went on with the store's labels, or none with grades_only
        bad = rows.attrs.get("n_bad_lines", 0)
        raise TrainingError(
            f"the grade tables {', '.join(str(source) for source in sources)} hold no grade"
            + (
                f" (lines that are not grades: {bad}: {bad_lines_text(rows.attrs['bad_lines'])})"
                if bad
                else ""
            )
            + ": grade a run first (`lenshunt inspect RUN_DIR`) or leave out --grades"
        )
    n_bad = int(rows.attrs.get("n_bad_lines", 0))
    bad_where = bad_lines_text(rows.attrs.get("bad_lines", []))
    current, outdated = split_outdated(latest_grades(rows), rewritten)
    if current.empty:  # every grade is of images an ingest has replaced since
        foreign = int(outdated.attrs.get("n_before_store", 0))
        why = (  # trial: a log copied from another run labelled this store's objects
            "before the training store was made: of another store's objects sharing their ids"
            if foreign == len(outdated)
            else "before an ingest re-read its object's images (band files replaced or arrived late)"
        )
        raise TrainingError(
            f"every grade of {', '.join(str(source) for source in sources)} ({len(outdated)}) was made "
            f"{why}: grade those objects again (`lenshunt inspect RUN_DIR`) or leave out --grades"
        )
    table = consensus(current)
    graded = grade_labels(table, c_as)
    object_ids = np.asarray(object_ids, dtype=np.int64)
    store_labels = np.asarray(store_labels).astype(np.int8)
    position = {int(object_id): row for row, object_id in enumerate(object_ids)}
    rows = np.array([position.get(int(oid), -1) for oid in graded.index], dtype=np.int64)
    found = rows >= 0
    if graded.size and not found.any():
        raise TrainingError(
            f"none of the {graded.size} graded objects of {sources} is in the training store: grade a run "
            "of this store (lenshunt inspect RUN_DIR) or train on the store that run scored"
        )
    labels = np.full_like(store_labels, LABEL_UNKNOWN) if grades_only else store_labels.copy()
    values = graded.to_numpy()[found]
    labels[rows[found]] = values
    summary = {
        "sources": [str(source) for source in sources],
        "grade_c_as": c_as,
        "grades_only": grades_only,
        "n_graded": int(found.sum()),
        "n_lens": int((values == 1).sum()),
        "n_nonlens": int((values == 0).sum()),
        "n_left_out": int((values == LABEL_UNKNOWN).sum()),
        "n_not_in_store": int((~found).sum()),
        "n_store_labels_changed": int(np.count_nonzero(store_labels[rows[found]] != values)),
        "n_outdated": len(outdated),
        "n_before_store": int(outdated.attrs.get("n_before_store", 0)),
        "n_bad_lines": n_bad,
        "bad_lines_where": bad_where,
        # each graded object's training label, for `inspect --compare` (pipeline.inspection.round_grades)
        "graded_labels": {str(int(oid)): int(v) for oid, v in zip(graded.index[found], values, strict=True)},
    }
    return labels, summary


def training_labels(dataset, config: TrainConfig, store: str | Path) -> np.ndarray:
    """The labels a training run uses: the store's, or with ``config.grades`` those of the grades
    (those older than their object's images left out; ``dataset`` is ``store`` opened)."""
    labels = dataset["label"].values
    if not config.grades:
        return labels
    return labels_from_grades(
        dataset["object_id"].values,
        labels,
        list(config.grades),
        c_as=config.grade_c_as,
        grades_only=config.grades_only,
        rewritten=store_rewrites(store),
    )[0]


def write_grade_summary(work: Path, store: str | Path, dataset, config: TrainConfig) -> dict | None:
    """Write ``training/grades.json`` (what the grades gave) when ``config.grades``; returns it.

    The grade sources are checked against ``store`` first (:func:`check_grade_stores`); those that
    could not be checked are listed under ``store_unchecked``.
    """
    if not config.grades:
        return None
    unchecked = check_grade_stores(store, list(config.grades))
    _, summary = labels_from_grades(
        dataset["object_id"].values,
        dataset["label"].values,
        list(config.grades),
        c_as=config.grade_c_as,
        grades_only=config.grades_only,
        rewritten=store_rewrites(store),
    )
    summary["store_unchecked"] = unchecked
    (Path(work) / GRADES_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
