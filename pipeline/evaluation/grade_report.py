"""The report's section on visual grades: the consensus of a run's grades beside the scores.

Read from the run's grade logs (``RUN_DIR/grades/``, see :mod:`pipeline.evaluation.grades`), so
the report shows the latest grades whether or not they were applied to the catalog. Grades made
before an ingest re-read their object's images are left out and counted
(:mod:`pipeline.evaluation.outdated`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.evaluation.by_inspector import inspector_rows, object_grades
from pipeline.evaluation.consensus import consensus, consensus_summary
from pipeline.evaluation.grade_comments import comments_column, split_comments
from pipeline.evaluation.grade_rows import unread_files, unread_note
from pipeline.evaluation.grades import (
    bad_lines_text,
    grade_notes,
    grades_dir,
    latest_grades,
    read_grades,
    split_unknown,
    unknown_note,
)
from pipeline.evaluation.outdated import outdated_note, split_outdated, store_rewrites
from pipeline.evaluation.outputs_view import score_text

TOP_GRADED = 30
TRUTH = {1: "lens", 0: "non-lens", -1: "unknown"}
"""The catalog's ``label`` in words (the truth column of a labelled set)."""


def grade_section(
    run_dir: str | Path, catalog: pd.DataFrame, top: int = TOP_GRADED, *, store: str | Path | None = None
) -> dict | None:
    """Counts and the ``top`` best-graded objects of the run, or None when it has no grades (and
    nothing to say of its ``grades/`` folder).

    ``store`` is the scored store, whose re-read objects' older grades are left out (none when None).

    Returns
    -------
    dict or None
        ``summary`` (see :func:`pipeline.evaluation.consensus.consensus_summary`, plus
        ``inspectors``, ``n_grades`` and ``n_skips`` (the latest grade of an object by an inspector,
        skips apart), ``n_outdated``, ``n_bad_lines``, ``bad_lines_where``,
        ``n_unknown_objects`` and ``unknown_note`` (grades of ids not in ``catalog``, left out) and
        ``unread_note`` (files of ``grades/`` that are not logs)), ``by_inspector``
        (each inspector's counts and agreement with the consensus:
        :func:`pipeline.evaluation.by_inspector.inspector_rows`),
        ``n_shown`` (rows shown) and ``full_table`` (where every grade is, in words),
        ``rows`` (object id, truth ``label`` in words on a labelled set, else "", ``page`` None,
        score, rank, grade mode, ``tie`` (how a tie chose the mode, :func:`tie_text`, or ""), mean,
        number, agreement and ``comments``: inspector -> comment of
        their latest grades, skips' too, as the catalog's ``grade_comments`` holds them after
        ``lenshunt inspect --apply``, and ``grades``: each inspector's grade and time,
        :func:`pipeline.evaluation.by_inspector.object_grades`), the ``top`` best mean grades first,
        ``by_object`` (object id -> its inspectors' grades, every graded object's, for the gallery),
        ``ties`` (object id -> :func:`tie_text`, for the objects whose mode a tie chose),
        ``labelled`` (whether the catalog has labels) and ``note``
        (the line on grades left out as older than their images, or None).
    """
    folder = grades_dir(run_dir)
    if not folder.is_dir() or not (any(folder.glob("*.jsonl")) or unread_files(run_dir)):
        return None
    rows_read = read_grades(run_dir)
    grades, unknown = split_unknown(latest_grades(rows_read), catalog["object_id"])  # trial: listed
    grades, outdated = split_outdated(grades, store_rewrites(store))
    table = consensus(grades)
    notes = grade_notes(rows_read)
    if table.empty and outdated.empty and unknown.empty and not notes:
        return None
    summary = consensus_summary(table)
    summary["n_outdated"] = len(outdated)
    summary["n_bad_lines"] = int(rows_read.attrs.get("n_bad_lines", 0))
    summary["bad_lines_where"] = bad_lines_text(rows_read.attrs.get("bad_lines", []))
    summary["n_unknown_objects"] = int(unknown["object_id"].nunique())
    summary["unknown_note"] = unknown_note(unknown)
    summary["unread_note"] = unread_note(rows_read.attrs.get("unread_files", []))
    skips = grades["grade"].eq("skip")  # a skip is no grade: counted apart (trial: "N grades" took them in)
    summary["inspectors"] = ", ".join(sorted(set(grades.loc[~skips, "inspector"])))
    summary["n_grades"], summary["n_skips"] = int((~skips).sum()), int(skips.sum())
    summary["by_inspector"] = inspector_rows(grades, table)  # trial: who gave which grade was unsaid
    by_object = object_grades(grades, table)
    labelled = "label" in catalog and bool((catalog["label"].to_numpy() >= 0).any())
    columns = ["object_id", "score", "rank", *(["label"] if labelled else [])]
    merged = table.merge(catalog[columns], on="object_id", how="left")
    merged = merged.sort_values(["grade_mean", "grade_n", "rank"], ascending=[False, False, True])
    summary["n_shown"], summary["full_table"] = min(top, len(merged)), full_table_text(run_dir)
    shown = merged.head(top)
    comments = comments_column(shown["object_id"].to_numpy(), grades)  # as --apply writes grade_comments
    rows = [
        {
            "object_id": int(row.object_id),
            "label": TRUTH.get(int(row.label), "unknown") if labelled and not math.isnan(row.label) else "",
            "page": None,  # the candidate's page, where the report has one (link_pages)
            "score": "n/a" if math.isnan(row.score) else score_text(row.score, 4),
            "rank": "" if math.isnan(row.rank) else int(row.rank),
            "mode": row.grade_mode,
            "tie": tie_text(row.grade_tie),  # trial: X vs A read as A
            "mean": f"{row.grade_mean:.2f}",
            "n": int(row.grade_n),
            "agreement": "n/a" if math.isnan(row.grade_agreement) else f"{row.grade_agreement:.2f}",
            "comments": split_comments(text),
            "grades": by_object.get(int(row.object_id), []),
        }
        for row, text in zip(shown.itertuples(), comments, strict=True)
    ]
    note = outdated_note(outdated, run_dir)
    ties = {int(i): tie_text(t) for i, t in zip(table["object_id"], table["grade_tie"], strict=True) if t}
    return {
        "summary": summary,
        "rows": rows,
        "by_object": by_object,
        "ties": ties,
        "labelled": labelled,
        "note": note,
    }


