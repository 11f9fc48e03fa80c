"""The grading page's "go to": an object id or a rank, as the queue position that shows it.

A plain integer is an object id (``700012``, or ``id 700012``); a rank is written ``r5`` or ``rank 5``
(the catalog's rank: 1 = highest score), so that a small id is never taken for a rank unsaid. An
object that the queue does not hold is said with why: not in this run, not scored, or graded before
the server started (the queue leaves those out unless ``--regrade``).

Examples
--------
>>> parse_target("r12"), parse_target(" id 700012 "), parse_target("#7")
(('rank', 12), ('id', 700012), ('id', 7))

A rank beyond the int64 range is a rank no run has (trial: ``r99999999999999999999`` was answered
"give a rank as r5"):

>>> parse_target("r99999999999999999999")
('rank', 99999999999999999999)
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError
from pipeline.flags import describe

__all__ = ["GotoError", "find_position", "parse_target"]

_TARGET = re.compile(r"^\s*(?:(?P<rank>r|rank)\s*|(?:id|#)\s*)?(?P<number>-?\d+)\s*$", re.IGNORECASE)


class GotoError(LenshuntError, ValueError):
    """What the page's "go to" was given names no candidate of its queue (the page's ``/api/find``: 404)."""


def parse_target(text: object) -> tuple[str, int]:
    """``("id", n)`` or ``("rank", n)`` of what the inspector typed.

    Raises
    ------
    GotoError
        For anything else, saying what is taken.
    """
    match = _TARGET.match(text) if isinstance(text, str) else None
    if match is None:
        raise GotoError(
            f"go to {text!r}: give an object id (e.g. 700012) or a rank as r5 or rank 5 (1 = highest score)"
        )
    digits = match["number"]
    if len(digits) > 40:  # no id and no rank; int() of thousands of digits is refused
        long = f"{digits[:20]}... ({len(digits)} digits)"
        if match["rank"]:
            raise GotoError(f"rank {long} is not in this run: give a rank as r5 (1 = highest score)")
        raise GotoError(f"go to {long}: that is beyond the object ids (int64)")
    number = int(digits)
    if not match["rank"] and not -(2**63) <= number < 2**63:  # no int64 id
        raise GotoError(f"go to {text!r}: {number} is beyond the object ids (int64)")
    return ("rank" if match["rank"] else "id"), number


def find_position(
    catalog: pd.DataFrame, queue: np.ndarray, text: object, graded_before: dict[int, str]
) -> int:
    """The queue position of the object ``text`` names (:func:`parse_target`).

    Parameters
    ----------
    catalog : pandas.DataFrame
        The page's catalog, indexed by object id (``score``, ``rank`` and ``flags`` columns).
    queue : numpy.ndarray
        The page's queue of object ids.
    text : str
        What the inspector typed.
    graded_before : dict of int to str
        This inspector's grades, by object id (the queue leaves out those given before the server
        started, unless ``--regrade``).

    Raises
    ------
    GotoError
        Saying why no position shows it.
    """
    kind, number = parse_target(text)
    if kind == "rank":
        in_range = 1 <= number < 2**63  # numpy compares no int64 with a Python int beyond it
        found = catalog.index[catalog["rank"].to_numpy() == number] if in_range else catalog.index[:0]
        if not len(found):
            raise GotoError(f"rank {number} is not in this run: its ranks run 1 to {len(catalog)}")
        object_id = int(found[0])
    else:
        object_id = number
    at = np.flatnonzero(queue == object_id)
    if at.size:
        return int(at[0])
    named = f"rank {number} (object {object_id})" if kind == "rank" else f"object {object_id}"
    if object_id not in catalog.index:
        ids = catalog.index
        span = f" ({len(ids)} objects, ids {ids.min()} to {ids.max()})" if len(ids) else ""
        raise GotoError(f"{named} is not in this run: its catalog has no object {object_id}{span}")
    if not np.isfinite(float(catalog.loc[object_id, "score"])):
        flags = ", ".join(describe(int(catalog.loc[object_id, "flags"]))) or "none"
        raise GotoError(f"{named} has no score in this run (flags: {flags}): only scored objects are graded")
    if object_id in graded_before:
        raise GotoError(
            f"{named} is not in this page's queue: you graded it ({graded_before[object_id]}) before "
            "this server started; start lenshunt inspect with --regrade to see it again"
        )
    raise GotoError(f"{named} is not in this page's queue")
