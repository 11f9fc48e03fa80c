"""Evaluating a layout's label rule over catalog rows, and settling rows with missing values.

A row whose missing values could change its label is probed (:func:`probe_missing`): the rule is
evaluated with the missing values replaced by -inf, +inf, 0, the rule's numbers and the column's
few distinct values, and only a label that no probe changes is kept; else the row is unknown (-1).
Used by :mod:`pipeline.sources.labels`.
"""

from __future__ import annotations

import ast
import itertools
import math
import re

import numpy as np
import pandas as pd

from pipeline.sources.label_rules import readable_error, with_truth_tests
from pipeline.sources.spreadsheet import CatalogFormatError
from schemas.layout import Layout
from schemas.store import LABEL_UNKNOWN

_MAX_DISTINCT_PROBES = 8
_MAX_PROBE_COMBINATIONS = 256


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
