"""Build, check, write and read lenshunt catalogs (the contract is :mod:`schemas.catalog`).

A catalog has one row per object of the store. :func:`write_catalog` checks the contract and
the conservation of objects, then writes ``catalog.fits``, ``catalog.parquet`` and
``catalog.vot`` atomically (temporary file, row count verified, rename), and the HATS catalog
``catalog_hats/`` for LSDB, which holds the rows with a position. All carry units, UCDs,
descriptions, the flag bits and the run's provenance (the formats: :mod:`pipeline.catalog.fits`,
:mod:`pipeline.catalog.parquet`, :mod:`pipeline.catalog.votable`, :mod:`pipeline.catalog.hats`).
:func:`read_catalog` (from :mod:`pipeline.catalog.reading`) reads the flat ones back.

Examples
--------
>>> assign_ranks(np.array([0.2, np.nan, 0.9, 0.2]), np.array([7, 1, 3, 5])).tolist()
[3, 4, 1, 2]
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.catalog.columns import (
    LAYOUT_ATTR,
    CatalogLayout,
    table_column_specs,
    table_layout,
)
from pipeline.catalog.fits import count_fits_rows, write_fits
from pipeline.catalog.hats import write_hats
from pipeline.catalog.parquet import count_parquet_rows, write_parquet
from pipeline.catalog.reading import read_catalog, read_provenance
from pipeline.catalog.votable import count_votable_rows, write_votable
from pipeline.errors import CatalogError, ConservationError
from pipeline.models.aggregate import most_probable_class, numeric_columns
from pipeline.paths import catalog_fits, catalog_hats, catalog_parquet, catalog_votable
from schemas.catalog import LABEL_UNKNOWN, RANK_BY_OBJECT_ID, Provenance

__all__ = [
    "CatalogError",
    "CatalogLayout",
    "CatalogPaths",
    "Provenance",
    "assign_ranks",
    "make_catalog_table",
    "read_catalog",
    "read_provenance",
    "scored_mask",
    "validate_catalog",
    "write_catalog",
]


@dataclass(frozen=True)
class CatalogPaths:
    """Where :func:`write_catalog` put the copies of a catalog.

    ``hats`` is None when it was not asked for or no row has a position; ``n_without_position``
    counts the rows the HATS catalog cannot hold (they are in the other three).
    """

    fits: Path
    parquet: Path
    votable: Path
    hats: Path | None = None
    n_without_position: int = 0


def assign_ranks(scores: np.ndarray, object_ids: np.ndarray) -> np.ndarray:
    """Rank objects by score: 1 = highest, NaN scores after all others, ties by ascending id.

    Parameters
    ----------
    scores : numpy.ndarray
        Scores, shape (n,); NaN marks an unscored object.
    object_ids : numpy.ndarray
        Integer object ids, shape (n,).

    Returns
    -------
    numpy.ndarray
        int64 ranks 1..n, a permutation, in the order of the input.

    Examples
    --------
    >>> assign_ranks(np.array([0.5, 0.5, 0.7]), np.array([9, 2, 4])).tolist()
    [3, 2, 1]
    """
    scores = np.asarray(scores, dtype=np.float64)
    object_ids = np.asarray(object_ids)
    if scores.shape != object_ids.shape or scores.ndim != 1:
        raise ValueError(
            f"scores {scores.shape} and object_ids {object_ids.shape} must be 1-d arrays of one length"
        )
    unscored = np.isnan(scores)
    descending = -np.where(unscored, 0.0, scores)
    order = np.lexsort((object_ids, descending, unscored))
    ranks = np.empty(scores.size, dtype=np.int64)
    ranks[order] = np.arange(1, scores.size + 1, dtype=np.int64)
    return ranks


def make_catalog_table(
    *,
    object_ids: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    flags: np.ndarray,
    model_id: str,
    scores: np.ndarray | None = None,
    score_std: np.ndarray | None = None,
    outputs: Mapping[str, np.ndarray] | None = None,
    layout: CatalogLayout | None = None,
    labels: np.ndarray | None = None,
    known_lens_matches: pd.DataFrame | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Assemble a catalog table with the contract's columns, dtypes and ranks.

    A default model gives ``scores`` and ``score_std``; a model with declared outputs gives
    ``outputs`` (every numeric column of :func:`pipeline.models.aggregate.numeric_columns`, as a
    score run's parts hold them) and ``layout`` (its outputs and ``rank_by``; the most probable
    class names are derived here). Spreads and errors are set to NaN wherever their value is NaN.
    ``labels`` (1, 0, -1 unknown) adds the ``label`` column. ``known_lens_matches`` (from
    :func:`pipeline.catalog.known_lenses.match_known_lenses`, one row per object) fills the
    known-lens columns; without it no object has a match. ``extra`` holds the values of
    ``layout.extra`` columns. Rows keep the input order; the layout is kept in ``attrs``.

    Raises
    ------
    ValueError
        If neither ``scores`` nor ``outputs`` is given, or a column is missing or of another length.
    """
    layout = layout or CatalogLayout()
    if outputs is None:
        if scores is None or score_std is None:
            raise ValueError("give scores and score_std, or outputs with their layout")
        outputs = {"score": scores, "score_std": score_std}
    object_ids = np.asarray(object_ids, dtype=np.int64)
    values = _output_values(layout, outputs, object_ids.size)
    rank_source = (
        np.full(object_ids.size, np.nan) if layout.rank_by == RANK_BY_OBJECT_ID else values[layout.rank_by]
    )
    columns: dict[str, object] = {
        "object_id": object_ids,
        "ra": np.asarray(ra, dtype=np.float64),
        "dec": np.asarray(dec, dtype=np.float64),
        **values,
        "rank": assign_ranks(rank_source, object_ids),
        "flags": np.asarray(flags, dtype=np.int32),
        "model_id": pd.Series(np.full(object_ids.size, model_id, dtype=object)).astype(str),
    }
    if known_lens_matches is None:
        columns["known_lens"] = pd.Series(np.full(object_ids.size, "", dtype=object)).astype(str)
        columns["known_lens_grade"] = pd.Series(np.full(object_ids.size, "", dtype=object)).astype(str)
        columns["known_lens_sep"] = np.full(object_ids.size, np.nan, dtype=np.float32)
    else:
        if len(known_lens_matches) != object_ids.size:
            raise ValueError(
                f"known_lens_matches has {len(known_lens_matches)} rows for {object_ids.size} objects"
            )
        for name in ("known_lens", "known_lens_grade"):
            columns[name] = known_lens_matches[name].astype(str).reset_index(drop=True)
        columns["known_lens_sep"] = known_lens_matches["known_lens_sep"].to_numpy(dtype=np.float32)
    if labels is not None:
        columns["label"] = np.asarray(labels, dtype=np.int8)
    for spec in layout.extra:
        if extra is None or spec.name not in extra:
            raise ValueError(f"extra column {spec.name!r} is in the layout but no values were given")
        columns[spec.name] = extra[spec.name]
    table = pd.DataFrame(columns)
    table.attrs[LAYOUT_ATTR] = layout.to_attr()
    return table


