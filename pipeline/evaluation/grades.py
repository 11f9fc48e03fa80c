"""Visual grades of candidates: the append-only grade log of a run, read back and consolidated.

Inspectors grade candidates A (sure lens), B (probable), C (possible), X (not a lens) or skip,
the scale of the Euclid Q1 strong-lens discovery engine (Walmsley et al. 2025, arXiv 2503.15326;
Euclid Collaboration: Lines et al. 2025, arXiv 2503.15328), SuGOHI (Sonnenfeld et al. 2018) and
HOLISMOKES (Cañameras et al. 2021).

Storage. Each inspector's grades go to ``RUN_DIR/grades/<inspector>.jsonl``, one JSON object per
line with the columns of :data:`GRADE_COLUMNS`; every grade is written, flushed and ``fsync``-ed
before the page is told it is saved, so killing the browser or the server loses nothing. A kill
in mid-write can leave a torn last line: readers skip lines that are not grades (and count them;
the rule is in :mod:`pipeline.evaluation.grade_rows`: the file names the inspector, so a line naming
another is skipped too), and the next append starts on a fresh line. The latest grade of an
(object, inspector) pair wins, so going back and regrading replaces the earlier grade while
the log keeps the history; a ``skip`` given after a grade is the latest too, and withdraws that
grade from the consensus (:mod:`pipeline.evaluation.consensus`: a skip is no grade).
:func:`export_grades` consolidates the log (latest grades of every
inspector) into ``grades.parquet`` and ``grades.fits`` for the catalog tools (astropy, pandas,
TOPCAT).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> log = GradeLog(folder, "ann")
>>> _ = log.append(7, "B", score=0.9, model_id="m")
>>> _ = log.append(7, "A", score=0.9, model_id="m")  # regraded: the latest wins
>>> latest_grades(read_grades(folder))[["object_id", "grade", "inspector"]].values.tolist()
[[7, 'A', 'ann']]
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError

GRADES = ("A", "B", "C", "X", "skip")
"""Grades an inspector can give; ``skip`` records that the object was seen but not graded."""
GRADE_COLUMNS = ("object_id", "grade", "inspector", "time", "score", "model_id", "comment")
"""Columns of a grade table: object id, grade, inspector name, UTC time (ISO 8601, ``Z``),
the object's score when it was graded, the id of the model that scored it and the inspector's
free-text note with the grade (``""``: none; logs written before comments existed have none)."""
GRADES_DIR = "grades"
INSPECTOR_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class GradeError(LenshuntError, ValueError):
    """A grade, an inspector name or a grade table that cannot be used."""


class GradeLockError(GradeError):
    """Another process already writes this inspector's grade log."""


def grades_dir(run_dir: str | Path) -> Path:
    """``RUN_DIR/grades``: the grade logs and their consolidated copies."""
    return Path(run_dir) / GRADES_DIR


def check_inspector(name: str) -> str:
    """The inspector name if it is usable as a file name (ASCII letters, digits, ``._-``; 1-64 chars)."""
    if not isinstance(name, str) or not INSPECTOR_PATTERN.match(name):
        raise GradeError(  # trial: "zoë" was refused for "letters", ë being one
            f"inspector name {name!r} is not usable: give 1-64 ASCII letters (A-Z, a-z), digits, '.', '_' "
            "or '-' starting with a letter or digit (e.g. --inspector jdoe, or zoe for zoë)"
        )
    return name


def check_grade(grade: str) -> str:
    """``grade`` if it is a string of :data:`GRADES` (case-insensitive for the letters).

    Raises
    ------
    GradeError
        For anything else, a non-string (``1``, ``true``, ``null``) included.
    """
    if not isinstance(grade, str):
        raise GradeError(f"grade {grade!r} is not a string: give one of {', '.join(GRADES)}")
    value = grade if grade == "skip" else grade.upper()
    if value not in GRADES:
        raise GradeError(f"grade {grade!r} is not one of {', '.join(GRADES)}")
    return value


