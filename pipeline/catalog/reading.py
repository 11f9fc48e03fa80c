"""Read a lenshunt catalog back from FITS, Parquet or VOTable, or a run directory.

:func:`read_catalog` returns the contract's columns with their dtypes and the units, UCDs,
descriptions, flags and provenance in ``DataFrame.attrs``; the HATS copy is read with
``lsdb.read_hats``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.catalog.fits import read_fits, read_fits_provenance
from pipeline.catalog.parquet import read_parquet, read_parquet_provenance
from pipeline.catalog.votable import read_votable, read_votable_provenance
from pipeline.errors import CatalogError
from pipeline.flags import documentation
from pipeline.paths import catalog_fits, catalog_parquet
from schemas.catalog import CATALOG_SCHEMA_VERSION, COLUMNS, Provenance, column_specs

__all__ = ["read_catalog", "read_provenance"]


def _resolve(path: Path) -> tuple[Path, str]:
    path = Path(path)
    if path.is_dir():
        path = catalog_parquet(path) if catalog_parquet(path).exists() else catalog_fits(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        kind = "parquet"
    elif name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
        kind = "fits"
    elif name.endswith((".vot", ".votable", ".xml")):
        kind = "votable"
    else:
        raise CatalogError(
            f"cannot tell the format of {path}: expected a .fits, .parquet or .vot catalog "
            "(open a HATS catalog with lsdb.read_hats)"
        )
    if not path.exists():
        raise CatalogError(f"catalog {path} does not exist; run the score stage to write it")
    return path, kind


_READERS = {"fits": read_fits, "parquet": read_parquet, "votable": read_votable}
_PROVENANCE_READERS = {
    "fits": read_fits_provenance,
    "parquet": read_parquet_provenance,
    "votable": read_votable_provenance,
}


def read_catalog(path: Path) -> pd.DataFrame:
    """Read a catalog from FITS, Parquet or VOTable (or a run directory) into a DataFrame.

    Columns come back with the contract's dtypes (``model_id`` as ``astype(str)`` gives it).
    ``DataFrame.attrs`` holds ``provenance`` (dict), ``columns`` (name -> unit, UCD and
    description) and ``flags`` (bit name -> meaning).
    """
    path, kind = _resolve(path)
    table, provenance = _READERS[kind](path)
    with_label = "label" in table.columns
    with_grades = "grade_n" in table.columns
    names = [spec.name for spec in column_specs(with_label=with_label, with_grades=with_grades)]
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise CatalogError(
            f"{path} is not a lenshunt catalog of schema version {CATALOG_SCHEMA_VERSION}: columns "
            f"{missing} are missing (a catalog of an older lenshunt: score the run again)"
        )
    table = table.loc[:, names].astype(
        {name: COLUMNS[name].dtype for name in names if COLUMNS[name].dtype != "str"}
    )
    for name in names:
        if COLUMNS[name].dtype == "str":
            table[name] = table[name].astype(str)
    table.attrs = {
        "provenance": provenance.to_json_dict(),
        "columns": {
            name: {
                "unit": COLUMNS[name].unit,
                "ucd": COLUMNS[name].ucd,
                "description": COLUMNS[name].description,
            }
            for name in names
        },
        "flags": documentation(),
    }
    return table


def read_provenance(path: Path) -> Provenance:
    """The provenance of a catalog file (FITS header, Parquet metadata, VOTable INFO) or run directory."""
    path, kind = _resolve(path)
    return _PROVENANCE_READERS[kind](path)
