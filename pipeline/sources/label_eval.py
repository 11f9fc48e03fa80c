"""Evaluating a layout's label rule over catalog rows, and settling rows with missing values.

:func:`rule_labels` is the one evaluation of a rule into labels (1 lens, 0 non-lens, -1 unknown),
used by :mod:`pipeline.sources.labels` and by ``lenshunt simulate``'s count of lenses. A rule that is a
column alone (``is_lens``) takes the column as the label: 1 lens, 0 non-lens, -1 or empty unknown,
and any other value is refused (:class:`CatalogFormatError` naming the line and the value; a trial's
2 and -1 had become lenses). An expression rule reads its columns as it is written, but in a column
it reads as a label (:func:`~pipeline.sources.label_rules.label_columns`, ``is_lens == 1``) a
negative or fractional value (-1, lenshunt's unknown; 0.5) makes its row unknown (-1), left out of
training and evaluation, and counted in a warning note naming the values and lines (user trial:
``is_lens == 1`` made -1 a non-lens, with a warning only); a whole number above 1, which may be a
count (``n_img != 0``), is read as written, and a note says how. A catalog of 0 and 1 reads as before.

A row whose missing values could change its label is probed (:func:`probe_missing`): the rule is
evaluated with the missing values replaced by -inf, +inf, 0, the rule's numbers and the column's
few distinct values, and only a label that no probe changes is kept; else the row is unknown (-1).
"""

from __future__ import annotations

import ast
import itertools
import math
import re

import numpy as np
import pandas as pd

from pipeline.sources.label_rules import (
    bare_column,
    label_columns,
    readable_error,
    rule_columns,
    with_truth_tests,
)
from pipeline.sources.spreadsheet import CatalogFormatError
from schemas.layout import Layout
from schemas.store import LABEL_UNKNOWN

_MAX_DISTINCT_PROBES = 8
_MAX_PROBE_COMBINATIONS = 256


_LABEL_VALUES = (1, 0, LABEL_UNKNOWN)
_READ_AS = {1: "lens", 0: "non-lens", LABEL_UNKNOWN: "unknown"}


