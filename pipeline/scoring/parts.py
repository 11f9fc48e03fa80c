"""A score run's parts: one Parquet file per scored row range, ``parts/scores-START-STOP.parquet``.

Scoring writes a part per region as it finishes (:mod:`pipeline.scoring.run`); a rerun scores only
the rows no part covers, and the catalog is assembled from all parts, each store row exactly once.
Rows to score again (an ingest rewrote them) are taken out of their part by splitting it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.atomic import check_replaceable
from pipeline.errors import ConservationError, ScoreOutputError
from pipeline.store.ingestion import plan_regions

PART_NAME = paths.SCORE_PART_NAME
"""A finished part's file name: its first row and the row after its last (12 digits each)."""
PART_TMP_NAME = re.compile(r"^scores-(\d{12})-(\d{12})\.tmp$")
"""A part being written (renamed to :data:`PART_NAME` when complete)."""


def uncovered_regions(
    covered: list[tuple[int, int]], n_rows: int, chunk_objects: int
) -> list[tuple[int, int]]:
    """Row regions of ``[0, n_rows)`` that no covered range holds, split every ``chunk_objects`` rows.

    Scoring only reads the store, so regions need not match its shards; a region size that
    divides the shard size keeps every read within one shard.

    >>> uncovered_regions([(0, 1024), (1024, 1500)], 2600, 1024)
    [(1500, 2048), (2048, 2600)]
    """
    regions: list[tuple[int, int]] = []
    row = 0
    for start, stop in [*sorted(covered), (n_rows, n_rows)]:
        if start > row:
            regions.extend(plan_regions(row, min(start, n_rows) - row, chunk_objects))
        row = max(row, stop)
    return regions


MAX_PART_PIECES = 16
"""Most pieces a score part is split into to rescore some of its rows (more: it is scored again whole)."""


PART_CORRUPT_SUFFIX = ".corrupt"
"""Appended to the name of a part that cannot be read, moved aside so that its rows are scored again."""


def readable_part(path: Path) -> bool:
    """Whether the part at ``path`` has a readable Parquet footer with a ``row`` and ``object_id`` column.

    A part that has not (random bytes, a truncated file: its footer is at the end) is renamed to
    ``<name>.corrupt`` beside it (kept for a look, never read again), so its rows count as not scored.

    Parameters
    ----------
    path : pathlib.Path
        A file named as :data:`PART_NAME` says.

    Returns
    -------
    bool
        True for a readable part; False for one moved aside (or gone meanwhile).
    """
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
        names = set(parquet.schema_arrow.names)
    except FileNotFoundError:
        return False
    except Exception as exc:  # pyarrow: ArrowInvalid, OSError, ... for a file that is no Parquet
        move_aside(path, f"{type(exc).__name__}: {exc}")
        return False
    match = PART_NAME.match(path.name)
    expected = int(match.group(2)) - int(match.group(1)) if match else rows
    if rows != expected or not {"row", "object_id"} <= names:
        found = f"{rows} rows of columns {sorted(names)}"
        move_aside(path, f"{found}, expected {expected} rows with row and object_id")
        return False
    return True


def move_aside(path: Path, why: str) -> None:
    """Rename an unreadable part to ``<name>.corrupt`` (replacing an older one) and log why."""
    aside = path.with_name(path.name + PART_CORRUPT_SUFFIX)
    try:
        path.replace(aside)
    except FileNotFoundError:
        return
    except OSError as exc:  # review: a read-only run directory was a traceback
        raise ScoreOutputError(
            f"score part {path} cannot be read ({' '.join(why.split())[:200]}) nor moved aside ({exc}): "
            "remove it, or score into another directory"
        ) from exc
    logging.getLogger(__name__).warning(
        "score part %s cannot be read (%s): moved aside to %s; its rows are scored again",
        path,
        " ".join(why.split())[:200],
        aside.name,
    )


def existing_parts(out_dir: Path) -> dict[tuple[int, int], Path]:
    """Readable score parts already written in ``out_dir``, by row range.

    A part that cannot be read is moved aside (:func:`readable_part`), so that the regions it held
    are scored again rather than failing the catalog's assembly.

    Parameters
    ----------
    out_dir : pathlib.Path
        The score run's output directory.

    Returns
    -------
    dict
        ``(start, stop)`` -> path of the part holding rows ``start:stop``.
    """
    parts = {}
    directory = paths.score_parts_dir(out_dir)
    if directory.is_dir():
        for path in directory.iterdir():
            match = PART_NAME.match(path.name)
            if match and readable_part(path):
                parts[(int(match.group(1)), int(match.group(2)))] = path
    return parts


