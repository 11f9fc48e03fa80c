"""Which source a store holds, said before anything about the source given (ops trial: an ingest of
another set into a store advised ``--layout`` for that set, then refused it for the store's source).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import SourceMismatchError

__all__ = ["check_store_source"]


def check_store_source(
    store: str | os.PathLike[str], source: str | os.PathLike[str], source_moved: bool, also: str = ""
) -> None:
    """Refuse ``source`` where ``store`` exists and was made from another source (and ``source_moved``
    is not given); nothing to do where there is no store yet, where ``source`` is no directory (a
    mistyped path: the caller's "does not exist" says so), or where it holds the store's source (the
    set's parent folder given: the caller's refusal names the folder to give). Review: both were told
    first to ingest into a new store.

    Parameters
    ----------
    also
        What else is wrong with ``source`` (e.g. the layout its folders match), added to the refusal.

    Raises
    ------
    SourceMismatchError
        Naming the store's layout and source, and to ingest ``source`` into a new store.
    """
    from pipeline.store.ingestion import same_source
    from pipeline.store.zarr_store import read_attributes

    if source_moved or not (Path(store) / "zarr.json").exists() or not Path(source).is_dir():
        return
    attributes = read_attributes(store)
    if same_source(attributes.source, source) or _holds(source, attributes.source):
        return
    raise SourceMismatchError(
        f"{store} was made with layout {attributes.layout!r} from another source ({attributes.source}): "
        f"ingest {source} into a new store (with `lenshunt run`, use another work directory)"
        + (
            f"; for that store: {also}"
            if also
            else f"; if {source} is {attributes.source} moved, pass --source-moved"
        )
    )


def _holds(folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is inside ``folder`` (symbolic links resolved)."""
    return Path(os.path.realpath(folder)) in Path(os.path.realpath(path)).parents
