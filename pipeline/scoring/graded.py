"""A graded run directory is scored again only from the store its grades were made on."""

from __future__ import annotations

from pathlib import Path

from pipeline import paths

__all__ = ["check_grades_belong_to"]


def check_grades_belong_to(out_dir: Path, store: Path) -> None:
    """Refuse to score ``store`` into a run directory whose visual grades were made on another store.

    The grades (``OUT/grades``) name objects by id, and sets reuse ids: they would label another
    set's objects in the new catalog and in training (``--overwrite`` included).
    """
    from pipeline.catalog.store_match import StoreMismatchError, check_run_store
    from pipeline.evaluation.grades import grades_dir

    grades = grades_dir(out_dir)
    if not any(grades.glob("*.jsonl")) or not paths.catalog_parquet(out_dir).is_file():
        return
    try:
        check_run_store(out_dir, store)
    except StoreMismatchError as exc:
        raise StoreMismatchError(
            f"{out_dir} holds visual grades ({grades}) made on the objects of another store: {exc}. "
            f"Score {store} into another directory, or move {grades} away first"
        ) from None
