"""Build, check, write and read lenshunt catalogs (the contract is :mod:`schemas.catalog`).

A catalog has one row per object of the store. :func:`write_catalog` checks the contract and
the conservation of objects, then writes ``catalog.fits``, ``catalog.parquet`` and
``catalog.vot`` atomically (temporary file, row count verified, rename), and the HATS catalog
``catalog_hats/`` for LSDB, which holds the rows with a position; a file that holds the same
content already (:mod:`pipeline.catalog.digest`) is kept as it is. All carry units, UCDs,
descriptions, the flag bits and the run's provenance (the formats: :mod:`pipeline.catalog.fits`,
:mod:`pipeline.catalog.parquet`, :mod:`pipeline.catalog.votable`, :mod:`pipeline.catalog.hats`).
:func:`read_catalog` (from :mod:`pipeline.catalog.reading`) reads the flat ones back.

Examples
--------
>>> assign_ranks(np.array([0.2, np.nan, 0.9, 0.2]), np.array([7, 1, 3, 5])).tolist()
[3, 4, 1, 2]
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import temporary_beside
from pipeline.catalog.columns import (
    LAYOUT_ATTR,
    CatalogLayout,
    listed_outputs,
    table_layout,
)
from pipeline.catalog.digest import content_digest, kept_catalogs, last_written, record_catalog_files
from pipeline.catalog.fits import count_fits_rows, write_fits
from pipeline.catalog.hats import write_hats
from pipeline.catalog.parquet import count_parquet_rows, write_parquet
from pipeline.catalog.ranks import assign_ranks
from pipeline.catalog.reading import read_catalog, read_provenance
from pipeline.catalog.validation import scored_mask, validate_catalog
from pipeline.catalog.votable import count_votable_rows, write_votable
from pipeline.errors import CatalogError, ConservationError
from pipeline.models.aggregate import column_dtype, most_probable_class, numeric_columns
from pipeline.paths import catalog_fits, catalog_hats, catalog_parquet, catalog_votable
from pipeline.sources.positions import wrap_ra
from schemas.catalog import RANK_BY_OBJECT_ID, Provenance

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
    counts the rows the HATS catalog cannot hold (they are in the other three). ``kept`` names
    the files left untouched, as they held this content already.
    """

    fits: Path
    parquet: Path
    votable: Path
    hats: Path | None = None
    n_without_position: int = 0
    kept: tuple[str, ...] = ()
    """Names of the files left as they were, holding this content already (:mod:`.digest`)."""
    date: str = ""
    """The provenance date the files record (UTC ISO 8601): a kept file's, when one was kept."""
    kept_written: tuple[str, str] = ("", "")
    """When the kept files were last written (UTC ISO 8601) and by what, "" for a score run
    (:func:`pipeline.catalog.digest.last_written`); ``("", "")`` when none was kept."""


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
        "ra": wrap_ra(np.asarray(ra, dtype=np.float64)),  # a store's 360.0 from a tiny negative RA: 0
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
    """The output columns in catalog order (:func:`~pipeline.models.aggregate.column_dtype`), spreads
    NaN where the value is, class names."""
    values: dict[str, object] = {}
    for spec in layout.outputs:
        given = {}
        for name in numeric_columns(spec):
            if name not in outputs:
                raise ValueError(f"output column {name!r} of output {spec.name!r} was not given")
            column = np.asarray(outputs[name], dtype=column_dtype(spec, name))
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
    recorded = CatalogLayout.from_provenance(provenance.outputs, provenance.rank_by)  # [] = the default
    if recorded.rank_by != layout.rank_by or recorded.outputs != layout.outputs:
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
    table: pd.DataFrame,
    out_dir: Path,
    provenance: Provenance,
    *,
    expected_n: int,
    hats: bool = True,
    written_by: str = "",
) -> CatalogPaths:
    """Write ``catalog.fits``, ``catalog.parquet``, ``catalog.vot`` and ``catalog_hats/`` after checking.

    Each file records the content digest (:func:`pipeline.catalog.digest.content_digest`: the rows,
    columns, values and the provenance but its date). A file in ``out_dir`` that holds this digest
    and is whole is kept as it is, its date too, and not written again (a rerun that changes
    nothing: minutes at millions of rows); the formats written beside kept ones take their date,
    so that all four agree. Whole means: of the size and modification time recorded when it was
    written (:data:`pipeline.catalog.digest.FILES_RECORD`; without that record nothing is kept) and
    with the header or footer it should have. A missing, damaged, edited or other file is written.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per object with the columns of :mod:`schemas.catalog` (see
        :func:`make_catalog_table`).
    out_dir : pathlib.Path
        Output directory; created when missing. Existing catalogs there are replaced: the flat
        ones once the new HATS catalog is complete, so a kill or a stop (Ctrl-C, SIGTERM) before
        leaves the old ones of every format (see :func:`pipeline.catalog.hats.write_hats`).
    provenance : Provenance
        Written into the FITS header, the Parquet metadata, the VOTable INFOs and the HATS
        properties; ``outputs`` ``[]`` is written as the default ``score``'s entry (the outputs are
        always listed, :func:`pipeline.catalog.columns.listed_outputs`).
    expected_n : int
        Objects in the store: the rows the catalog must have.
    hats : bool
        Also write the HATS catalog (rows with a position; a few seconds of hats-import).
    written_by : str
        The command writing the files where it is not a score run (``"lenshunt inspect --apply"``),
        recorded with them: a later run that keeps them says so (:attr:`CatalogPaths.kept_written`).

    Returns
    -------
    CatalogPaths
        Paths of the files, the rows the HATS catalog left out for want of a position, and the
        files kept as they were.

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
    provenance = listed_outputs(provenance)  # every file lists the outputs, the default score too
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    placed = np.isfinite(checked["ra"].to_numpy()) & np.isfinite(checked["dec"].to_numpy())
    digest = content_digest(checked, provenance)
    kept = kept_catalogs(out_dir, digest, hats=hats and bool(placed.any()))
    record_catalog_files(out_dir, digest, tuple(kept))  # what is replaced below is recorded once whole
    kept_written = last_written(out_dir, tuple(kept)) if kept else ("", "")
    if kept:  # the content those files hold was first written then
        provenance = provenance.model_copy(update={"date": next(iter(kept.values())).date})
    writers = tuple(
        (final, write, count)
        for final, write, count in (
            (catalog_fits(out_dir), write_fits, count_fits_rows),
            (catalog_parquet(out_dir), write_parquet, count_parquet_rows),
            (catalog_votable(out_dir), write_votable, count_votable_rows),
        )
        if final.name not in kept
    )
    for final in (catalog_fits(out_dir), catalog_parquet(out_dir), catalog_votable(out_dir)):
        for stale in out_dir.glob(f".{final.name}.*.tmp"):  # left by a killed earlier write (one writer at
            stale.unlink(missing_ok=True)  # a time: the folder lock)
    for stale in out_dir.glob(f".{catalog_hats(out_dir).name}.*.tmp"):  # also where HATS is kept
        shutil.rmtree(stale, ignore_errors=True)
    temporaries = [temporary_beside(final) for final, _, _ in writers]
    flat_placed = False

    def place_flat() -> None:  # once the HATS catalog is complete: a kill before leaves the old ones
        nonlocal flat_placed
        flat_placed = True  # tried: not again after an error
        for temporary, (final, _, _) in zip(temporaries, writers):
            os.replace(temporary, final)

    written = stopped = False
    try:
        for temporary, (_, write, count) in zip(temporaries, writers):
            write(checked, temporary, provenance, digest=digest)
            n_rows = count(temporary)
            if n_rows != expected_n:
                raise ConservationError(
                    f"{temporary} holds {n_rows} rows after writing, expected {expected_n}"
                )
        written = True
        if not hats:
            hats_path = None
        elif catalog_hats(out_dir).name in kept:
            hats_path = catalog_hats(out_dir)
        else:
            hats_path = write_hats(
                checked, catalog_hats(out_dir), provenance, before_place=place_flat, digest=digest
            ).path
    except BaseException as error:
        stopped = not isinstance(error, Exception)  # Ctrl-C, SIGTERM: the old files of every format stay
        raise
    finally:
        if written and not flat_placed and not stopped:  # no HATS asked or written, or hats-import failed
            place_flat()
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    names = [final.name for final, _, _ in writers] + [name for name in kept if name != "catalog_hats"]
    names += [hats_path.name] if hats_path is not None else []
    record_catalog_files(out_dir, digest, names, by=written_by)
    return CatalogPaths(
        fits=catalog_fits(out_dir),
        parquet=catalog_parquet(out_dir),
        votable=catalog_votable(out_dir),
        hats=hats_path,
        n_without_position=int(np.count_nonzero(~placed)),
        kept=tuple(name for name in _FILE_NAMES if name in kept),
        date=provenance.date_iso(),
        kept_written=kept_written,
    )


_FILE_NAMES = ("catalog.fits", "catalog.parquet", "catalog.vot", "catalog_hats")
"""The catalog's files in the order the summaries name them."""
