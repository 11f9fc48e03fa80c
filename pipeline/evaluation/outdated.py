"""Grades made before an ingest rewrote their object's pixels: left out of every consensus.

An inspector grades the images the store had at the time. A later ingest that re-reads an object
(a late band file arrived, a half-copied or broken file was replaced; :mod:`pipeline.store.repair`)
changes the images that grade was about, so the grade no longer describes the object the catalog
scores. Such grades stay in their logs (nothing is deleted) but are left out of the catalog's
consensus columns, the report and training labels, and the grading page offers those objects to
their inspectors again. Only an inspector's latest grade of an object counts
(:func:`pipeline.evaluation.grades.latest_grades`), so grading it again makes it current.

A grade made before the store itself was made (its ``created`` attribute; :func:`store_rewrites`
keeps it in the series' ``attrs``) is of no image of it: a grade log copied in from another run,
whose objects share ids with this store's (fresh-user trial: such grades were applied, and changed
training labels). It is left out the same way, and said apart.

Examples
--------
>>> import pandas as pd
>>> grades = pd.DataFrame({"object_id": [1, 2], "inspector": ["a", "a"], "grade": ["A", "X"],
...                        "time": ["2026-01-01T10:00:00.000000Z", "2026-01-01T10:00:00.000000Z"]})
>>> rewritten = pd.Series(pd.to_datetime(["2026-01-02T00:00:00Z"], utc=True), index=[2])
>>> current, outdated = split_outdated(grades, rewritten)
>>> current["object_id"].tolist(), outdated["object_id"].tolist()
([1], [2])
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["outdated_note", "split_outdated", "store_rewrites"]


def split_outdated(grades: pd.DataFrame, rewritten: pd.Series | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split grades into those made after their object's pixels last changed and those made before.

    Parameters
    ----------
    grades : pandas.DataFrame
        Grade rows with ``object_id`` and ``time`` (UTC, ISO 8601, as the grade logs write it).
    rewritten : pandas.Series or None
        Object id -> UTC time an ingest last rewrote its pixels
        (:func:`pipeline.store.rewrite_times`); None or empty when none was. Its ``attrs["created"]``
        (a UTC :class:`pandas.Timestamp`, :func:`store_rewrites`), where given, is when the store
        was made: a grade older than it is outdated too, counted in the outdated rows'
        ``attrs["n_before_store"]``.

    Returns
    -------
    current, outdated : pandas.DataFrame
        The rows of ``grades`` (same columns and attrs) made after the rewrite of their object or of
        an object never rewritten, and those made before it. A grade whose time cannot be read is
        current (nothing says it is older).
    """
    created = None if rewritten is None else rewritten.attrs.get("created")
    if rewritten is None or (rewritten.empty and created is None) or grades.empty:
        return grades, grades.iloc[:0]
    when = pd.to_datetime(grades["time"], utc=True, errors="coerce", format="ISO8601")
    older = np.zeros(len(grades), dtype=bool)
    if not rewritten.empty:
        older = (when < grades["object_id"].map(rewritten)).to_numpy(dtype=bool)  # NaT compares False
    before_store = (when < created).to_numpy(dtype=bool) if created is not None else np.zeros(len(when), bool)
    current, outdated = grades[~(older | before_store)], grades[older | before_store]
    current.attrs, outdated.attrs = dict(grades.attrs), dict(grades.attrs)
    outdated.attrs["n_before_store"] = int(before_store.sum())
    outdated.attrs["store_created"] = None if created is None else created.isoformat()
    return current, outdated


def store_rewrites(store: str | Path | None) -> pd.Series | None:
    """:func:`pipeline.store.rewrite_times` of ``store``; None where there is no store to ask."""
    from pipeline.store import read_attributes, rewrite_times

    if store is None or not Path(store).is_dir():
        return None
    rewritten = rewrite_times(store)
    with contextlib.suppress(OSError, ValueError, TypeError):  # one that cannot say: no grade is older
        rewritten.attrs["created"] = pd.Timestamp(read_attributes(store).created).tz_convert("UTC")
    return rewritten


def outdated_note(outdated: pd.DataFrame, run_dir: str | Path = "RUN_DIR") -> str | None:
    """The line saying which grades were left out as older than their images; None when none were."""
    if outdated.empty:
        return None
    objects = np.unique(outdated["object_id"].to_numpy(dtype=np.int64))
    examples = ", ".join(str(object_id) for object_id in objects[:5])
    if (n_before := outdated.attrs.get("n_before_store", 0)) == len(outdated):
        return (
            f"{n_before} grade(s) of {objects.size} object(s) (e.g. {examples}) were made before this run's "
            f"store was made ({outdated.attrs.get('store_created')}), so of another store's objects that "
            "share their ids (a grade log copied from another run?), and are left out; grade this run's "
            f"objects with `lenshunt inspect {run_dir}`"
        )
    foreign = f" ({n_before} of them before this run's store was made: another store's objects)"
    foreign = foreign if n_before else ""  # some of each kind
    return (
        f"{len(outdated)} grade(s) of {objects.size} object(s) (e.g. {examples}) were made before an ingest "
        f"re-read their images (band files replaced or arrived late){foreign} and are left out; grade them "
        f"again with `lenshunt inspect {run_dir}`, whose page offers those with a score again"
    )