def rule_labels(
    rule: str, rows: pd.DataFrame, layout: Layout, path: object = "", lines: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """Labels (int8: 1 lens, 0 non-lens, -1 unknown) of ``rows`` under ``rule``, and notes on them.

    ``lines`` are the rows' file lines, for the messages (else rows are counted from 1). Rows whose
    missing values could change the label are -1 (:func:`probe_missing`); so are the rows of a
    column-alone rule whose column holds -1, and those of an expression whose label column holds a value
    other than 0 and 1 (module docstring).

    Raises
    ------
    CatalogFormatError
        If the rule fails on the rows, or its column alone holds a value other than 1, 0 and -1.

    Examples
    --------
    >>> from schemas.layout import load_layout
    >>> rows = pd.DataFrame({"is_lens": [1, 0, -1, None]})
    >>> rule_labels("is_lens", rows, load_layout("sglc1-space"))[0].tolist()
    [1, 0, -1, -1]
    """
    lines = np.arange(1, len(rows) + 1) if lines is None else np.asarray(lines)
    where = f"label catalog {path}" if path != "" else "the catalog"
    column = bare_column(rule)
    if column is not None and column in rows.columns:
        _refuse_non_labels(rule, rows[column], lines, where)
    labels = evaluate_rule(rule, rows, layout, path).astype(np.int8)
    if column is not None and column in rows.columns:
        labels[rows[column].eq(LABEL_UNKNOWN).to_numpy()] = LABEL_UNKNOWN
    notes = []
    needed = sorted(name for name in rule_columns(rule) if name in rows.columns)
    missing = rows[needed].isna().any(axis=1).to_numpy() if needed else np.zeros(len(rows), bool)
    if missing.any():
        labels[missing] = probe_missing(rule, rows, missing, needed, layout)
        unknown = missing & (labels == LABEL_UNKNOWN)
        if unknown.any():
            notes.append(
                f"{int(unknown.sum())} row(s) with missing values in {needed} labelled unknown (-1) "
                f"({describe_lines(lines[unknown])})"
            )
    if column is None:
        notes.extend(_unknown_label_notes(rule, rows, labels, lines))
    return labels, notes


def _refuse_non_labels(rule: str, values: pd.Series, lines: np.ndarray, where: str) -> None:
    """Refuse a column-alone rule's column holding values other than 1, 0, -1 and empty."""
    other = (values.notna() & ~values.isin(_LABEL_VALUES)).to_numpy()
    if other.any():
        first = other.nonzero()[0][0]
        raise CatalogFormatError(
            f"{where} line {lines[first]}: value {_number(values.iloc[first])} in column {values.name!r} "
            f"is no label ({int(other.sum())} such row(s)): the label rule {rule!r} takes the column as "
            "the label, 1 lens, 0 non-lens, -1 or empty unknown. Fix the rows, or write a rule that says "
            f"which values are lenses (e.g. `{values.name} >= 1`)."
        )


def _unknown_label_notes(rule: str, rows: pd.DataFrame, labels: np.ndarray, lines: np.ndarray) -> list[str]:
    """Settle and say the values other than 1 and 0 in the columns an expression reads as labels.

    A negative or fractional value (-1, lenshunt's unknown; 0.5) is no label and no count: its row is
    labelled unknown (-1, in ``labels``), left out of training and evaluation (user trial:
    ``is_lens == 1``, the sglc1 layouts' rule, made -1 a non-lens, trained on and counted as one). A
    whole number above 1 may be a count (``n_img != 0``): the rule reads it as it is written, and a
    note says how. One note per column and kind, naming the values and their lines.
    """
    notes = []
    columns = sorted(label_columns(rule) & set(rows.columns))
    for column in columns:
        values = rows[column]
        if not pd.api.types.is_numeric_dtype(values):
            continue
        present = values.notna().to_numpy()
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        unknown = present & ((numbers < 0) | (numbers % 1 != 0))
        above = present & ~unknown & ~values.isin([0, 1]).to_numpy()
        if unknown.any():
            labels[unknown] = LABEL_UNKNOWN
            notes.append(
                f"warning: column {column!r}, which the label rule {rule!r} reads as a label, holds "
                f"{_values_on_lines(values, unknown, lines)}: no label, so {int(unknown.sum())} row(s) "
                "labelled unknown (-1), left out of training and evaluation. If they mean lens or non-lens, "
                "write them as 1 or 0"
            )
        if above.any():
            read = []
            for value in sorted(values[above].unique())[:5]:
                rows_of = above & values.eq(value).to_numpy()
                counts = {_READ_AS[label]: int((labels[rows_of] == label).sum()) for label in _LABEL_VALUES}
                counts = {name: n for name, n in counts.items() if n}
                outcome = (
                    next(iter(counts))
                    if len(counts) == 1
                    else ", ".join(f"{n} {k}" for k, n in counts.items())
                )
                read.append(f"{_number(value)} ({describe_lines(lines[rows_of])}) as {outcome}")
            notes.append(
                f"warning: column {column!r} holds whole numbers above 1, which the label rule {rule!r} "
                f"reads as it is written: {'; '.join(read)}. If they mean something else, write a rule that "
                f"says it (e.g. `{column} >= 1` for a count)"
            )
    return notes


def _values_on_lines(values: pd.Series, rows: np.ndarray, lines: np.ndarray) -> str:
    """``-1 (line 4); 0.5 (lines 6, 9)``: the first five distinct values of ``rows`` and their lines."""
    return "; ".join(
        f"{_number(value)} ({describe_lines(lines[rows & values.eq(value).to_numpy()])})"
        for value in sorted(values[rows].unique())[:5]
    )


def _number(value: object) -> str:
    """A catalog number as written: ``2`` for 2.0."""
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def describe_lines(lines) -> str:  # type: ignore[no-untyped-def]
    """``line 4`` or ``lines 4, 7`` (the first five, and how many more) for messages.

    >>> describe_lines([4]), describe_lines(range(3, 10))
    ('line 4', 'lines 3, 4, 5, 6, 7 and 2 more')
    """
    lines = [int(line) for line in lines]
    shown = ", ".join(str(line) for line in lines[:5])
    more = f" and {len(lines) - 5} more" if len(lines) > 5 else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def evaluate_rule(rule: str, rows: pd.DataFrame, layout: Layout, path: object = "") -> np.ndarray:
    """1 where ``rule`` holds, else 0, for each row (positional).

    A rule that gives numbers (a column alone, ``is_lens``) holds where they are non-zero, as in
    Python; ``DataFrame.query`` had taken such numbers as index labels and labelled rows 0 and 1.
    """
    try:
        result = rows.eval(with_truth_tests(rule))
    except Exception as exc:  # pandas raises many types for a bad expression or column
        reason = readable_error(str(exc), rule)
        raise CatalogFormatError(
            f"label rule {rule!r} of layout {layout.name!r} fails on the catalog {path}: {reason}. "
            f"Catalog columns: {list(rows.columns)}; pass the right catalog with --catalog, or a layout "
            "whose label_rule names these columns."
        ) from exc
    if not isinstance(result, pd.Series) or not (
        pd.api.types.is_bool_dtype(result) or pd.api.types.is_numeric_dtype(result)
    ):
        raise CatalogFormatError(
            f"label rule {rule!r} of layout {layout.name!r} gives no true or false for each row of the "
            f"catalog {path} (it gives {type(result).__name__}"
            f"{' of ' + str(result.dtype) if isinstance(result, pd.Series) else ''}): write a condition "
            "such as `is_lens == 1`"
        )
    holds = result.fillna(False).astype(bool) if pd.api.types.is_bool_dtype(result) else result.ne(0)
    return holds.to_numpy(dtype=bool).astype(np.int8)


def probe_missing(
    rule: str, table: pd.DataFrame, missing: np.ndarray, needed: list[str], layout: Layout
) -> np.ndarray:
    """Labels of the ``missing`` rows of ``table``: the rule's answer if no probe changes it, else -1.

    Rows are probed in groups with the same missing columns (a new-user trial: one product over all
    columns with gaps gave up past 256 combinations, leaving rows missing one value unknown).
    """
    rows = table[missing].reset_index(drop=True)
    gaps = rows[needed].isna().to_numpy()
    labels = np.full(len(rows), LABEL_UNKNOWN, dtype=np.int8)
    patterns, group = np.unique(gaps, axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    for k, pattern in enumerate(patterns):
        members = np.flatnonzero(group == k)
        columns = [column for column, gap in zip(needed, pattern, strict=True) if gap]
        labels[members] = _probe_group(rule, table, rows.iloc[members], columns, layout)
    return labels


def _probe_group(
    rule: str, table: pd.DataFrame, rows: pd.DataFrame, columns: list[str], layout: Layout
) -> np.ndarray:
    """Labels of ``rows``, which all miss exactly ``columns``.

    The probes of a column are -inf, +inf, 0 (where a column alone turns true), the rule's numbers
    and the column's few distinct values in the whole ``table``.
    """
    constants = _rule_numbers(rule)
    probes = {}
    for column in columns:
        if not pd.api.types.is_numeric_dtype(table[column]):
            return np.full(len(rows), LABEL_UNKNOWN, dtype=np.int8)
        values = {-math.inf, math.inf, 0.0, *constants}
        distinct = table[column].dropna().unique()  # review: from the missing rows, it was always empty
        if len(distinct) <= _MAX_DISTINCT_PROBES:
            values |= {float(value) for value in distinct}
        probes[column] = sorted(values)
    combinations = list(itertools.islice(itertools.product(*probes.values()), _MAX_PROBE_COMBINATIONS + 1))
    if len(combinations) > _MAX_PROBE_COMBINATIONS:
        return np.full(len(rows), LABEL_UNKNOWN, dtype=np.int8)
    rows = rows.reset_index(drop=True)
    fills = [dict(zip(probes, combination, strict=True)) for combination in combinations]
    outcomes = np.asarray([evaluate_rule(rule, rows.fillna(fill), layout) for fill in fills])
    settled = (outcomes == outcomes[0]).all(axis=0)
    return np.where(settled, outcomes[0], LABEL_UNKNOWN).astype(np.int8)


def _rule_numbers(rule: str) -> set[float]:
    try:
        tree = ast.parse(re.sub(r"`[^`]+`", "x", rule), mode="eval")
    except SyntaxError:
        return set()
    numbers = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            numbers |= {float(node.value), float(-node.value)}
    return numbers
