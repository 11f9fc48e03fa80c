"""What the grading page says of a saved grade (:func:`saved_message`)."""

from __future__ import annotations

__all__ = ["saved_message"]


def saved_message(object_id: int, grade: str, previous: dict | None, unseen: bool, inspector: str) -> str:
    """What the page says of a saved grade: what it replaced, and that a skip withdraws a grade.

    The latest grade of each (object, inspector) counts and a skip is no grade, so a skip given
    after a grade withdraws it from the consensus (trial: the page said "was A, now skip" as if the
    skip were a grade, and the A dropped out of ``grade_n`` unsaid).

    Examples
    --------
    >>> print(saved_message(7, "skip", {"grade": "A", "time": "2026-12-05T12:03:05Z"}, False, "ann"))
    Saved skip for 7: grade A withdrawn (a skip is no grade: it no longer counts; grade 7 again to give one).
    >>> saved_message(7, "X", {"grade": "A", "time": "2026-12-05T12:03:05Z"}, False, "ann")
    'Saved X for 7: was A, now X.'
    """
    said = f"Saved {grade} for {object_id}."
    if previous is None:
        return said
    before = previous["grade"]
    withdrawn = grade == "skip" and before != "skip"
    if unseen:  # another tab or session of this inspector graded it meanwhile
        when = str(previous["time"]).replace("T", " ")[:19]
        said = (
            f"Saved {grade} for {object_id}: it replaced {before} given at {when} UTC in another tab or "
            f"session of {inspector}, which this page did not show."
        )
        return said + (" That grade is withdrawn (a skip is no grade)." if withdrawn else "")
    if withdrawn:
        return (
            f"Saved skip for {object_id}: grade {before} withdrawn (a skip is no grade: it no longer counts; "
            f"grade {object_id} again to give one)."
        )
    if before != grade:
        return f"Saved {grade} for {object_id}: was {before}, now {grade}."
    return f"Saved {grade} for {object_id} again (it was {grade})."