def take_out_rows(out_dir: Path, rows: set[int], batch_size: int = 1) -> int:
    """Take ``rows`` out of the score parts holding them; the number of rows taken out.

    A part is split into parts of its other rows (written before it is deleted, so a kill leaves
    at worst the same rows twice, which the next run splits again), so that only ``rows`` are scored
    again. Each run of ``rows`` is then a region of its own, scored in (padded) passes of
    ``batch_size``: a part is deleted whole, and all its rows scored again, where that costs no more
    passes than its runs would (review: 17 holes in a 1024-row part were 17 padded passes of 256),
    where it would split into more than :data:`MAX_PART_PIECES` pieces, or where it cannot be read.
    """
    n = 0
    wanted = np.asarray(sorted(rows), dtype=np.int64)
    for (start, stop), path in existing_parts(out_dir).items():
        inside = wanted[(wanted >= start) & (wanted < stop)]
        if not inside.size:
            continue
        keep = np.ones(stop - start, dtype=bool)
        keep[inside - start] = False
        edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
        pieces = [(start + int(a), start + int(b)) for a, b in zip(edges[::2], edges[1::2])]
        n_runs = int(np.count_nonzero(np.diff(np.concatenate([[1], keep.astype(np.int8)])) == -1))
        whole_passes = -(-(stop - start) // batch_size)
        worth = len(pieces) <= MAX_PART_PIECES and n_runs < whole_passes
        try:
            part = pd.read_parquet(path) if worth else None
        except Exception:  # damaged data pages behind a sound footer: all its rows are scored again
            part = None
        if part is None:
            pieces = []
        for first, last in pieces:
            piece = part[(part["row"] >= first) & (part["row"] < last)]
            target = paths.score_part_file(out_dir, first, last)
            tmp = target.with_suffix(".tmp")
            piece.to_parquet(tmp, index=False)
            tmp.replace(target)
        path.unlink()
        n += (stop - start) - sum(last - first for first, last in pieces)
    return n


def float32_probability_note(out_dir: Path, columns: list[str]) -> str:
    """A warning line when score parts of an earlier lenshunt hold a probability column in float32,
    else ``""``: their best candidates may tie near 1, as before the score head was applied in
    float64 (:mod:`pipeline.models.logits`; trial: a work directory scored before that kept 120 of
    its 150 scores in float32 after an incremental run, unsaid). Only the parts' footers are read.
    """
    import pyarrow.parquet as pq

    rows = 0
    for (start, stop), path in existing_parts(out_dir).items():
        with contextlib.suppress(Exception):  # an unreadable part is assemble_parts's to report
            schema = pq.read_schema(path)
            if any(name in schema.names and str(schema.field(name).type) == "float" for name in columns):
                rows += stop - start
    if not rows:
        return ""
    return (
        f"{rows} objects keep scores of parts written by an earlier lenshunt in float32, where the best "
        "candidates may tie near 1 (their rank then follows the object id); rerun with --overwrite to "
        "score them again in float64"
    )


def assemble_parts(out_dir: Path, store_object_ids: np.ndarray) -> pd.DataFrame:
    """All parts concatenated in row order, checked to cover each store row exactly once.

    Parameters
    ----------
    out_dir : pathlib.Path
        The score run's output directory.
    store_object_ids : numpy.ndarray
        The store's ``object_id`` column, in row order.

    Returns
    -------
    pandas.DataFrame
        One row per store row, sorted by ``row``.

    Raises
    ------
    ConservationError
        If the parts miss or repeat rows, name other objects than the store rows, or one cannot be
        read past its footer (it is then moved aside: the same command scores its rows again).
    """
    parts = existing_parts(out_dir)
    frames = []
    for _, path in sorted(parts.items()):
        try:
            frames.append(pd.read_parquet(path))
        except Exception as exc:  # damaged data pages behind a readable footer
            move_aside(path, f"{type(exc).__name__}: {exc}")
            raise ConservationError(
                f"score part {path} cannot be read ({type(exc).__name__}); it was moved aside to "
                f"{path.name}{PART_CORRUPT_SUFFIX}: run the same score command again to score its rows anew"
            ) from exc
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"row": [], "object_id": []})
    n = len(store_object_ids)
    rows = table["row"].to_numpy()
    if len(table) != n or not np.array_equal(np.sort(rows), np.arange(n)):
        raise ConservationError(
            f"score parts in {out_dir} cover {len(table)} rows ({len(np.unique(rows))} distinct) but the "
            f"store has {n}; rerun the score stage to fill gaps, or --overwrite"
        )
    table = table.sort_values("row").reset_index(drop=True)
    if not np.array_equal(table["object_id"].to_numpy(), store_object_ids):
        raise ConservationError(
            f"score parts in {out_dir} name other objects than the store rows they cover: the store "
            "was rebuilt since; score it into a new --out or pass --overwrite"
        )
    return table


