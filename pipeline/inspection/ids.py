"""Object ids between the grading page and its server: decimal strings, exact at every size.

A browser reads every JSON number as a double, which holds integers exactly only up to 2**53
(9007199254740992); real surveys number objects beyond it (an LSST ``objectId``, a DESI
``TARGETID`` of about 4e16). Sent as JSON numbers, such ids were rounded in the page (trial: "go
to 9007199254740993" went to 9007199254740992, and the grade was saved for that other object).
So the server sends every object id as its decimal string (:func:`id_text`), the page keeps it
a string (in image URLs, in what it shows, in the grades it posts), and a posted id is read back
exactly (:func:`posted_object_id`). The grade logs keep JSON integers, which Python reads exactly.

Examples
--------
>>> id_text(9007199254740993)
'9007199254740993'
>>> posted_object_id("9007199254740993"), posted_object_id(700012)
(9007199254740993, 700012)
>>> id_in_path("-12"), id_in_path("12a")
(-12, None)
"""

from __future__ import annotations

import re

import numpy as np

from pipeline.evaluation.grades import GradeError

__all__ = ["INT64_MAX", "INT64_MIN", "id_in_path", "id_text", "posted_object_id"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"-?[0-9]{1,40}")
"""A decimal integer as the page sends an id (ASCII digits only: no sign "+", no space, no
exponent); 40 digits at most, beyond any int64, so that ``int()`` never reads a huge number."""


def id_text(object_id: int | np.integer) -> str:
    """``object_id`` as the page gets it: its exact decimal string (a JSON number is rounded there)."""
    return str(int(object_id))


def posted_object_id(value: object) -> int:
    """The object id of a grade the page posted: a decimal string (what the page sends) or a JSON
    integer (another client's), as an exact Python int in the int64 range.

    Raises
    ------
    GradeError
        For anything else (a float, a bool, null, a string not of decimal digits: ``"1.5"``,
        ``"1e3"``, ``" 7"``), saying how to give it; for an integer outside the int64 range of object
        ids.
    """
    decimal = isinstance(value, str) and _DECIMAL.fullmatch(value) is not None
    if not (decimal or (isinstance(value, int | np.integer) and not isinstance(value, bool))):
        raise GradeError(
            f"object_id {value!r} is not an integer: give the object's id as a string of its decimal "
            'digits ("9007199254740993") or a JSON integer'
        )
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise GradeError(
            f"object_id {number} is outside the int64 range of object ids ({INT64_MIN} to {INT64_MAX})"
        )
    return number


def id_in_path(text: str) -> int | None:
    """The object id of an image URL's ``/img/<id>/`` part; None where it is not a decimal integer."""
    return int(text) if _DECIMAL.fullmatch(text) else None
