"""Reading grades back: the rule a log's line and an exported table's row must meet, and the files
of a grades folder that are not read.

A grade read from a log (``RUN_DIR/grades/<inspector>.jsonl``) or from an exported table
(``grades.parquet``, ``grades.fits``, or one edited with pandas) is kept only when:

* ``object_id`` is an integer in the int64 range (a float without a fraction up to 2**53, as a
  table column with gaps holds, is taken as that integer); a float with a fraction, a larger
  number, a string or a bool is no object id;
* ``grade`` is one of :data:`~pipeline.evaluation.grades.GRADES` (letters in either case: ``a``
  is ``A``), as the grading page and the logs take it;
* ``inspector`` is a usable name and, in a log, the log's own: the file is its inspector's log
  (the grading server writes ``<inspector>.jsonl``), so a line naming another inspector is not
  counted (trial: a line of ann's in ``carl.jsonl`` replaced ann's own grade);
* ``time`` is an ISO 8601 time (without a zone: UTC), read back in UTC; ``score`` is a number or
  missing; ``comment`` (the inspector's note) is read as text, ``""`` where missing (logs and tables
  written before comments existed have none); in it and in ``model_id`` an unpaired UTF-16
  surrogate (JSON's ``"\\ud800"``, which no UTF-8 file or table holds) is read as U+FFFD, the
  replacement character (trial: one such line crashed ``--export``, ``--apply``, ``evaluate``,
  ``train --grades`` and the server's shutdown).

Anything else is skipped by the readers, counted and named with the reason (trial: ids like
``1e30`` crashed every reader, ``100011.9`` became 100011, and an edited table's ``'maybe'`` was
dropped without a word).

Examples
--------
>>> grade_row({"object_id": 7, "grade": "a", "inspector": "ann", "time": "2026-12-05T00:00:00Z"})["grade"]
'A'
>>> check_object_id(100011.9)
Traceback (most recent call last):
    ...
pipeline.evaluation.grades.GradeError: object_id 100011.9 is not an integer id
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluation.grades import (
    EXPORTED_GRADES,
    GRADE_COLUMNS,
    GRADES_DIR,
    GradeError,
    bad_lines_text,
    check_grade,
    check_inspector,
    grades_dir,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXACT_FLOAT = 2**53
"""The largest integer every smaller integer of which a float64 holds exactly."""


def check_object_id(value: object) -> int:
    """``value`` as an object id: an integer in the int64 range (see the module docstring).

    Raises
    ------
    pipeline.evaluation.grades.GradeError
        For a float with a fraction or beyond 2**53, an integer outside int64, a string, a bool,
        None or anything else.
    """
    if isinstance(value, bool | np.bool_):
        raise GradeError(f"object_id {value} is not an integer id")
    exact_float = (
        isinstance(value, float | np.floating)
        and math.isfinite(value)
        and float(value).is_integer()
        and abs(value) <= EXACT_FLOAT
    )
    if not (isinstance(value, int | np.integer) or exact_float):
        shown = repr(value) if isinstance(value, str) else str(value)
        raise GradeError(f"object_id {shown} is not an integer id")
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise GradeError(f"object_id {number} is outside the int64 range")
    return number


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _time(value: object) -> str:
    """An ISO 8601 time (a string or a datetime; without a zone taken as UTC) as the logs write it:
    UTC, ``%Y-%m-%dT%H:%M:%S.%fZ``, so that times compare as text (trial: ``19:40:00+01:00`` beat a
    later ``18:45:00Z``, and ``"yesterday"`` a real grade).

    >>> _time("2026-12-05T19:40:00+01:00"), _time("2026-12-05 18:45")
    ('2026-12-05T18:40:00.000000Z', '2026-12-05T18:45:00.000000Z')
    """
    if isinstance(value, str) and value.strip():
        value = datetime.fromisoformat(value.strip())  # ValueError: not a time
    if not isinstance(value, datetime):  # a table edited with pandas may hold Timestamps
        raise ValueError
    when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def grade_row(raw: dict, *, log_inspector: str | None = None) -> dict:
    """One grade read back, checked and normalised: a dict of the columns of a grade table.

    Parameters
    ----------
    raw : dict
        A log's line (parsed JSON) or a table's row.
    log_inspector : str or None
        The inspector whose log ``raw`` is from (the file's name); None for a table's row.

    Raises
    ------
    pipeline.evaluation.grades.GradeError
        Saying which value is not a grade's (see the module docstring).
    """
    missing = [name for name in GRADE_COLUMNS[:4] if name not in raw]
    if missing:
        raise GradeError(f"no {', '.join(missing)}")
    object_id = check_object_id(raw["object_id"])
    grade = check_grade(raw["grade"])
    inspector = raw["inspector"]
    try:
        check_inspector(inspector)
    except GradeError:
        raise GradeError(f"inspector {inspector!r} is not a usable name") from None
    if log_inspector is not None and inspector != log_inspector:
        raise GradeError(f"inspector {inspector!r} in the log of {log_inspector}")
    try:
        time = _time(raw["time"])
    except ValueError:
        raise GradeError(f"time {raw['time']!r} is not a time") from None
    score = raw.get("score")
    try:
        score = math.nan if _missing(score) else float(score)
    except (TypeError, ValueError):
        raise GradeError(f"score {score!r} is not a number") from None
    model_id, comment = raw.get("model_id"), raw.get("comment")  # no comment in logs before them
    return {
        "object_id": object_id,
        "grade": grade,
        "inspector": inspector,
        "time": time,
        "score": score,
        "model_id": "" if _missing(model_id) else _utf8_text(str(model_id)),
        "comment": "" if _missing(comment) else _utf8_text(str(comment)),
    }


def _utf8_text(text: str) -> str:
    """``text`` with each unpaired UTF-16 surrogate (a JSON ``"\\ud800"``) replaced by U+FFFD, so that
    UTF-8 (Parquet, the FITS table's percent-encoding) can write it; a split pair is joined.

    >>> _utf8_text("arc \\ud800 NE") == "arc \\ufffd NE", _utf8_text("\\ud83d\\udd2d") == "\\U0001f52d"
    (True, True)
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def check_line(line: str, inspector: str) -> tuple[dict | None, str]:
    """A log line of ``inspector``'s as a grade row, or None and why not ("" for a torn line)."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None, ""  # not complete JSON: torn by a kill in mid-write
    if not isinstance(raw, dict):
        return None, "not a JSON object"
    try:
        return grade_row(raw, log_inspector=inspector), ""
    except GradeError as error:
        return None, str(error)


def where(path: Path, unit: str, number: int, reason: str) -> str:
    """Where a skipped grade is, for :func:`~pipeline.evaluation.grades.bad_lines_text`.

    >>> where(Path("g/ann.jsonl"), "line", 3, "grade 'Q' is not one of A, B, C, X, skip")
    "g/ann.jsonl line 3 (grade 'Q' is not one of A, B, C, X, skip)"
    """
    return f"{path} {unit} {number}" + (f" ({reason})" if reason else "")


def log_lines(path: Path) -> list[str]:
    """A log's lines: UTF-8, a byte-order mark (Notepad's) left out, CRLF line ends taken (trial: the
    first grade of a log saved with a BOM was skipped as damaged)."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    return [line.lstrip("\ufeff") for line in text.splitlines()]  # a BOM of a log appended to another


def check_row(row: dict) -> tuple[dict | None, str]:
    """A table's row as a grade row, or None and why not (trial: tables were never checked)."""
    try:
        return grade_row(row), ""
    except GradeError as error:
        return None, str(error)


def read_table(path: Path) -> list[dict]:
    """The rows of an exported grade table (Parquet or FITS) as dicts of :data:`GRADE_COLUMNS`."""
    name = path.name.lower()
    try:
        table = pd.read_parquet(path) if name.endswith(".parquet") else _read_fits_table(path)
    except (OSError, ValueError, KeyError) as exc:  # trial: a pyarrow or pandas traceback
        raise GradeError(
            f"cannot read the grade table {path} ({type(exc).__name__}: {_first_line(exc)}); an "
            f"exported table has columns {list(GRADE_COLUMNS)} (`lenshunt inspect RUN_DIR --export`)"
        ) from None
    missing = [column for column in GRADE_COLUMNS[:4] if column not in table.columns]
    if missing:  # trial: pyarrow named the first only
        raise GradeError(
            f"the grade table {path} lacks columns {missing} (has {list(table.columns)}); a grade table "
            f"has columns {list(GRADE_COLUMNS[:4])}, and {list(GRADE_COLUMNS[4:])} where known "
            "(`lenshunt inspect RUN_DIR --export` writes them all)"
        )
    for column in GRADE_COLUMNS[4:]:  # score, model_id, comment: unknown in a table made by hand (trial)
        if column not in table.columns:
            table[column] = None
    return table[list(GRADE_COLUMNS)].astype(object).to_dict("records")


def _read_fits_table(path: Path) -> pd.DataFrame:
    """A grade table's FITS file, its percent-encoded text decoded (:func:`export_grades`)."""
    from urllib.parse import unquote

    from astropy.table import Table

    from pipeline.catalog.fits import STRING_ENCODING_KEY

    astro = Table.read(path, character_as_bytes=False)
    table = astro.to_pandas()
    if STRING_ENCODING_KEY in astro.meta:
        for name in ("model_id", "comment"):
            if name in table.columns:
                table[name] = [unquote(value) if isinstance(value, str) else value for value in table[name]]
    return table


MAX_COMMENT = 1000
"""The most characters of a grade's comment (a note, not a report)."""


def check_comment(comment: object) -> str:
    """``comment`` as a grade's comment: a string of at most :data:`MAX_COMMENT` characters, its ends'
    blanks dropped; ``""`` for None.

    >>> check_comment("  arc to the NE, faint counter-image  "), check_comment(None)
    ('arc to the NE, faint counter-image', '')

    Raises
    ------
    pipeline.evaluation.grades.GradeError
        For a comment that is not a string (or holds an unpaired UTF-16 surrogate), or too long.
    """
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise GradeError(f"comment {comment!r} is not text: give a string or null")
    if _utf8_text(comment) != comment:  # trial: a posted "\\ud800" was logged, then crashed every reader
        raise GradeError("the comment holds an unpaired UTF-16 surrogate, which is not text: give UTF-8 text")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise GradeError(f"the comment has {len(comment)} characters: give at most {MAX_COMMENT}")
    return comment


def unread_files(source: str | Path) -> list[Path]:
    """The files of the grades folder of ``source`` (a run directory or a grades folder) that are not
    grade logs and were not written there by lenshunt (its exported tables, ``selection-*.csv``
    lists, hidden lock and temporary files): a grader's CSV, say, which nothing reads (trial: ignored
    without a word). Empty for a file, or a folder that is neither a grades folder nor holds one."""
    source = Path(source)
    if grades_dir(source).is_dir():
        folder = grades_dir(source)
    elif source.is_dir() and source.name == GRADES_DIR:
        folder = source
    else:
        return []  # a file, or a folder without grades/
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and path.suffix != ".jsonl"
        and path.name not in EXPORTED_GRADES
        and not (path.name.startswith("selection-") and path.suffix == ".csv")
    )


