"""The exported grade tables, ``grades.parquet`` and ``grades.fits``, self-describing as the catalogs are.

:func:`pipeline.evaluation.grades.export_grades` picks the latest grades; :func:`write_grade_tables`
writes them with the catalog writers' helpers (:mod:`pipeline.catalog.fits`,
:mod:`pipeline.catalog.parquet`), so that a table read away from its run still says what it holds
and where it came from (fresh-user trial: ``grades.fits`` had no ``CHECKSUM``/``DATASUM``, which
``fitscheck`` reported as 4 errors, neither file described its columns or named the run, and
``outdated`` was not explained):

* each column's description, UCD and unit (:data:`GRADE_TABLE_COLUMNS`): FITS ``TCOMMn``/``TUCDn``
  cards, Parquet field metadata (``description``, ``ucd``, ``unit``) and astropy's
  ``table_meta_yaml``, which :meth:`astropy.table.Table.read` restores;
* where the grades came from: the run directory, its catalog and that catalog's provenance (the model,
  the scored store and its identity ``store_created``, the scoring run's date; the catalog's own
  FITS keywords, :data:`schemas.catalog.PROVENANCE_FITS_KEYS`), the store whose re-read images mark
  grades outdated, and the export's time (FITS ``DATE``); in Parquet all under
  :data:`GRADES_METADATA_KEY` as JSON;
* the rule of ``outdated`` (:data:`OUTDATED_RULE`): FITS COMMENT cards, the Parquet JSON;
* FITS ``CHECKSUM``/``DATASUM`` in every HDU; the file passes ``fitscheck`` and ``fitsverify``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import LenshuntError
from schemas.catalog import ColumnSpec, Provenance

__all__ = [
    "GRADES_EXTNAME",
    "GRADES_METADATA_KEY",
    "GRADE_TABLE_COLUMNS",
    "OUTDATED_RULE",
    "grade_provenance",
    "write_grade_tables",
]

GRADES_EXTNAME = "GRADES"
"""``EXTNAME`` of the grade table's binary-table extension in ``grades.fits``."""
GRADES_METADATA_KEY = "lenshunt.grades"
"""Parquet schema-metadata key of ``grades.parquet``'s JSON description: columns, rule, provenance."""
OUTDATED_RULE = (
    "outdated: True for a grade made before an ingest re-read its object's images (a late band file "
    "arrived, a broken file was replaced), or before the store itself was made (a log copied from "
    "another run): the grade is of other pixels, so the consensus, the catalog's grade columns, the "
    "report and training leave it out; grading the object again makes it current. False for every "
    "grade where the store is unknown."
)
"""What the ``outdated`` column means (:mod:`pipeline.evaluation.outdated`), in every exported table."""

GRADE_TABLE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        name="object_id", dtype="int64", ucd="meta.id;meta.main", description="Object id in the run's catalog"
    ),
    ColumnSpec(
        name="grade",
        dtype="str",
        ucd="meta.code.qual",
        description="Grade: A sure lens, B probable, C possible, X not a lens, skip",
    ),
    ColumnSpec(name="inspector", dtype="str", ucd="meta.id", description="Inspector (the grade log's name)"),
    ColumnSpec(
        name="time", dtype="str", ucd="time.processing", description="UTC time of the grade, ISO 8601"
    ),
    ColumnSpec(
        name="score",
        dtype="float64",
        ucd="stat.probability",
        description="Object's lens score when graded; missing if unknown",
    ),
    ColumnSpec(
        name="model_id", dtype="str", ucd="meta.id", description="Id of the model that gave the score"
    ),
    ColumnSpec(
        name="comment",
        dtype="str",
        ucd="meta.note",
        description="Inspector's note with the grade; empty if none",
    ),
    ColumnSpec(
        name="outdated",
        dtype="bool",
        ucd="meta.code.status",
        description="Graded before an ingest re-read its images: not counted",
    ),
)
"""The columns of an exported grade table, in order: :data:`~pipeline.evaluation.grades.GRADE_COLUMNS`
and ``outdated`` (:data:`OUTDATED_RULE`)."""


def grade_provenance(run_dir: str | Path, outdated_store: str | Path | None) -> dict[str, Any]:
    """Where the grades of ``run_dir`` came from, for the exported tables.

    Parameters
    ----------
    run_dir : path-like
        The graded run directory.
    outdated_store : path-like or None
        The store whose re-read images marked grades outdated; None: none (no grade outdated).

    Returns
    -------
    dict
        ``run_dir`` (absolute), ``catalog`` (its ``catalog.parquet``, ``""`` where it has none or it
        cannot be read), ``catalog_provenance`` (that catalog's :class:`~schemas.catalog.Provenance`
        as JSON: model, store and its identity ``store_created``, the scoring run's ``date``; None
        without a catalog), ``outdated_store`` (``""``: none) and ``exported`` (now, UTC,
        ``YYYY-MM-DDThh:mm:ssZ``).
    """
    from pipeline import __version__, paths
    from pipeline.catalog import read_provenance

    run_dir = Path(run_dir).absolute()
    catalog = paths.catalog_parquet(run_dir)
    try:
        provenance: Provenance | None = read_provenance(catalog)
    except (LenshuntError, OSError, ValueError):
        provenance = None
    return {
        "run_dir": str(run_dir),
        "catalog": str(catalog) if provenance is not None else "",
        "catalog_provenance": provenance.to_json_dict() if provenance is not None else None,
        "outdated_store": str(outdated_store or ""),
        "exported": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "code_version": __version__,
    }


