"""Per-object consensus of several inspectors' grades, and training labels from it: pure functions.

Grades map to numbers as in the Euclid Q1 and SuGOHI visual inspections (A = 3, B = 2, C = 1,
X = 0; Sonnenfeld et al. 2018, PASJ 70, S29; Euclid Collaboration: Walmsley et al. 2025,
arXiv 2503.15326, who average the volunteers' and experts' grades per object). Per object, over
the latest grade of each inspector, where ``skip`` is no grade and is left out: an inspector whose
latest is a skip (given after a grade: the grading page says the grade is withdrawn) has not graded
the object.

* ``grade_n``: how many inspectors graded it (skips excluded);
* ``grade_mean``: mean grade (0..3), SuGOHI/Euclid's consensus score;
* ``grade_std``: population standard deviation of the grades (0 when all agree); NaN for an object
  graded by one inspector (no spread is measured from one grade);
* ``grade_mode``: the most frequent grade; among equally frequent grades, the one nearest the mean;
  a tie (equally frequent and equally near the mean: every two-inspector disagreement, X vs A) goes
  to the *lower* grade, so a sure-lens call needs a majority (trial: X vs A read "graded A: sure
  lens"; :func:`modal_grade`). The consensus table's ``grade_tie`` names such a tie (``"A vs X"``,
  ``""`` where none): the report says it on the card and counts a tie as neither agreeing nor
  disagreeing per inspector; it is not a catalog column;
* ``grade_agreement``: the fraction of inspectors who gave the modal grade (1 = unanimous); NaN for
  one inspector, as ``grade_std`` (trial: 0 and 1.0 read as measured agreement).

Training labels (:func:`grade_labels`): lens when ``grade_mean >= 1.5`` (A or B on average),
non-lens when ``grade_mean < 0.5`` (X on average), otherwise left out: a single inspector's
A/B is a lens, X a non-lens and C left out. ``c_as`` moves the C-ish band either way.

Examples
--------
>>> import pandas as pd
>>> grades = pd.DataFrame({"object_id": [1, 1, 1, 2], "inspector": ["a", "b", "c", "a"],
...                        "grade": ["A", "B", "A", "X"]})
>>> table = consensus(grades)
>>> table[["object_id", "grade_n", "grade_mean", "grade_mode", "grade_agreement"]].values.tolist()
[[1, 3, 2.6666667461395264, 'A', 0.6666666865348816], [2, 1, 0.0, 'X', nan]]
>>> split = consensus(pd.DataFrame({"object_id": [3, 3], "inspector": ["a", "b"], "grade": ["A", "X"]}))
>>> split[["grade_mode", "grade_tie"]].values.tolist()  # one inspector said not a lens: no sure lens
[['X', 'A vs X']]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRADE_VALUES = {"A": 3, "B": 2, "C": 1, "X": 0}
"""Numeric value of each grade (Euclid Q1 / SuGOHI scale)."""
CONSENSUS_COLUMNS = ("grade_n", "grade_mean", "grade_std", "grade_mode", "grade_agreement")
LENS_AT = 1.5
NON_LENS_BELOW = 0.5
C_CHOICES = ("exclude", "lens", "nonlens")
TIE_COLUMN = "grade_tie"
"""Consensus-table column naming the grades tied for the mode (``"A vs X"``), ``""`` where none."""


def modal_grade(given: pd.Series) -> tuple[str, tuple[str, ...]]:
    """The modal grade of one object's grades, and the grades it was tied with.

    Parameters
    ----------
    given : pandas.Series
        The object's grades, one per inspector, each ``A``, ``B``, ``C`` or ``X`` (at least one).

    Returns
    -------
    tuple of (str, tuple of str)
        The most frequent grade; among equally frequent ones the nearest the mean (A = 3 .. X = 0);
        among those equally near, the lowest (a sure-lens call needs a majority: X vs A is X). Then
        the tied grades, highest first (``("A", "X")``), where that last rule chose; ``()`` otherwise.

    Examples
    --------
    >>> modal_grade(pd.Series(["A", "X"])), modal_grade(pd.Series(["B", "C"]))
    (('X', ('A', 'X')), ('C', ('B', 'C')))
    >>> modal_grade(pd.Series(["A", "A", "X"])), modal_grade(pd.Series(["A", "A", "B", "B", "X"]))
    (('A', ()), ('B', ()))
    """
    mean = float(given.map(GRADE_VALUES).mean())
    counts = given.value_counts()
    top = counts[counts == counts.max()].index
    nearest = min(abs(GRADE_VALUES[g] - mean) for g in top)
    tied = sorted((g for g in top if abs(GRADE_VALUES[g] - mean) == nearest), key=GRADE_VALUES.get)[::-1]
    return tied[-1], tuple(tied) if len(tied) > 1 else ()


def consensus(grades: pd.DataFrame) -> pd.DataFrame:
    """Consensus of the latest grades: one row per object whose latest grade of some inspector is
    not a skip.

    Parameters
    ----------
    grades : pandas.DataFrame
        Columns ``object_id``, ``inspector`` and ``grade``; one row per (object, inspector) (use
        :func:`pipeline.evaluation.grades.latest_grades` on a raw log first).

    Returns
    -------
    pandas.DataFrame
        ``object_id`` (int64), :data:`CONSENSUS_COLUMNS` (int32, float32, float32, str, float32) and
        :data:`TIE_COLUMN` (str: the grades tied for the mode, :func:`modal_grade`, as ``"A vs X"``;
        ``""`` where none), sorted by object id; ``grade_std`` and ``grade_agreement`` NaN where
        ``grade_n`` is 1.
    """
    graded = grades[grades["grade"].isin(list(GRADE_VALUES))]
    rows = []
    for object_id, group in graded.groupby("object_id", sort=True):
        values = group["grade"].map(GRADE_VALUES).to_numpy(dtype=np.float64)
        mean = float(values.mean())
        mode, tied = modal_grade(group["grade"])  # trial: X vs A was A, a sure lens
        several = values.size > 1  # one grade measures no spread: NaN, not 0 and 1.0
        top = int((group["grade"] == mode).sum())
        std, agreement = (float(values.std()), top / values.size) if several else (np.nan, np.nan)
        rows.append((int(object_id), values.size, mean, std, mode, agreement, " vs ".join(tied)))
    table = pd.DataFrame(rows, columns=["object_id", *CONSENSUS_COLUMNS, TIE_COLUMN])
    return table.astype(
        {
            "object_id": np.int64,
            "grade_n": np.int32,
            "grade_mean": np.float32,
            "grade_std": np.float32,
            "grade_mode": str,
            "grade_agreement": np.float32,
            TIE_COLUMN: str,
        }
    )


def consensus_columns(object_ids: np.ndarray, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The consensus columns for ``object_ids`` (catalog row order); ungraded objects get
    ``grade_n`` 0, NaN means and ``grade_mode`` ""."""
    index = pd.Index(np.asarray(object_ids, dtype=np.int64))
    aligned = table.set_index("object_id").reindex(index)
    return {
        "grade_n": aligned["grade_n"].fillna(0).to_numpy(dtype=np.int32),
        "grade_mean": aligned["grade_mean"].to_numpy(dtype=np.float32),
        "grade_std": aligned["grade_std"].to_numpy(dtype=np.float32),
        "grade_mode": aligned["grade_mode"].fillna("").astype(str).to_numpy(dtype=object),
        "grade_agreement": aligned["grade_agreement"].to_numpy(dtype=np.float32),
    }


