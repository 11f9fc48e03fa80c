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
    from pipeline.catalog.store_match import (
        StoreMismatchError,
        check_run_store,
        read_run_record,
        store_identity,
    )
    from pipeline.errors import CatalogError
    from pipeline.evaluation.grades import grades_dir, holds_grades
    from pipeline.store import read_attributes

    grades = grades_dir(out_dir)
    if not holds_grades(grades):
        return
    elsewhere = "score into another directory"  # trial: `lenshunt score` was told of `run`
    try:
        if not paths.catalog_parquet(out_dir).is_file():  # trial: an --overwrite stopped before its catalog
            raise CatalogError(f"{out_dir} holds no catalog")
        check_run_store(out_dir, store)
    except StoreMismatchError as exc:
        raise StoreMismatchError(
            f"{out_dir} holds visual grades ({grades}) made on the objects of another store: {exc}. "
            f"Move {grades} away first, or {elsewhere}"
        ) from None
    except CatalogError as exc:  # no or a damaged catalog: the run's own record names its store
        run = read_run_record(out_dir)
        same = run.get("store") == str(store)
        identity = store_identity(read_attributes(store))
        if same and run.get("store_created") == identity:
            return  # scoring writes the catalog anew
        if run.get("store") and run.get("store_created") not in (None, identity):  # another store
            raise StoreMismatchError(
                f"{out_dir} holds visual grades ({grades}) made on a run of {run['store']}"
                f"{' as ingested before (ingested again since)' if same else ''}, not of {store}: their "
                f"object ids need not name the same objects. Move {grades} away first, or {elsewhere}"
            ) from None
        raise CatalogError(
            f"{exc}. Its visual grades ({grades}) cannot be checked against {store} without it: move "
            f"{grades} away first, or {elsewhere}"
        ) from None
