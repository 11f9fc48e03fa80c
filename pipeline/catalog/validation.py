"""The checks of a catalog table against its contract (:mod:`schemas.catalog`).

:func:`validate_catalog` checks the columns (names and order of the table's layout: declared
outputs, ``label`` and grade consensus columns when present, extra columns), their dtypes and
their values (probabilities in [0, 1], ranks, flags, known-lens and grade columns);
:func:`scored_mask` says which rows the model scored. Used by :func:`pipeline.catalog.table.write_catalog`
before anything is written.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from pipeline.catalog.columns import LAYOUT_ATTR, CatalogLayout, table_column_specs, table_layout
from pipeline.catalog.ranks import assign_ranks
from pipeline.errors import CatalogError
from pipeline.models.aggregate import numeric_columns
from schemas.catalog import (
    FLAG_REASON_COLUMN,
    FLAG_REASON_WIDTH,
    GRADE_COLUMN_NAMES,
    LABEL_UNKNOWN,
    RANK_BY_OBJECT_ID,
)

__all__ = ["scored_mask", "validate_catalog"]


def _check_columns(table: pd.DataFrame, layout: CatalogLayout) -> tuple[str, ...]:
    names = [str(name) for name in table.columns]
    with_label = "label" in names
    with_grades = any(name in GRADE_COLUMN_NAMES for name in names)
    expected = [spec.name for spec in layout.column_specs(with_label=with_label, with_grades=with_grades)]
    known = [spec.name for spec in layout.column_specs(with_label=True, with_grades=True)]
    missing = [name for name in expected if name not in names]
    unknown = [name for name in names if name not in known]
    if missing or unknown or len(set(names)) != len(names):
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, missing or known, n=1)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        raise CatalogError(
            f"catalog columns do not match the contract in schemas/catalog.py: missing {missing}, "
            f"unknown [{', '.join(hints)}], columns given {names}. Build the table with "
            "pipeline.catalog.table.make_catalog_table, or rename/drop columns to match."
        )
    return tuple(expected)


def _check_dtypes(table: pd.DataFrame, names: tuple[str, ...]) -> None:
    specs = table_column_specs(table)
    for name in names:
        spec = specs[name]
        column = table[name]
        if spec.dtype == "str":
            if not (column.dtype == object or isinstance(column.dtype, pd.StringDtype)) or not all(
                isinstance(value, str) for value in column
            ):
                raise CatalogError(
                    f"catalog column {name!r} must hold strings only (dtype {column.dtype}); "
                    "use '' for none, or build the table with pipeline.catalog.table.make_catalog_table."
                )
        elif column.dtype != np.dtype(spec.dtype):
            raise CatalogError(
                f"catalog column {name!r} has dtype {column.dtype}, the contract (schemas/catalog.py) "
                f"wants {spec.dtype}; cast it with table.astype({{{name!r}: {spec.dtype!r}}}) if no "
                "value changes, or build the table with pipeline.catalog.table.make_catalog_table."
            )


def _output_problems(table: pd.DataFrame, layout: CatalogLayout) -> list[str]:
    problems = []
    for spec in layout.outputs:
        if spec.kind == "classes":
            for name in numeric_columns(spec):
                value = table[name].to_numpy()
                if np.any(~np.isnan(value) & ~((value >= 0) & (value <= 1))):
                    problems.append(f"{name} outside [0, 1] (class probabilities)")
            labels = table[spec.name].to_numpy(dtype=object)
            if not np.isin(labels, ["", *spec.classes]).all():
                problems.append(f"{spec.name} holds names other than its classes {list(spec.classes)} or ''")
            continue
        value = table[spec.name].to_numpy()
        scored = ~np.isnan(value)
        if spec.kind == "probability" and np.any(scored & ~((value >= 0) & (value <= 1))):
            problems.append(f"{spec.name} outside [0, 1] (non-finite model outputs must be NaN and flagged)")
        for name in numeric_columns(spec)[1:]:
            spread = table[name].to_numpy()
            if np.any(scored & ~(np.isfinite(spread) & (spread >= 0))):
                problems.append(f"{name} negative or non-finite for a scored object (use 0 without TTA)")
            if np.any(~scored & ~np.isnan(spread)):
                problems.append(f"{name} not NaN for an unscored object")
    return problems


def _check_values(table: pd.DataFrame, layout: CatalogLayout) -> None:
    problems = _output_problems(table, layout)
    if np.any(table["flags"].to_numpy() < 0):
        problems.append("negative flags")
    ra, dec = table["ra"].to_numpy(), table["dec"].to_numpy()
    off = (~np.isnan(ra) & ~((ra >= 0) & (ra < 360))) | (~np.isnan(dec) & ~(np.abs(dec) <= 90))
    if np.any(off):  # trial: which objects was said nowhere
        ids = ", ".join(str(i) for i in table["object_id"].to_numpy()[off][:3]) + (
            ", ..." if off.sum() > 3 else ""
        )
        problems.append(
            f"ra outside [0, 360) or dec outside [-90, 90] degrees (NaN when unknown): object(s) {ids}"
        )
    if "label" in table and not np.isin(table["label"].to_numpy(), [LABEL_UNKNOWN, 0, 1]).all():
        problems.append("label values other than 1, 0 and -1 (unknown)")
    matched = table["known_lens"].to_numpy(dtype=object) != ""
    separation = table["known_lens_sep"].to_numpy()
    if np.any(matched & ~(separation >= 0)) or np.any(~matched & ~np.isnan(separation)):
        problems.append("known_lens_sep must be >= 0 where known_lens names a lens and NaN where it is empty")
    if np.any(~matched & (table["known_lens_grade"].to_numpy(dtype=object) != "")):
        problems.append("known_lens_grade set where known_lens is empty")
    if "grade_n" in table:
        problems.extend(_grade_problems(table))
    if FLAG_REASON_COLUMN.name in table:
        problems.extend(_reason_problems(table))
    if problems:
        raise CatalogError(
            "catalog values violate the contract in schemas/catalog.py: " + "; ".join(problems)
        )
    by = layout.rank_by
    rank_source = np.full(len(table), np.nan) if by == RANK_BY_OBJECT_ID else table[by].to_numpy()
    expected_rank = assign_ranks(rank_source, table["object_id"].to_numpy())
    if not np.array_equal(table["rank"].to_numpy(), expected_rank):
        raise CatalogError(
            f"catalog rank column disagrees with assign_ranks({by}, object_id) (1 = highest {by}, "
            "unscored last, ties by object_id); recompute it with pipeline.catalog.table.assign_ranks."
        )


def _grade_problems(table: pd.DataFrame) -> list[str]:
    """What is wrong with the grade consensus columns (see :mod:`pipeline.evaluation.consensus`)."""
    n = table["grade_n"].to_numpy()
    graded = n > 0
    mean, std, agreement = (table[name].to_numpy() for name in ("grade_mean", "grade_std", "grade_agreement"))
    mode = table["grade_mode"].to_numpy(dtype=object)
    problems = []
    if np.any(n < 0):
        problems.append("negative grade_n")
    several = n > 1  # one inspector: NaN spread and agreement (0 and 1 in catalogs written before)
    one = (n == 1) & (np.isnan(std) | (std == 0)) & (np.isnan(agreement) | (agreement == 1))
    spread = several & (std >= 0) & (agreement > 0) & (agreement <= 1)
    if np.any(graded & ~((mean >= 0) & (mean <= 3) & (one | spread))):
        problems.append(
            "grade_mean outside [0, 3], grade_std negative or grade_agreement outside (0, 1] (both NaN "
            "for grade_n 1)"
        )
    if np.any(graded & ~np.isin(mode, ["A", "B", "C", "X"])):
        problems.append("grade_mode other than A, B, C or X for a graded object")
    if np.any(~graded & ~(np.isnan(mean) & np.isnan(std) & np.isnan(agreement) & (mode == ""))):
        problems.append("grade columns set for an object with grade_n 0 (NaN and '' there)")
    return problems


def _reason_problems(table: pd.DataFrame) -> list[str]:
    """What is wrong with ``flag_reason``: text where ``flags`` is 0, none where it is not, or longer
    than :data:`~schemas.catalog.FLAG_REASON_WIDTH` (a FITS text column is as wide as its longest)."""
    reason = table[FLAG_REASON_COLUMN.name].to_numpy(dtype=object)
    flagged, said = table["flags"].to_numpy() != 0, reason != ""
    problems = []
    if np.any(flagged != said):
        ids = table["object_id"].to_numpy()[flagged != said][:3].tolist()
        problems.append(f"flag_reason must be '' where flags is 0 and say why where not (objects {ids})")
    if any(len(text) > FLAG_REASON_WIDTH for text in reason):
        problems.append(f"flag_reason longer than {FLAG_REASON_WIDTH} characters")
    return problems


def scored_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows the model scored: a value in the first numeric column of the first declared output."""
    first = numeric_columns(table_layout(table).outputs[0])[0]
    return ~np.isnan(table[first].to_numpy(dtype=np.float64))