def _output_values(layout: CatalogLayout, outputs: Mapping[str, np.ndarray], n: int) -> dict[str, object]:
    """The output columns in catalog order: float32, spreads NaN where the value is, class names."""
    values: dict[str, object] = {}
    for spec in layout.outputs:
        given = {}
        for name in numeric_columns(spec):
            if name not in outputs:
                raise ValueError(f"output column {name!r} of output {spec.name!r} was not given")
            column = np.asarray(outputs[name], dtype=np.float32)
            if column.shape != (n,):
                raise ValueError(f"output column {name!r} has shape {column.shape}, expected ({n},)")
            given[name] = column
        if spec.kind == "classes":
            values[spec.name] = pd.Series(most_probable_class(spec, given), dtype=object).astype(str)
            values.update(given)
            continue
        main = given[spec.name]
        values[spec.name] = main
        for name in numeric_columns(spec)[1:]:
            values[name] = np.where(np.isnan(main), np.float32(np.nan), given[name]).astype(np.float32)
    return values


def _check_columns(table: pd.DataFrame, layout: CatalogLayout) -> tuple[str, ...]:
    names = [str(name) for name in table.columns]
    with_label = "label" in names
    expected = [spec.name for spec in layout.column_specs(with_label=with_label)]
    known = [spec.name for spec in layout.column_specs(with_label=True)]
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
    if np.any(~np.isnan(ra) & ~((ra >= 0) & (ra < 360))) or np.any(~np.isnan(dec) & ~(np.abs(dec) <= 90)):
        problems.append("ra outside [0, 360) or dec outside [-90, 90] degrees (NaN when unknown)")
    if "label" in table and not np.isin(table["label"].to_numpy(), [LABEL_UNKNOWN, 0, 1]).all():
        problems.append("label values other than 1, 0 and -1 (unknown)")
    matched = table["known_lens"].to_numpy(dtype=object) != ""
    separation = table["known_lens_sep"].to_numpy()
    if np.any(matched & ~(separation >= 0)) or np.any(~matched & ~np.isnan(separation)):
        problems.append("known_lens_sep must be >= 0 where known_lens names a lens and NaN where it is empty")
    if np.any(~matched & (table["known_lens_grade"].to_numpy(dtype=object) != "")):
        problems.append("known_lens_grade set where known_lens is empty")
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