def discard_score_run(out_dir: Path) -> None:
    """Delete what a score run wrote in ``out_dir``, and nothing else.

    Only files lenshunt names are removed: score parts (``parts/scores-*.parquet`` and their
    temporary files), and, where ``score-run.json`` shows a lenshunt score run was here, the
    catalog files (FITS, Parquet, VOTable, the HATS catalog directory and their record) and the metrics file,
    and the run file itself (last). Other files, in ``parts/`` or elsewhere, are kept; ``parts/``
    is removed only if that left it empty. The run's lock file (``paths.score_lock_file``) is kept:
    removed while another run holds it open, a third could take a new one beside it.
    """
    run_file = paths.score_run_file(out_dir)
    if run_file.exists():
        for path in (
            paths.catalog_fits(out_dir),
            paths.catalog_parquet(out_dir),
            paths.catalog_votable(out_dir),
            paths.catalog_files_record(out_dir),
            paths.metrics_file(out_dir),
        ):
            path.unlink(missing_ok=True)
        shutil.rmtree(paths.catalog_hats(out_dir), ignore_errors=True)  # written whole by lenshunt
    parts_dir = paths.score_parts_dir(out_dir)
    if parts_dir.is_dir():
        for path in parts_dir.iterdir():
            if PART_NAME.match(path.name) or PART_TMP_NAME.match(path.name):
                path.unlink()
        with contextlib.suppress(OSError):
            parts_dir.rmdir()  # only when empty
    run_file.unlink(missing_ok=True)


def remove_stale_evaluation(out_dir: Path) -> tuple[list[str], list[str]]:
    """Delete the evaluation of an earlier catalog in ``out_dir``: (what was deleted, what was not).

    A score run that scores rows (objects an ingest added or rewrote) changes the catalog, and the
    metrics (``metrics.json``) and the report of the one before would stay beside it, describing
    other scores without a word (new-user trial). Both are remade by ``lenshunt evaluate``.
    In ``report/`` only what that writes (:data:`pipeline.paths.REPORT_WRITTEN`) is deleted, and
    only when it holds the report page; other files there are the user's and are kept, and so is
    the folder (or a link to one). The page goes last: it marks the folder as a report, so a
    removal cut short is finished by the next run. A file that cannot be deleted or looked at
    (permissions, a read-only disk) is listed second, with why, instead of failing the run.
    """
    report = paths.report_dir(out_dir)
    page = report / paths.REPORT_FILE
    targets, removed, kept = [paths.metrics_file(out_dir)], [], []
    what = f"{report} was not looked into"  # review: a report/ the user cannot enter
    try:
        if page.is_file():
            what = f"{page} was not deleted, nor its pictures"  # trial: the page stood without them
            check_replaceable(page)
            targets += [report / name for name in paths.REPORT_WRITTEN if name != paths.REPORT_FILE]
            targets.append(page)
    except OSError as exc:
        kept.append(f"{what} ({exc.strerror or exc})")
    for path in targets:
        try:
            if not path.exists() and not path.is_symlink():
                continue
            if path.is_dir() and not path.is_symlink() and path.name == "gallery":
                from pipeline.evaluation.gallery import remove_gallery

                remove_gallery(path)  # what evaluations wrote there (trial: the user's files went too)
            elif path.is_dir() and not path.is_symlink() and path.name == "files":
                for name in paths.REPORT_DOWNLOADS:  # trial: the user's files there went too
                    (path / name).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            kept.append(f"{path} was not deleted ({exc.strerror or exc})")
        else:
            removed.append(str(path) if path.parent != report else f"{report}/ (the report's own files)")
    if page in targets and not kept and not report.is_symlink():
        with contextlib.suppress(OSError):  # trial: an emptied report/ was left; one with user files stays
            report.rmdir()
    return list(dict.fromkeys(removed)), kept


def catalog_settings_changed(out_dir: Path, settings: dict) -> list[str]:
    """The ``settings`` (provenance fields) the catalog in ``out_dir`` was written with otherwise.

    The evaluation uses them (the threshold of the purity and completeness, the known-lens
    matches of the report), so a score run that changes one makes the evaluation stale even when
    it scores nothing (review). A catalog whose provenance cannot be read counts as differing in
    all; no catalog, in none. A known-lens table is compared by content (its SHA-256), not path
    (trial: a copy of the same table elsewhere made the evaluation stale).
    """
    from pipeline.catalog import read_provenance

    catalog = paths.catalog_parquet(out_dir)
    if not catalog.is_file():
        return []
    try:
        recorded = read_provenance(catalog).model_dump()
    except Exception:  # any unreadable catalog: its evaluation cannot be vouched for
        return list(settings)
    return [key for key, value in settings.items() if _content(recorded.get(key)) != _content(value)]


_TABLE_DIGEST = re.compile(r" \(sha256 ([0-9a-f]{16})\)$")


def _content(value: object) -> object:
    """A known-lens table's recorded source as its digest alone; any other value as it is."""
    match = _TABLE_DIGEST.search(value) if isinstance(value, str) else None
    return match.group(1) if match else value