def validate_catalog(table: pd.DataFrame) -> pd.DataFrame:
    """Check a table against the catalog contract; return it with columns in contract order.

    The declared outputs and ``rank_by`` come from the layout in ``table.attrs``
    (:func:`make_catalog_table` puts it there; without one, the default ``score`` catalog).

    Raises
    ------
    CatalogError
        When a column is missing or unknown, has the wrong dtype, or holds values the contract
        forbids (a probability outside [0, 1], ranks that :func:`assign_ranks` would not give, ...).
    """
    layout = table_layout(table)
    if layout.rank_by != RANK_BY_OBJECT_ID and layout.rank_by not in {
        spec.name for spec in layout.outputs if spec.kind != "classes"
    }:
        raise CatalogError(
            f"catalog rank_by {layout.rank_by!r} is not a declared probability or regression output "
            f"({[spec.name for spec in layout.outputs]}) nor {RANK_BY_OBJECT_ID!r}"
        )
    names = _check_columns(table, layout)
    _check_dtypes(table, names)
    ordered = table.loc[:, list(names)].reset_index(drop=True)
    ordered.attrs = {**table.attrs, LAYOUT_ATTR: layout.to_attr()}
    specs = table_column_specs(ordered)
    for name in names:
        if specs[name].dtype == "str":
            ordered[name] = ordered[name].astype(str)
    _check_values(ordered, layout)
    return ordered
