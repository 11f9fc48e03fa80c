"""The object ids of a label catalog's id column, as exact ints (see :mod:`pipeline.sources.labels`).

A spreadsheet in a decimal-comma locale writes an id column formatted with decimals as ``100120,00``
(trial: refused, while ``100120.0`` in a comma-separated file was read). Where the file writes its
decimals with a comma, as the reader decides for its other columns, such an id is read as its
number, refused if it is not whole; an id with thousands points (``100.120``) is refused there,
saying that a thousands separator is not read.
"""

from __future__ import annotations

import os

import pandas as pd

from pipeline.sources.spreadsheet import CatalogFormatError, exact_ids, rounded_scientific

_COMMA_NUMBER = r"\d+,\d+"
_THOUSANDS_COMMA = r"\d{1,3}(?:,\d{3})+"
_THOUSANDS = r"\d{1,3}(?:[.,]\d{3})+(?:[.,]\d*)?"
"""Grouped digits, with decimals or not (``100.120``, ``100,120``, ``100.120,00``): the hint's."""
_THOUSANDS_POINT = r"\d{1,3}(?:\.\d{3})+"


def _matching(texts: pd.Series, pattern: str) -> pd.Series:
    return texts.str.fullmatch(pattern).fillna(False).astype(bool)


def comma_is_decimal(raw_ids: pd.Series, delimiter: str, decimal_columns: list[str]) -> bool:
    """Whether the file writes decimals with a comma, as :func:`~pipeline.sources.spreadsheet.decimal_commas`
    decides for a column: a semicolon-separated file, one where another column holds decimal commas
    (``decimal_columns``), or one whose ids hold commas not all of which may be thousands separators
    and no decimal point.

    >>> ids = pd.Series(["100120,00", "7"])
    >>> comma_is_decimal(ids, ";", []), comma_is_decimal(ids, "\\t", []), comma_is_decimal(ids, ",", ["x"])
    (True, True, True)
    >>> comma_is_decimal(pd.Series(["100,120"]), "\\t", []), comma_is_decimal(ids, ",", [])
    (False, True)
    """
    if delimiter == ";" or decimal_columns:
        return True
    commas = _matching(raw_ids, _COMMA_NUMBER)
    points = raw_ids.str.contains(".", regex=False).fillna(False).astype(bool)
    return bool(commas.any() and not points.any() and not _matching(raw_ids[commas], _THOUSANDS_COMMA).all())


def id_texts(raw_ids: pd.Series, comma_decimal: bool) -> pd.Series:
    """The ids' texts with a decimal comma written as a point, and emptied (no id) where they hold
    thousands points and ``comma_decimal`` (``100.000`` would be read as id 100).

    A comma before an exponent (``1,00000E+05``) is a decimal one in any file: no thousands
    separator comes with an exponent.

    >>> id_texts(pd.Series(["100120,00", "1,5E+05", "100.000", "100120.0"]), True).tolist()
    ['100120.00', '1.5E+05', '', '100120.0']
    >>> id_texts(pd.Series(["100120,00", "1,5E+05", "100.000"]), False).tolist()
    ['100120,00', '1.5E+05', '100.000']
    """
    texts = raw_ids.str.replace(r"^(\d+),(\d*[eE][+-]?\d+)$", r"\1.\2", regex=True)
    if not comma_decimal:
        return texts
    commas = _matching(texts, _COMMA_NUMBER)
    texts = texts.where(~commas, texts.str.replace(",", ".", regex=False))
    return texts.where(~_matching(raw_ids, _THOUSANDS_POINT), "")


def refuse_word_ids(
    path: str | os.PathLike[str], lines: pd.Series, raw_ids: pd.Series, id_column: str
) -> None:
    """Refuse, before the other columns are read, a row whose id is a word (``Total``, ``Mean:``) among
    rows with ids: a spreadsheet's summary row (fresh-user trial: its sum in ``is_lens``, 71, was
    refused as no boolean, with advice to rewrite the column). Ids that are all words are left to
    :func:`object_ids`, which says that object ids are integers.

    Raises
    ------
    CatalogFormatError
        Naming the file, the first such line and the id.
    """
    words = raw_ids.str.fullmatch(r"[A-Za-z][A-Za-z .:()_-]*").fillna(False).astype(bool)
    if words.any() and not words.all():
        first = words.to_numpy().nonzero()[0][0]
        raise CatalogFormatError(
            f"label catalog {path} line {lines.iloc[first]}: id {raw_ids.iloc[first]!r} in column "
            f"{id_column!r} is not a non-negative integer object id ({int(words.sum())} such row(s)): a "
            "word, as in a summary row of a spreadsheet (a total or a mean)? Fix or delete such rows."
        )


