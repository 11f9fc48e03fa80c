"""Grades made before an ingest rewrote their object's pixels: left out of every consensus.

An inspector grades the images the store had at the time. A later ingest that re-reads an object
(a late band file arrived, a half-copied or broken file was replaced; :mod:`pipeline.store.repair`)
changes the images that grade was about, so the grade no longer describes the object the catalog
scores. Such grades stay in their logs (nothing is deleted) but are left out of the catalog's
consensus columns, the report and training labels, and the grading page offers those objects to
their inspectors again. Only an inspector's latest grade of an object counts
(:func:`pipeline.evaluation.grades.latest_grades`), so grading it again makes it current.

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
        (:func:`pipeline.store.rewrite_times`); None or empty when none was.

    Returns
    -------
    current, outdated : pandas.DataFrame
        The rows of ``grades`` (same columns and attrs) made after the rewrite of their object or of
        an object never rewritten, and those made before it. A grade whose time cannot be read is
        current (nothing says it is older).
    """
    if rewritten is None or rewritten.empty or grades.empty:
        return grades, grades.iloc[:0]
    when = pd.to_datetime(grades["time"], utc=True, errors="coerce", format="ISO8601")
    changed = grades["object_id"].map(rewritten)
    older = (when < changed).to_numpy(dtype=bool)  # NaT on either side compares False
    current, outdated = grades[~older], grades[older]
    current.attrs, outdated.attrs = dict(grades.attrs), dict(grades.attrs)
    return current, outdated


def store_rewrites(store: str | Path | None) -> pd.Series | None:
    """:func:`pipeline.store.rewrite_times` of ``store``; None where there is no store to ask."""
    from pipeline.store import rewrite_times

    if store is None or not Path(store).is_dir():
        return None
    return rewrite_times(store)


def outdated_note(outdated: pd.DataFrame, run_dir: str | Path = "RUN_DIR") -> str | None:
    """The line saying which grades were left out as older than their images; None when none were."""
    if outdated.empty:
        return None
    objects = np.unique(outdated["object_id"].to_numpy(dtype=np.int64))
    examples = ", ".join(str(object_id) for object_id in objects[:5])
    return (
        f"{len(outdated)} grade(s) of {objects.size} object(s) (e.g. {examples}) were made before an ingest "
        "re-read their images (band files replaced or arrived late) and are left out; grade them again "
        f"with `lenshunt inspect {run_dir}`, whose page offers those with a score again"
    )
