"""Who gave which grade: each inspector's latest grade of an object, and each inspector's record.

The report showed the consensus of the grades and the comments by inspector; who gave which grade was
only in ``grades.parquet``, so a team lead could not see who disagreed (trial). :func:`object_grades`
gives each graded object's grades by inspector (name, grade, time, and whether it differs from the
consensus' modal grade), shown on its gallery card, its candidate page and the visual-grades table;
:func:`inspector_rows` gives each inspector's counts and agreement with the consensus, the report's
per-inspector table. An object whose mode a tie chose (X vs A is X:
:func:`~pipeline.evaluation.consensus.modal_grade`) has no consensus to agree with: its tied grades do
not differ, and it counts as neither agreeing nor disagreeing, but as a tie (trial: with the tie
going to the higher grade, the more generous inspector was the one who "agreed"). Both read the
grades the consensus reads (the latest of each object and inspector, those of unknown or re-read
objects left out: :mod:`pipeline.evaluation.grade_report`).
The templates escape every text (inspector names are :data:`~pipeline.evaluation.grades.INSPECTOR_PATTERN`
where read from a log, but an exported table's are not checked against the page).

Examples
--------
>>> import pandas as pd
>>> from pipeline.evaluation.consensus import consensus
>>> grades = pd.DataFrame({
...     "object_id": [7, 7, 7, 8], "inspector": ["bob", "ann", "cy", "ann"], "grade": ["X", "A", "A", "skip"],
...     "time": ["2026-12-05T10:00:00.5Z", "2026-12-05T09:30:00Z", "bad", "2026-12-05T11:00:00Z"],
... })
>>> table = consensus(grades)
>>> for given in object_grades(grades, table)[7]:
...     print(given["inspector"], given["grade"], given["time"], given["differs"])
ann A 2026-12-05 09:30 UTC False
bob X 2026-12-05 10:00 UTC True
cy A bad False
>>> [(r["inspector"], r["n_graded"], r["n_skips"], r["agreement"]) for r in inspector_rows(grades, table)]
[('ann', 1, 1, '1 of 1 (100%)'), ('bob', 1, 0, '0 of 1 (0%)'), ('cy', 1, 0, '1 of 1 (100%)')]
>>> tie = grades[grades["inspector"] != "cy"]  # ann A, bob X: a tie, X taken
>>> [given["differs"] for given in object_grades(tie, consensus(tie))[7]]
[False, False]
>>> [r["agreement"] for r in inspector_rows(tie, consensus(tie))]
['n/a (1 tie, not counted)', 'n/a (1 tie, not counted)']
"""

from __future__ import annotations

import pandas as pd

from pipeline.evaluation.consensus import GRADE_VALUES, TIE_COLUMN

__all__ = ["grade_time", "inspector_rows", "object_grades"]


def grade_time(iso: str) -> str:
    """A grade's UTC time (ISO 8601, :func:`~pipeline.evaluation.grades.utc_now`) to the minute, e.g.
    ``2026-12-05 09:30 UTC``; a text that is no time, as it is.

    >>> grade_time("2026-12-05T09:30:59.999999Z"), grade_time("")
    ('2026-12-05 09:30 UTC', '')
    """
    when = pd.to_datetime(iso, utc=True, errors="coerce", format="ISO8601")
    return iso if pd.isna(when) else when.strftime("%Y-%m-%d %H:%M UTC")