def _check_conservation(table: pd.DataFrame, provenance: Provenance, expected_n: int) -> None:
    n_rows = len(table)
    if n_rows != expected_n:
        raise ConservationError(
            f"catalog has {n_rows} rows but the store has {expected_n} objects; every object needs "
            "exactly one row (scored or flagged). Check that all score parts were collected."
        )
    duplicated = table["object_id"][table["object_id"].duplicated()].unique()
    if duplicated.size:
        raise ConservationError(
            f"catalog repeats object ids {duplicated[:10].tolist()} ({duplicated.size} in all); "
            "a score part was probably collected twice. Remove duplicate parts and rebuild."
        )
    n_scored = int(np.count_nonzero(scored_mask(table)))
    if provenance.n_objects != expected_n or provenance.n_scored != n_scored:
        raise ConservationError(
            f"provenance says n_objects={provenance.n_objects}, n_scored={provenance.n_scored} but "
            f"the catalog has {expected_n} objects and {n_scored} scores; build the provenance "
            "from the table that is written."
        )
    layout = table_layout(table)
    if provenance.rank_by != layout.rank_by or provenance.outputs != layout.outputs_json():
        raise CatalogError(
            f"provenance says rank_by={provenance.rank_by!r}, outputs={provenance.outputs} but the table "
            f"ranks by {layout.rank_by!r} with outputs {layout.outputs_json()}; build the provenance "
            "from the table's layout (CatalogLayout.outputs_json)."
        )
    mismatched = table["model_id"] != provenance.model_id
    if mismatched.any():
        raise CatalogError(
            f"model_id column holds {sorted(set(table['model_id'][mismatched]))[:5]} but the "
            f"provenance model is {provenance.model_id!r}; one catalog is one model's run."
        )


def write_catalog(
    table: pd.DataFrame, out_dir: Path, provenance: Provenance, *, expected_n: int, hats: bool = True
) -> CatalogPaths:
    """Write ``catalog.fits``, ``catalog.parquet``, ``catalog.vot`` and ``catalog_hats/`` after checking.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per object with the columns of :mod:`schemas.catalog` (see
        :func:`make_catalog_table`).
    out_dir : pathlib.Path
        Output directory; created when missing. Existing catalogs there are replaced.
    provenance : Provenance
        Written into the FITS header, the Parquet metadata, the VOTable INFOs and the HATS
        properties.
    expected_n : int
        Objects in the store: the rows the catalog must have.
    hats : bool
        Also write the HATS catalog (rows with a position; a few seconds of hats-import).

    Returns
    -------
    CatalogPaths
        Paths of the files, and the rows the HATS catalog left out for want of a position.

    Raises
    ------
    ConservationError
        When rows differ from ``expected_n``, object ids repeat, or the provenance counts
        disagree with the table; nothing is written then.
    CatalogError
        When the table violates the column contract (nothing is written), or hats-import fails
        (the three flat catalogs are in place then).
    """
    checked = validate_catalog(table)
    _check_conservation(checked, provenance, expected_n)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = (
        (catalog_fits(out_dir), write_fits, count_fits_rows),
        (catalog_parquet(out_dir), write_parquet, count_parquet_rows),
        (catalog_votable(out_dir), write_votable, count_votable_rows),
    )
    temporaries = [final.with_name(f".{final.name}.{os.getpid()}.tmp") for final, _, _ in writers]
    try:
        for temporary, (_, write, count) in zip(temporaries, writers):
            write(checked, temporary, provenance)
            n_rows = count(temporary)
            if n_rows != expected_n:
                raise ConservationError(
                    f"{temporary} holds {n_rows} rows after writing, expected {expected_n}"
                )
        for temporary, (final, _, _) in zip(temporaries, writers):
            os.replace(temporary, final)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    placed = np.isfinite(checked["ra"].to_numpy()) & np.isfinite(checked["dec"].to_numpy())
    hats_path = write_hats(checked, catalog_hats(out_dir), provenance).path if hats else None
    return CatalogPaths(
        fits=catalog_fits(out_dir),
        parquet=catalog_parquet(out_dir),
        votable=catalog_votable(out_dir),
        hats=hats_path,
        n_without_position=int(np.count_nonzero(~placed)),
    )