def utc_now() -> str:
    """Now as ``YYYY-MM-DDThh:mm:ss.ffffffZ`` (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class GradeLog:
    """One inspector's append-only grade log in a grades folder (``<folder>/<inspector>.jsonl``).

    The file (and the folder) is created by the first :meth:`append`, so a session that never
    grades leaves nothing behind. Every :meth:`append` writes one line, flushes and ``fsync``-s
    it before returning. An inspector name that differs only in case from a log already in the
    folder is refused (:func:`~pipeline.evaluation.grade_rows.case_twins`). :meth:`claim` takes the
    inspector's exclusive lock (``<folder>/.<inspector>.lock``, ``fcntl.flock``), held until
    :meth:`close` or the end of the process (the OS releases it on a kill), so two servers cannot
    write one log.
    """

    def __init__(self, folder: str | Path, inspector: str) -> None:
        self.inspector = check_inspector(inspector)
        self.path = Path(folder) / f"{inspector}.jsonl"
        self.lock_path = Path(folder) / f".{inspector}.lock"
        self._file = None
        self._lock = None
        self._check_case()

    def _check_case(self) -> None:
        """Refuse a name that differs only in case from a log in the folder (trial: Ann and ann
        counted as two inspectors, and are one file on a case-insensitive disk)."""
        from pipeline.evaluation.grade_rows import case_twins

        twins = case_twins(self.path.parent, self.inspector)
        if twins:
            raise GradeError(
                f"inspector {self.inspector!r} differs only in case from the grade log "
                f"{self.path.parent / twins[0]}: if that is you, give --inspector {Path(twins[0]).stem}; "
                "if not, choose a name that differs by more than case"
            )

    def claim(self) -> None:
        """Take this inspector's exclusive lock on the grades folder (non-blocking).

        Raises
        ------
        GradeLockError
            If another process (another ``lenshunt inspect``) holds it.
        """
        import fcntl

        if self._lock is not None:
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_path, "a+")  # noqa: SIM115 - held for the session
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise GradeLockError(
                f"another lenshunt inspect (pid {holder}) is already grading as {self.inspector} in "
                f"{self.path.parent}: stop it, or grade under another --inspector name"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _open(self):
        if self._file is None:
            self._check_case()  # again: another spelling's first grade may have come since
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the session
            if self._file.tell() > 0 and not _ends_with_newline(self.path):
                self._file.write(b"\n")  # a torn line from a kill stays alone on its line
                self._sync()
        return self._file

    def append(
        self,
        object_id: int,
        grade: str,
        *,
        score: float | None = None,
        model_id: str = "",
        time: str | None = None,
        comment: str | None = None,
    ) -> dict:
        """Record one grade (and the inspector's ``comment`` on it, :func:`check_comment`) durably;
        returns the row written."""
        from pipeline.evaluation.grade_rows import check_comment

        row = {
            "object_id": int(object_id),
            "grade": check_grade(grade),
            "inspector": self.inspector,
            "time": time or utc_now(),
            "score": None if score is None or not math.isfinite(score) else float(score),
            "model_id": str(model_id),
            "comment": check_comment(comment),
        }
        self._open().write((json.dumps(row) + "\n").encode())
        self._sync()
        return row

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the log and release the lock (both may be taken again)."""
        for handle in (self._file, self._lock):
            if handle is not None:
                handle.close()
        self._file = self._lock = None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def empty_grades() -> pd.DataFrame:
    """A grade table without rows, with the dtypes of :func:`read_grades`."""
    return _typed(pd.DataFrame({name: [] for name in GRADE_COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"object_id": np.int64, "score": np.float64})
    for name in ("grade", "inspector", "time", "model_id", "comment"):
        frame[name] = frame[name].astype(str)
    frame.attrs["n_bad_lines"] = frame.attrs.get("n_bad_lines", 0)
    return frame.reset_index(drop=True)


def grade_files(source: str | Path) -> list[Path]:
    """The grade tables of ``source``: a run directory, a grades folder or one file."""
    from pipeline.evaluation.grade_rows import check_case_twins

    source = Path(source)
    if source.is_dir():
        folder = grades_dir(source) if grades_dir(source).is_dir() else source
        logs = sorted(folder.glob("*.jsonl"))
        check_case_twins(logs)  # Ann.jsonl beside ann.jsonl: one person or two? (trial)
        return logs
    if source.is_file():
        return [source]
    raise GradeError(
        f"no grades at {source}: give a run directory (with grades/), a grades folder, a .jsonl log "
        "or an exported grades.parquet / grades.fits; grades are made with `lenshunt inspect RUN_DIR`"
    )


EXPORTED_GRADES = ("grades.parquet", "grades.fits")
"""The tables :func:`export_grades` writes in a run's ``grades/`` folder."""


def holds_grades(folder: str | Path) -> bool:
    """Whether a ``grades/`` folder holds a grade log or an exported grade table (trial: an exported
    table alone escaped the check that a folder's grades belong to the store scored into it)."""
    folder = Path(folder)
    return any(folder.glob("*.jsonl")) or any((folder / name).is_file() for name in EXPORTED_GRADES)


def read_grades(*sources: str | Path) -> pd.DataFrame:
    """Every grade row of the sources (logs, exported Parquet/FITS tables, run dirs), in file order.

    A log's line or a table's row that is not a grade (a torn last line after a kill, damage, a value
    that breaks the rule of :mod:`pipeline.evaluation.grade_rows`, or in a log a line naming another
    inspector than its file) is skipped; their number is in ``attrs["n_bad_lines"]``, and where they
    are (``"PATH line N"``, or ``"PATH row N"`` of a table, with the reason but for a torn line) in
    ``attrs["bad_lines"]`` (see :func:`bad_lines_text`). The files of a grades folder that are not
    logs and that lenshunt did not write there (a grader's CSV) are in ``attrs["unread_files"]``
    (see :func:`grade_notes`).

    Raises
    ------
    GradeError
        When a source does not exist, or an exported table cannot be read or lacks a column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GRADE_COLUMNS`; ``score`` NaN where unknown.
    """
    from pipeline.evaluation.grade_rows import (
        check_line,
        check_row,
        log_lines,
        read_table,
        unread_files,
        where,
    )

    frames, bad, unread = [], [], []
    for source in sources:
        unread += unread_files(source)
        for path in grade_files(source):
            name = path.name.lower()
            if not name.endswith((".parquet", ".fits", ".fit", ".jsonl")):  # trial: a CSV read as a log
                raise GradeError(
                    f"{path} is no grade table: give a .jsonl grade log (lenshunt inspect writes them in "
                    "RUN_DIR/grades/), an exported grades.parquet or grades.fits, or a run directory"
                )
            if name.endswith(".jsonl"):
                raw = [(number, line) for number, line in enumerate(log_lines(path), start=1) if line.strip()]
                checked = [(number, *check_line(line, path.stem)) for number, line in raw]
            else:
                table = read_table(path)
                checked = [(number, *check_row(row)) for number, row in enumerate(table, start=1)]
            unit = "line" if name.endswith(".jsonl") else "row"
            bad += [where(path, unit, number, reason) for number, row, reason in checked if row is None]
            rows = [row for _, row, _ in checked if row is not None]
            frames.append(pd.DataFrame(rows, columns=list(GRADE_COLUMNS)))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(GRADE_COLUMNS))
    frame = _typed(frame)
    frame.attrs["n_bad_lines"] = len(bad)
    frame.attrs["bad_lines"] = bad
    frame.attrs["unread_files"] = [str(path) for path in unread]
    return frame


def skipped_note(rows: pd.DataFrame) -> str | None:
    """The line saying which lines of the grade logs (or rows of tables) were skipped; None if none."""
    n_bad = int(rows.attrs.get("n_bad_lines", 0))
    if not n_bad:
        return None
    return (
        f"{n_bad} line(s) of the grade logs are not grades (torn by a kill, or damaged) and were "
        f"skipped: {bad_lines_text(rows.attrs.get('bad_lines', []))}"
    )


def grade_notes(rows: pd.DataFrame) -> list[str]:
    """The warning lines of grades read with :func:`read_grades`: lines skipped, files not read."""
    from pipeline.evaluation.grade_rows import unread_note

    return [
        note
        for note in (skipped_note(rows), unread_note(rows.attrs.get("unread_files", [])))
        if note is not None
    ]


def bad_lines_text(bad_lines: list[str], limit: int = 3) -> str:
    """Where skipped log lines are, for a warning: ``"RUN/grades/ann.jsonl line 7"``, the first
    ``limit`` named and the others counted (trial: the warnings did not name the file).

    >>> bad_lines_text(["g/ann.jsonl line 7"])
    'g/ann.jsonl line 7'
    >>> bad_lines_text([f"g/ann.jsonl line {n}" for n in range(1, 6)], limit=2)
    'g/ann.jsonl line 1, g/ann.jsonl line 2 and 3 more'
    """
    named = ", ".join(bad_lines[:limit])
    return named + (f" and {len(bad_lines) - limit} more" if len(bad_lines) > limit else "")


def _recorded_store(run_dir: str | Path) -> str | None:
    """The store the run's catalog records, or None (no catalog, or none recorded)."""
    from pipeline import paths
    from pipeline.catalog import read_provenance, run_store

    try:
        return str(run_store(run_dir, read_provenance(paths.catalog_parquet(run_dir)))) or None
    except (LenshuntError, OSError, ValueError):
        return None


def latest_grades(grades: pd.DataFrame) -> pd.DataFrame:
    """The latest grade of each (object, inspector) pair (by time; later rows win ties)."""
    if grades.empty:
        return grades.copy()
    ordered = grades.reset_index(drop=True).reset_index().sort_values(["time", "index"], kind="stable")
    latest = ordered.drop_duplicates(["object_id", "inspector"], keep="last").drop(columns="index")
    return latest.sort_values(["object_id", "inspector"]).reset_index(drop=True)


def split_unknown(grades: pd.DataFrame, object_ids) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split grades into those of ``object_ids`` (a catalog's) and those of ids it does not hold
    (trial: a grade of id 999999 counted as a graded object and listed in the report).

    >>> grades = pd.DataFrame({"object_id": [1, 999999], "grade": ["A", "B"]})
    >>> [part["object_id"].tolist() for part in split_unknown(grades, [1, 2])]
    [[1], [999999]]
    """
    known = grades["object_id"].isin(pd.Index(np.asarray(object_ids, dtype=np.int64)))
    return grades[known], grades[~known]


def unknown_note(unknown: pd.DataFrame) -> str | None:
    """The line saying which grades were left out as of ids not in the catalog; None if none."""
    if unknown.empty:
        return None
    ids = sorted(set(unknown["object_id"].tolist()))
    examples = ", ".join(str(oid) for oid in ids[:3]) + (" ..." if len(ids) > 3 else "")
    return (
        f"{len(unknown)} grade(s) of {len(ids)} object id(s) not in this run's catalog (e.g. {examples}) "
        "are left out: they were made on another run, or the log was edited; grade this run's objects "
        "on its page (lenshunt inspect RUN_DIR)"
    )


def export_grades(
    run_dir: str | Path,
    sources: Iterable[str | Path] | None = None,
    store: str | Path | None = None,
    *,
    rows: pd.DataFrame | None = None,
) -> tuple[Path, Path]:
    """Write the latest grades to ``grades/grades.parquet`` and ``grades/grades.fits``.

    Columns :data:`GRADE_COLUMNS` (in the FITS table text percent-encoded as the catalogs' text:
    :data:`pipeline.catalog.fits.STRING_ENCODING`) and ``outdated``: True for a grade made before an
    ingest re-read its object's images (:mod:`pipeline.evaluation.outdated`), which every consensus
    leaves out (trial: the tables kept them unmarked). ``store`` is the scored store, default the one
    the run's catalog records; without one, no grade is outdated. Both tables describe their columns
    and record the run, its catalog's provenance and the rule of ``outdated``, and the FITS file has
    checksums (:mod:`pipeline.evaluation.grade_export`). ``rows``: the grades already read (with
    :func:`read_grades`, whose :func:`grade_notes` the caller says), instead of ``sources``.

    Returns
    -------
    tuple of pathlib.Path
        The Parquet and FITS tables.
    """
    from pipeline.evaluation.grade_export import grade_provenance, write_grade_tables
    from pipeline.evaluation.outdated import split_outdated, store_rewrites

    folder = grades_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    table = latest_grades(rows if rows is not None else read_grades(*(sources or [folder])))
    outdated_store = store or _recorded_store(run_dir)
    _, outdated = split_outdated(table, store_rewrites(outdated_store))
    table["outdated"] = table.index.isin(outdated.index)
    return write_grade_tables(table, folder, grade_provenance(run_dir, outdated_store))