def object_grades(grades: pd.DataFrame, table: pd.DataFrame) -> dict[int, list[dict[str, object]]]:
    """Object id -> its inspectors' latest grades, in inspector name order.

    Parameters
    ----------
    grades : pandas.DataFrame
        One row per (object, inspector): ``object_id``, ``inspector``, ``grade`` (skips included) and
        ``time`` (:func:`pipeline.evaluation.grades.latest_grades`).
    table : pandas.DataFrame
        Their consensus (:func:`pipeline.evaluation.consensus.consensus`): ``object_id``,
        ``grade_mode`` and ``grade_n``.

    Returns
    -------
    dict of int to list of dict
        Per grade ``inspector``, ``grade`` (``A``, ``B``, ``C``, ``X`` or ``skip``), ``time`` (to the
        minute, :func:`grade_time`), ``iso`` (as recorded) and ``differs``: a grade, of an object
        graded by several inspectors, other than the modal one and not one of the grades tied for it
        (``table``'s ``grade_tie``, where it has the column). Objects without grades are absent.
    """
    modes = dict(zip(table["object_id"].astype(int), table["grade_mode"].astype(str), strict=True))
    tied = _ties(table)
    several = set(table.loc[table["grade_n"] > 1, "object_id"].astype(int))
    by_object: dict[int, list[dict[str, object]]] = {}
    for row in grades.sort_values(["object_id", "inspector"]).itertuples(index=False):
        object_id, grade = int(row.object_id), str(row.grade)
        by_object.setdefault(object_id, []).append(
            {
                "inspector": str(row.inspector),
                "grade": grade,
                "time": grade_time(str(row.time)),
                "iso": str(row.time),
                "differs": object_id in several
                and grade in GRADE_VALUES
                and grade != modes.get(object_id)
                and grade not in tied.get(object_id, ()),
            }
        )
    return by_object


def inspector_rows(grades: pd.DataFrame, table: pd.DataFrame) -> list[dict[str, object]]:
    """Each inspector's record, in name order: what a team lead reads to see who disagrees.

    Parameters
    ----------
    grades, table : pandas.DataFrame
        As :func:`object_grades` takes them.

    Returns
    -------
    list of dict
        ``inspector``; ``n_graded`` (objects graded, skips apart) and ``n_skips``; ``n_shared``: of
        those, the objects that other inspectors graded too; ``n_ties``: of the shared ones, those
        whose mode a tie chose (``table``'s ``grade_tie``), counted neither way; ``n_agree``: of the
        other shared ones, those where the inspector gave the modal grade; ``agreement``: that in
        words (``"3 of 4 (75%)"``, ``"3 of 4 (75%); 1 tie, not counted"``, ``"n/a (1 tie, not
        counted)"`` or ``"n/a (no object graded by another inspector too)"``); ``latest``: the time
        of their latest grade (:func:`grade_time`). Empty without grades.
    """
    modes = table.set_index("object_id")[["grade_mode", "grade_n"]]
    tied = set(_ties(table))
    rows = []
    for inspector, own in grades.groupby("inspector", sort=True):
        graded = own[own["grade"].isin(list(GRADE_VALUES))]
        consensus = modes.reindex(graded["object_id"].to_numpy())
        shared = consensus["grade_n"].to_numpy() > 1
        tie = shared & graded["object_id"].isin(tied).to_numpy()
        counted = shared & ~tie
        given, modal = graded["grade"].to_numpy()[counted], consensus["grade_mode"].to_numpy()[counted]
        agree = int((given == modal).sum())
        n_shared, n_ties, n_counted = int(shared.sum()), int(tie.sum()), int(counted.sum())
        rows.append(
            {
                "inspector": str(inspector),
                "n_graded": len(graded),
                "n_skips": int((own["grade"] == "skip").sum()),
                "n_shared": n_shared,
                "n_ties": n_ties,
                "n_agree": agree,
                "agreement": _agreement_text(agree, n_counted, n_ties),
                "latest": grade_time(max(own["time"].astype(str))),
            }
        )
    return rows


def _ties(table: pd.DataFrame) -> dict[int, tuple[str, ...]]:
    """Object id -> the grades tied for its mode (``grade_tie`` ``"A vs X"``), for the objects with one."""
    if TIE_COLUMN not in table:
        return {}
    ties = table[table[TIE_COLUMN].astype(str) != ""]
    pairs = zip(ties["object_id"], ties[TIE_COLUMN], strict=True)
    return {int(object_id): tuple(text.split(" vs ")) for object_id, text in pairs}


def _agreement_text(agree: int, n_counted: int, n_ties: int) -> str:
    """An inspector's agreement in words: ``"3 of 4 (75%)"``, with ``"; 1 tie, not counted"`` after."""
    ties = f"{n_ties} tie{'s' * (n_ties != 1)}, not counted" if n_ties else ""
    if not n_counted:
        return f"n/a ({ties})" if ties else "n/a (no object graded by another inspector too)"
    text = f"{agree} of {n_counted} ({100 * agree / n_counted:.0f}%)"
    return f"{text}; {ties}" if ties else text