def grade_labels(table: pd.DataFrame, c_as: str = "exclude") -> pd.Series:
    """Training label per graded object (1 lens, 0 non-lens, -1 left out) from its consensus.

    ``c_as``: ``exclude`` (default) leaves ``0.5 <= mean < 1.5`` out; ``lens`` makes
    ``mean >= 0.5`` lenses (C counts as a lens); ``nonlens`` makes ``mean < 1.5`` non-lenses.
    """
    if c_as not in C_CHOICES:
        raise ValueError(f"c_as must be one of {C_CHOICES}, got {c_as!r}")
    mean = table["grade_mean"].to_numpy(dtype=np.float64)
    lens_at = NON_LENS_BELOW if c_as == "lens" else LENS_AT
    non_lens_below = LENS_AT if c_as == "nonlens" else NON_LENS_BELOW
    labels = np.where(mean >= lens_at, 1, np.where(mean < non_lens_below, 0, -1)).astype(np.int8)
    return pd.Series(labels, index=table["object_id"].to_numpy(dtype=np.int64), name="label")


def consensus_summary(table: pd.DataFrame) -> dict[str, int | float]:
    """Counts for a report: graded objects, by modal grade, ties (``n_ties``: modes a tie gave the lower
    grade, :func:`modal_grade`), several inspectors, unanimous, mean agreement."""
    several = table["grade_n"] > 1
    return {
        "n_graded": len(table),
        **{f"n_{grade}": int((table["grade_mode"] == grade).sum()) for grade in GRADE_VALUES},
        "n_ties": int((table[TIE_COLUMN] != "").sum()) if TIE_COLUMN in table else 0,
        "n_multiple": int(several.sum()),
        "n_unanimous": int((several & (table["grade_agreement"] >= 1.0)).sum()),
        "mean_agreement": float(table.loc[several, "grade_agreement"].mean())
        if several.any()
        else float("nan"),
    }