def unread_note(unread: list[str]) -> str | None:
    """The line saying which files of a grades folder are not read, and how to use them; None if none.

    >>> unread_note(["run/grades/lee.csv"])  # doctest: +ELLIPSIS
    'run/grades/lee.csv is not read: only <inspector>.jsonl grade logs in grades/ count; ...'
    """
    if not unread:
        return None
    named = bad_lines_text(list(unread))
    return (
        f"{named} {'is' if len(unread) == 1 else 'are'} not read: only <inspector>.jsonl grade logs in "
        "grades/ count; grade on the page (lenshunt inspect RUN_DIR), write the grades as "
        "<inspector>.jsonl lines (object_id, grade, inspector, time), or give a table with the columns "
        f"of an exported grades.parquet to lenshunt train --grades TABLE"
    )


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message (pyarrow's run over several)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def case_twins(folder: str | Path, inspector: str) -> list[str]:
    """The grade logs of ``folder`` whose inspector differs from ``inspector`` only in case.

    Read from the folder's listing, so a case-insensitive disk (macOS, Windows), where
    ``Ann.jsonl`` opens ``ann.jsonl``, names the file as it is stored.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "ann.jsonl").write_text("")
    >>> case_twins(folder, "Ann"), case_twins(folder, "ann"), case_twins(folder, "bob")
    (['ann.jsonl'], [], [])
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = f"{inspector}.jsonl"
    return sorted(name for name in os.listdir(folder) if name.lower() == wanted.lower() and name != wanted)


def check_case_twins(paths: list[Path]) -> None:
    """Refuse grade logs whose inspectors differ only in case (``Ann.jsonl`` beside ``ann.jsonl``).

    lenshunt cannot tell one person who typed their name two ways from two people, so it neither
    counts them as two inspectors (one person's grade would count twice) nor merges them (two
    people's grades would count once); on a case-insensitive disk the two are even one file.

    Raises
    ------
    GradeError
        Naming the logs and how to make them one inspector's or two.
    """
    by_name: dict[str, list[Path]] = {}
    for path in paths:
        if path.suffix.lower() == ".jsonl":
            by_name.setdefault(path.stem.lower(), []).append(path)
    twins = [group for group in by_name.values() if len(group) > 1]
    if twins:
        named = "; ".join(" and ".join(str(path) for path in group) for group in twins)
        raise GradeError(
            f"grade logs {named} name inspectors that differ only in case: lenshunt cannot tell one "
            "person from two (and on macOS or Windows disks they are one file), so it counts neither; "
            "if one person, move the lines of one into the other and set their inspector to its name; "
            "if two, rename one log and the inspector of its lines to a name differing by more than case"
        )
