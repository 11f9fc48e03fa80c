"""Read a lenshunt catalog back from FITS, Parquet or VOTable, or a run directory.

:func:`read_catalog` returns the contract's columns with their dtypes and the units, UCDs,
descriptions, flags and provenance in ``DataFrame.attrs``; the HATS copy is read with
``lsdb.read_hats``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

import pandas as pd

from pipeline.catalog.columns import LAYOUT_ATTR, CatalogLayout, listed_outputs
from pipeline.catalog.fits import read_fits, read_fits_provenance
from pipeline.catalog.parquet import read_parquet, read_parquet_provenance, unreadable_catalog
from pipeline.catalog.votable import read_votable, read_votable_provenance
from pipeline.errors import CatalogError, LenshuntError
from pipeline.flags import documentation
from pipeline.paths import catalog_fits, catalog_parquet
from schemas.catalog import CATALOG_SCHEMA_VERSION, GRADE_COMMENTS_COLUMN, Provenance, extra_column_specs

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
_FORMATS = {"fits": "FITS", "parquet": "Parquet", "votable": "VOTable"}


def _unreadable_errors() -> tuple[type[BaseException], ...]:
    """What the format readers (astropy, pyarrow, XML) raise for a damaged, truncated or foreign file."""
    from astropy.io.registry import IORegistryError  # astropy's "Format could not be identified"

    parsing = (ExpatError, ParseError, IORegistryError)
    return (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, *parsing)


def _read(reader: Callable[[Path], Any], path: Path, kind: str) -> Any:
    """``reader(path)``; a file the reader cannot parse is one :class:`CatalogError` naming it."""
    try:
        return reader(path)
    except (LenshuntError, FileNotFoundError):
        raise
    except _unreadable_errors() as exc:  # new-user trial: random bytes in catalog.parquet were a traceback
        raise unreadable_catalog(path, exc, _FORMATS[kind]) from exc


def read_catalog(path: Path) -> pd.DataFrame:
    """Read a catalog from FITS, Parquet or VOTable (or a run directory) into a DataFrame.

    Columns come back with the contract's dtypes (``model_id`` as ``astype(str)`` gives it),
    the declared outputs' columns included (their layout comes from the provenance's
    ``outputs`` and ``rank_by``; ``outputs`` ``[]``, as older catalogs of the default ``score``
    have it, reads as that output listed). ``DataFrame.attrs`` holds ``provenance`` (dict), ``columns``
    (name -> unit, UCD and description), ``flags`` (bit name -> meaning), ``outputs`` (the
    declared outputs, as a card lists them) and the :class:`~pipeline.catalog.columns.CatalogLayout`.
    Columns outside the layout (written by a later stage) are kept as stored. A catalog graded before
    ``grade_comments`` existed is read without it (its other grade columns as they are).

    Raises
    ------
    pipeline.errors.CatalogError
        If the catalog is missing, cannot be read (damaged, truncated or foreign), or lacks columns.
    """
    path, kind = _resolve(path)
    table, provenance = _read(_READERS[kind], path, kind)
    provenance = listed_outputs(provenance)  # an older catalog's [] is the default score
    layout = CatalogLayout.from_provenance(provenance.outputs, provenance.rank_by)
    extra = extra_column_specs(list(table.columns), provenance.extras.get("ood_quantile"))
    if extra:  # e.g. ood_score (pipeline.models.features), the per-band flags
        layout = CatalogLayout(outputs=layout.outputs, rank_by=layout.rank_by, extra=extra)
    with_label = "label" in table.columns
    with_grades = "grade_n" in table.columns
    specs = {spec.name: spec for spec in layout.column_specs(with_label=with_label, with_grades=with_grades)}
    if GRADE_COMMENTS_COLUMN not in table.columns:  # graded before the column existed: read as it is
        specs.pop(GRADE_COMMENTS_COLUMN, None)
    names = list(specs)
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise CatalogError(
            f"{path} is not a lenshunt catalog of schema version {CATALOG_SCHEMA_VERSION}: columns "
            f"{missing} are missing (a catalog of an older lenshunt: score the run again)"
        )
    others = [name for name in table.columns if name not in specs and name != "_healpix_29"]
    table = table.loc[:, names + others].astype(
        {name: specs[name].dtype for name in names if specs[name].dtype != "str"}
    )
    for name in names:
        if specs[name].dtype == "str":
            table[name] = table[name].astype(str)
    table.attrs = {
        "provenance": provenance.to_json_dict(),
        "columns": {
            name: {"unit": spec.unit, "ucd": spec.ucd, "description": spec.description}
            for name, spec in specs.items()
        },
        "flags": documentation(),
        "outputs": layout.outputs_json(),
        LAYOUT_ATTR: layout.to_attr(),
    }
    return table


def read_provenance(path: Path) -> Provenance:
    """The provenance of a catalog file (FITS header, Parquet metadata, VOTable INFO) or run directory,
    its ``outputs`` listed (an older catalog's ``[]`` reads as the default ``score``'s entry).

    Raises
    ------
    pipeline.errors.CatalogError
        If the catalog is missing, of an unknown format, or cannot be read (damaged, truncated or
        foreign: one line naming the file and how to write it again).
    """
    path, kind = _resolve(path)
    return listed_outputs(_read(_PROVENANCE_READERS[kind], path, kind))