def object_ids(
    path: str | os.PathLike[str],
    lines: pd.Series,
    raw_ids: pd.Series,
    id_column: str,
    largest: int,
    comma_decimal: bool,
) -> pd.Series:
    """The ids ``raw_ids`` (stripped texts, none empty) as exact Python ints (object dtype).

    Raises
    ------
    CatalogFormatError
        Naming the file and the line of the first id that is no whole number from 0 to ``largest``
        (saying that a thousands separator is not read where it looks like one), or that is in
        scientific notation with fewer digits than the id (a spreadsheet rounded it).
    """
    texts = id_texts(raw_ids, comma_decimal)
    exact = exact_ids(texts, largest)  # not float64: an id past 2**53 rounded to another's
    bad = exact.isna()
    if bad.any():
        first = bad.to_numpy().nonzero()[0][0]
        written = raw_ids.iloc[first]
        hint = ""
        if _matching(raw_ids.iloc[[first]], _THOUSANDS).iloc[0]:
            hint = " It may hold a thousands separator, which is not read in an id: write the id without one."
        elif comma_decimal and _matching(raw_ids.iloc[[first]], _COMMA_NUMBER).iloc[0]:
            hint = " It is read with a decimal comma, and is not a whole number."
        fix = "Fix or delete the row."
        if bad.all():  # trial: names such as J0001+0212 in every row were told to fix one row
            fix = (
                "No row's id is one: object ids are integers, as a layout's {id} in the file names; "
                'give the objects integer ids (docs/layouts.md, "What layouts cannot say").'
            )
        raise CatalogFormatError(
            f"label catalog {path} line {lines.iloc[first]}: id {written!r} in column {id_column!r} is not a "
            f"non-negative integer object id up to {largest} ({int(bad.sum())} such row(s)).{hint} {fix}"
        )
    rounded = rounded_scientific(texts, pd.to_numeric(texts, errors="coerce"))
    if rounded.any():  # trial: 1.23457E+06 (1234567) labelled object 1234570
        first = rounded.to_numpy().nonzero()[0][0]
        raise CatalogFormatError(
            f"label catalog {path} line {lines.iloc[first]}: id {raw_ids.iloc[first]!r} in column "
            f"{id_column!r} is in scientific notation with fewer digits than the id has: the spreadsheet "
            f"rounded it, so it may name another object ({int(rounded.sum())} such row(s)). Format the id "
            "column as a number with 0 decimals (or as text) and save the catalog again."
        )
    return exact


def layout_column(path: str | os.PathLike[str], line: int, columns: list[str], wanted: str, what: str) -> str:
    """The catalog's column of the layout's column ``wanted`` (its ``what``: ``"id column"``): that name,
    else the one column named so in another letter case (``id`` for ``ID``; fresh-user trial: refused
    as no id column), else ``wanted`` (the caller says it is missing).

    Raises
    ------
    CatalogFormatError
        If ``wanted`` is not there and several columns are named so in other cases (``id`` and ``Id``).

    >>> layout_column("c.csv", 1, ["id", "IS_LENS"], "is_lens", "label rule's column")
    'IS_LENS'
    """
    if wanted in columns:
        return wanted
    others = [column for column in columns if column.lower() == wanted.lower()]
    if len(others) > 1:
        which = "which holds the ids" if what == "id column" else "which one the label rule reads"
        raise CatalogFormatError(
            f"label catalog {path} line {line}: the layout's {what} {wanted!r} is not there, and "
            f"{others} differ from it in letter case only, so {which} is ambiguous. Rename "
            f"the {what} {wanted!r}."
        )
    return others[0] if others else wanted