def tie_text(tied: str) -> str:
    """How a tie chose an object's modal grade, in words (``""`` without one).

    >>> tie_text("A vs X"), tie_text("")
    ('tie: A vs X, the lower taken', '')
    """
    return f"tie: {tied}, the lower taken" if tied else ""


def full_table_text(run_dir: str | Path) -> str:
    """Where every object's grades are, in words (the report's table shows the best-graded few;
    trial: it was cut to 30 rows without a word); the path absolute (final trial: relative to where
    ``lenshunt evaluate`` ran, which the page does not say)."""
    parquet = grades_dir(Path(run_dir).absolute()) / "grades.parquet"
    written = "" if parquet.is_file() else " (`lenshunt inspect RUN_DIR --export` writes them)"
    return (
        f"every grade is in {parquet} and grades.fits beside it{written}; the consensus per object is in "
        "the catalog's grade_n, grade_mean, grade_mode and grade_agreement columns after "
        "`lenshunt inspect RUN_DIR --apply`"
    )


def link_pages(section: dict | None, pages: dict[int, str]) -> dict | None:
    """``section`` (:func:`grade_section`) with each row's ``page``: its candidate page in the report
    (object id -> href, e.g. ``gallery/100141.html``), None where the gallery has none."""
    if section is not None:
        for row in section["rows"]:
            row["page"] = pages.get(row["object_id"])
    return section


def card_grades(cards: list[dict], section: Mapping[str, Any] | None) -> list[dict]:
    """``cards`` (:func:`pipeline.evaluation.cards.gallery_cards`) each with ``inspector_grades``: its
    object's grades by inspector from ``section`` (:func:`grade_section`'s ``by_object``; ``[]`` where
    none, or without a section), as its card and candidate page list them, and ``grade_tie``: how a
    tie chose its modal grade (:func:`tie_text`; ``""`` where none)."""
    by_object = section.get("by_object", {}) if section else {}
    ties = section.get("ties", {}) if section else {}
    for card in cards:
        card["inspector_grades"] = by_object.get(card["object_id"], [])
        card["grade_tie"] = ties.get(card["object_id"], "")
    return cards