def write_grade_tables(table: pd.DataFrame, folder: Path, origin: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``table`` to ``folder/grades.parquet`` and ``folder/grades.fits``, each through a temporary
    name and a rename, so a reader never sees half a table.

    Parameters
    ----------
    table : pandas.DataFrame
        n latest grades, the columns of :data:`GRADE_TABLE_COLUMNS` (in any order).
    folder : pathlib.Path
        The run's ``grades/`` folder (it exists).
    origin : dict
        :func:`grade_provenance` of the run.

    Returns
    -------
    tuple of pathlib.Path
        The Parquet and FITS tables.
    """
    table = table[[spec.name for spec in GRADE_TABLE_COLUMNS]].reset_index(drop=True)
    parquet, fits_path = folder / "grades.parquet", folder / "grades.fits"
    for path, write in ((parquet, _write_parquet), (fits_path, _write_fits)):
        tmp = folder / f".grades.{os.getpid()}{path.suffix}.tmp"
        write(table, tmp, origin)
        os.replace(tmp, path)
    return parquet, fits_path


def _description(origin: dict[str, Any]) -> dict[str, Any]:
    return {
        "what": "lenshunt visual grades: the latest grade of each object and inspector",
        "columns": [spec.model_dump(exclude={"optional"}) for spec in GRADE_TABLE_COLUMNS],
        "outdated": OUTDATED_RULE,
        "provenance": origin,
    }


def _write_parquet(table: pd.DataFrame, path: Path, origin: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.table import meta as astropy_meta

    from pipeline.catalog.encoding import to_astropy_table
    from pipeline.catalog.parquet import arrow_columns, string_lengths

    fields, arrays = arrow_columns(table, GRADE_TABLE_COLUMNS)
    astro = to_astropy_table(table, GRADE_TABLE_COLUMNS)
    astro.meta["lenshunt_grades"] = _description(origin)  # Table.read gives it back as meta
    metadata = {
        GRADES_METADATA_KEY: json.dumps(_description(origin)),
        "table_meta_yaml": "\n".join(astropy_meta.get_yaml_from_table(astro)),
    }
    encoded = {key.encode(): value.encode() for key, value in metadata.items()} | string_lengths(astro)
    schema = pa.schema(fields, metadata=encoded)
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)


def _write_fits(table: pd.DataFrame, path: Path, origin: dict[str, Any]) -> None:
    from astropy.io import fits

    from pipeline.catalog.encoding import to_astropy_table
    from pipeline.catalog.fits import (
        STRING_ENCODING,
        STRING_ENCODING_KEY,
        add_comment_lines,
        describe_columns,
        encode_text_columns,
        provenance_cards,
        set_card,
    )

    astro = encode_text_columns(to_astropy_table(table, GRADE_TABLE_COLUMNS))  # a comment "arc à gauche"
    astro.write(path, format="fits", overwrite=True)
    with fits.open(path, mode="update") as hdus:
        header = hdus[1].header
        set_card(header, "EXTNAME", GRADES_EXTNAME, "lenshunt visual grades")
        describe_columns(header, GRADE_TABLE_COLUMNS)
        header["ORIGIN"] = ("lenshunt", "strong-lens finding pipeline")
        header["DATE"] = (origin["exported"].rstrip("Z"), "UTC time the grades were exported")
        header["LONGSTRN"] = ("OGIP 1.0", "long strings use the CONTINUE convention")
        header[STRING_ENCODING_KEY] = (
            STRING_ENCODING,
            "text columns: non-ASCII and %",
        )
        set_card(header, "RUNDIR", origin["run_dir"], "run directory graded")
        set_card(header, "CATALOG", origin["catalog"] or "none", "catalog graded ('none' = no catalog)")
        set_card(header, "OUTDSTOR", origin["outdated_store"] or "none", "store whose re-reads mark outdated")
        set_card(header, "EXPVER", origin["code_version"], "lenshunt version that exported")
        if origin["catalog_provenance"] is not None:
            provenance_cards(header, Provenance.model_validate(origin["catalog_provenance"]))
        header["TIMESYS"] = ("UTC", "time scale of DATE and DATE-RUN")
        add_comment_lines(header, "lenshunt visual grades: the latest grade of each object and inspector.")
        add_comment_lines(header, OUTDATED_RULE)
        add_comment_lines(
            header,
            "MODELID to EXTRAS: the provenance of the catalog graded (CATALOG), as its own header gives it; "
            "STORE and STORECRE name the scored store and its identity, DATE-RUN the scoring run."
            if origin["catalog_provenance"] is not None
            else "The run directory held no readable catalog: no catalog provenance.",
        )
        for hdu in hdus:
            hdu.add_checksum()
