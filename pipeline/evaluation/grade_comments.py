r"""The inspectors' comments on an object as one catalog text: the ``grade_comments`` column.

Each inspector's latest grade of an object carries the comment given with it (the ``comment`` of
:data:`~pipeline.evaluation.grades.GRADE_COLUMNS`; ``""``: none), a skip's too (its note may say why
the object could not be graded). The catalogs that carry the grade consensus
(:mod:`pipeline.inspection.apply`) carry those comments in ``grade_comments``: the non-empty ones,
in inspector name order, each as ``name: text``, joined by `` | ``; ``""`` where no inspector
commented. In a text, ``\`` and ``|`` are preceded by ``\``, so that the separator never occurs
inside a comment and :func:`split_comments` gives every comment back exactly (an inspector name
holds no ``:`` nor blank: :data:`~pipeline.evaluation.grades.INSPECTOR_PATTERN`). The grades left
out of the consensus (of ids not in the catalog, or made before an ingest re-read the object's
images: :mod:`pipeline.evaluation.outdated`) are left out here too. The report shows them, each
inspector's apart and HTML-escaped, on each gallery card and candidate page (:func:`row_comments`)
and in its visual-grades table.

Parquet, VOTable and HATS hold the text as it is (UTF-8). FITS strings are printable ASCII: the
FITS catalog holds non-ASCII characters, control characters (a line break) and ``%``
percent-encoded as UTF-8, as every text column there (:data:`pipeline.catalog.fits.STRING_ENCODING`,
header card ``LHSTRENC``; :func:`urllib.parse.unquote` and :func:`pipeline.catalog.read_catalog`
restore them), and says so in its header's comments.

Examples
--------
>>> text = join_comments({"bob": "ring | or arc?", "ann": "Einstein ring, à l'œil", "cy": ""})
>>> print(text)
ann: Einstein ring, à l'œil | bob: ring \| or arc?
>>> split_comments(text) == {"ann": "Einstein ring, à l'œil", "bob": "ring | or arc?"}
True
>>> split_comments("")
{}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from schemas.catalog import GRADE_COMMENTS_COLUMN as COMMENTS_COLUMN

__all__ = ["COMMENTS_COLUMN", "comments_column", "join_comments", "row_comments", "split_comments"]
SEPARATOR = " | "
"""Between two inspectors' comments; a ``|`` inside a comment is preceded by ``\\``."""
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def join_comments(comments: Mapping[str, str]) -> str:
    """Inspector -> comment as one text: ``name: text`` joined by :data:`SEPARATOR`, in name order,
    empty comments left out, ``\\`` and ``|`` in a text preceded by ``\\``; ``""`` for none."""
    return SEPARATOR.join(
        f"{inspector}: {_escape(comment)}" for inspector, comment in sorted(comments.items()) if comment
    )


def split_comments(text: str) -> dict[str, str]:
    """Inspector -> comment of a ``grade_comments`` value (:func:`join_comments`' inverse).

    Every ``|`` of an escaped comment follows a ``\\``, so a ``|`` after a blank is a separator.
    """
    comments = {}
    for entry in text.split(SEPARATOR) if text else ():
        inspector, _, comment = entry.partition(": ")
        comments[inspector] = _ESCAPED.sub(r"\1", comment)
    return comments


def comments_column(object_ids: np.ndarray, grades: pd.DataFrame) -> np.ndarray:
    """``grade_comments`` for ``object_ids`` (catalog row order) from the latest grades.

    Parameters
    ----------
    object_ids : numpy.ndarray
        The catalog's object ids.
    grades : pandas.DataFrame
        One row per (object, inspector): ``object_id``, ``inspector`` and ``comment``
        (:func:`pipeline.evaluation.grades.latest_grades`), skips included.

    Returns
    -------
    numpy.ndarray
        One string per object (``""`` where none commented), dtype object.
    """
    by_object: dict[int, dict[str, str]] = {}
    commented = grades.loc[grades["comment"].astype(str) != "", ["object_id", "inspector", "comment"]]
    for object_id, inspector, comment in commented.itertuples(index=False):
        by_object.setdefault(int(object_id), {})[str(inspector)] = str(comment)
    texts = [join_comments(by_object.get(int(object_id), {})) for object_id in object_ids]
    return np.asarray(texts, dtype=object)


def row_comments(row: Mapping[str, object]) -> dict[str, str]:
    r"""Inspector -> comment of a catalog row's ``grade_comments`` (:func:`split_comments`: escapes
    undone), as the report's cards and candidate pages show them.

    ``{}`` where none commented, and for a catalog without the column (not graded, or graded before
    it existed) or a missing value (None, NaN).

    >>> row_comments({"grade_comments": "ann: <b>ring</b> \\| or arc? | bob: à l'œil"})
    {'ann': '<b>ring</b> | or arc?', 'bob': "à l'œil"}
    >>> row_comments({"grade_comments": ""}), row_comments({"grade_comments": float("nan")}), row_comments({})
    ({}, {}, {})
    """
    text = row.get(COMMENTS_COLUMN)
    return split_comments(text) if isinstance(text, str) else {}
