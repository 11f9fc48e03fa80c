"""The Parquet encoding of a checked catalog table (used by :mod:`pipeline.catalog.table`).

Per-field metadata (``unit``, ``ucd``, ``description``) and schema metadata with
``lenshunt.catalog`` (JSON: columns, flags, provenance), astropy's ``table_meta_yaml`` (so
``astropy.table.Table.read`` restores units) and a VOParquet VOTable header
(``IVOA.VOTable-Parquet.content``) for TOPCAT: ``catalog.vot``'s metadata
(:func:`pipeline.catalog.vometa.parquet_votable_header`), frame included. ``label`` is int16, as in
every file (:func:`pipeline.catalog.encoding.stored_dtype`).

A NaN of a float column (an unscored object's score, a spread, no known lens's separation, no
position) is written as an Arrow null, the format's own missing value: readers on Arrow-backed
types (lsdb, nested-pandas, pandas with ``dtype_backend="pyarrow"``, polars) count it in
``isna()``, where a NaN would read as a present number; pandas with NumPy types, astropy and TOPCAT
read it back as NaN, as the FITS and VOTable catalogs hold it. Other columns have no nulls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.catalog.columns import spec_lookup
from pipeline.catalog.digest import DIGEST_METADATA_KEY
from pipeline.catalog.encoding import stored_dtype, to_astropy_table
from pipeline.catalog.vometa import parquet_votable_header
from pipeline.errors import CatalogError
from pipeline.flags import NO_SCORE, UNUSABLE, documentation
from schemas.catalog import CATALOG_SCHEMA_VERSION, PARQUET_METADATA_KEY, ColumnSpec, Provenance

__all__ = [
    "arrow_columns",
    "count_parquet_rows",
    "read_parquet",
    "read_parquet_provenance",
    "string_lengths",
    "table_meta_yaml",
    "unreadable_catalog",
    "write_parquet",
    "written_parquet_digest",
]

_ARROW_TYPES = {
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "float64": "float64",
    "float32": "float32",
    "str": "string",
    "bool": "bool_",
}


def _catalog_description(table: pd.DataFrame, provenance: Provenance) -> dict[str, Any]:
    specs = spec_lookup(table)
    return {
        "schema_version": CATALOG_SCHEMA_VERSION,
        "columns": [specs[name].model_dump(exclude={"optional"}) for name in table.columns],
        "flags": documentation(),
        "unusable_flags": int(UNUSABLE),
        "no_score_flags": int(NO_SCORE),
        "provenance": provenance.to_json_dict(),
    }


def table_meta_yaml(
    table: pd.DataFrame, provenance: Provenance, *, leading: tuple[tuple[str, str, str], ...] = ()
) -> str:
    """astropy's ``table_meta_yaml`` for the table: units, descriptions, UCDs and the catalog description.

    ``leading`` adds int64 columns before the catalog's, as (name, description, UCD): the HATS
    catalog's ``_healpix_29`` (:mod:`pipeline.catalog.hats`).
    """
    from astropy.table import Column
    from astropy.table import meta as astropy_meta

    astropy_table = to_astropy_table(table)
    astropy_table.meta["lenshunt_catalog"] = _catalog_description(table, provenance)
    for index, (name, description, ucd) in enumerate(leading):
        values = np.zeros(len(table), dtype=np.int64)
        column = Column(values, name=name, description=description, meta={"ucd": ucd})
        astropy_table.add_column(column, index=index)
    return "\n".join(astropy_meta.get_yaml_from_table(astropy_table))


def arrow_columns(table: pd.DataFrame, specs: Sequence[ColumnSpec]) -> tuple[list[Any], list[Any]]:
    """The Arrow fields and arrays of ``table``'s columns, each field with ``unit``, ``ucd`` and
    ``description`` metadata (what pyarrow's ``schema.field(name).metadata`` gives back).

    Parameters
    ----------
    table : pandas.DataFrame
        n rows, its columns those of ``specs``, in order.
    specs : sequence of ColumnSpec
        One per column; a float column's NaN becomes an Arrow null (the only nullable columns).

    Returns
    -------
    tuple of (list of pyarrow.Field, list of pyarrow.Array)
        One of each per column, arrays of length n.
    """
    import pyarrow as pa

    fields, arrays = [], []
    for spec in specs:
        arrow_type = getattr(pa, _ARROW_TYPES[stored_dtype(spec.dtype)])()
        field_metadata = {"ucd": spec.ucd, "description": spec.description, "unit": spec.unit or ""}
        floating = spec.dtype.startswith("float")
        fields.append(pa.field(spec.name, arrow_type, nullable=floating, metadata=field_metadata))
        values = table[spec.name].to_numpy()
        values = values.tolist() if spec.dtype == "str" else values
        arrays.append(pa.array(values, type=arrow_type, from_pandas=floating))  # from_pandas: NaN -> null
    return fields, arrays


def string_lengths(astropy_table: Any) -> dict[bytes, bytes]:
    """The ``table::len::NAME`` schema metadata astropy's Parquet reader takes its text columns' widths
    from (without it, it warns and measures them), for each text column of ``astropy_table``
    (:func:`~pipeline.catalog.encoding.to_astropy_table`)."""
    return {
        f"table::len::{name}".encode(): str(astropy_table[name].dtype.itemsize // 4).encode()
        for name in astropy_table.colnames
        if astropy_table[name].dtype.kind == "U"
    }


def write_parquet(table: pd.DataFrame, path: Path, provenance: Provenance, *, digest: str = "") -> None:
    """Write a checked catalog table as Parquet with units, UCDs, flags and provenance metadata.

    ``digest`` (:func:`pipeline.catalog.digest.content_digest`) goes into the schema metadata.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    astropy_table = to_astropy_table(table)
    description = _catalog_description(table, provenance)
    specs = spec_lookup(table)
    fields, arrays = arrow_columns(table, [specs[name] for name in table.columns])
    metadata = {
        PARQUET_METADATA_KEY: json.dumps(description),
        "table_meta_yaml": table_meta_yaml(table, provenance),
        "IVOA.VOTable-Parquet.version": "1.0",
        **({DIGEST_METADATA_KEY: digest} if digest else {}),
    }
    encoded = {key.encode(): value.encode() for key, value in metadata.items()}
    encoded[b"IVOA.VOTable-Parquet.content"] = parquet_votable_header(table, provenance)
    encoded.update(string_lengths(astropy_table))
    arrow_table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=encoded))
    pq.write_table(arrow_table, path)


def unreadable_catalog(path: Path, exc: BaseException, what: str = "Parquet") -> CatalogError:
    """The one-line error for a catalog file that its reader cannot parse (damaged, truncated or foreign).

    Parameters
    ----------
    path : pathlib.Path
        The catalog file.
    exc : BaseException
        What the reader raised.
    what : str
        The format, as the message names it.

    Returns
    -------
    pipeline.errors.CatalogError
        Naming the file and the reader's reason, and how to write the catalog again.

    Examples
    --------
    >>> str(unreadable_catalog(Path("run/catalog.parquet"), ValueError("bad magic")))[:72]
    'run/catalog.parquet cannot be read as a Parquet catalog (ValueError: bad'
    """
    reason = " ".join(str(exc).split())[:200] or "no message"
    run_dir = Path(path).parent
    return CatalogError(
        f"{path} cannot be read as a {what} catalog ({type(exc).__name__}: {reason}): the file is damaged "
        f"or no catalog; score the run again to write it anew: `lenshunt score STORE --out {run_dir}` "
        "with the store and --model it scored"
    )


def _parquet_errors() -> tuple[type[BaseException], ...]:
    """What pyarrow raises for a file that is no Parquet, or a damaged one."""
    import pyarrow as pa

    return (pa.ArrowException, OSError, ValueError, KeyError, TypeError, EOFError)


def count_parquet_rows(path: Path) -> int:
    """Rows of the Parquet file ``path`` (from its footer).

    Raises
    ------
    pipeline.errors.CatalogError
        If the file cannot be read as Parquet (:func:`unreadable_catalog`).
    """
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except FileNotFoundError:
        raise
    except _parquet_errors() as exc:
        raise unreadable_catalog(path, exc) from exc


def read_parquet(path: Path) -> tuple[pd.DataFrame, Provenance]:
    """Catalog table and provenance of a Parquet catalog.

    Raises
    ------
    pipeline.errors.CatalogError
        If the file cannot be read as Parquet (:func:`unreadable_catalog`) or is no lenshunt catalog.
    """
    import pyarrow.parquet as pq

    try:
        arrow_table = pq.read_table(path)
        table = arrow_table.to_pandas()
    except FileNotFoundError:
        raise
    except CatalogError:
        raise
    except _parquet_errors() as exc:
        raise unreadable_catalog(path, exc) from exc
    return table, read_parquet_provenance(path)


def written_parquet_digest(path: Path) -> tuple[str, Provenance]:
    """The content digest (``''`` if none) and provenance a Parquet catalog records, from its footer.

    Raises
    ------
    pipeline.errors.CatalogError
        If the file is no Parquet (no ``PAR1`` at its start), its footer cannot be read, it has no
        lenshunt metadata, or other rows than its provenance's objects.
    """
    import pyarrow.parquet as pq

    with open(path, "rb") as file:
        if file.read(4) != b"PAR1":
            raise CatalogError(f"{path} does not start as a Parquet file does")
    provenance = read_parquet_provenance(path)
    try:
        footer = pq.ParquetFile(path).metadata
    except _parquet_errors() as exc:
        raise unreadable_catalog(path, exc) from exc
    if footer.num_rows != provenance.n_objects:
        raise CatalogError(f"{path} holds {footer.num_rows} rows, its provenance {provenance.n_objects}")
    digest = (footer.metadata or {}).get(DIGEST_METADATA_KEY.encode(), b"")
    return digest.decode(), provenance


def read_parquet_provenance(path: Path) -> Provenance:
    """The provenance in a Parquet catalog's schema metadata.

    Raises
    ------
    pipeline.errors.CatalogError
        If the file cannot be read as Parquet (:func:`unreadable_catalog`), has no lenshunt metadata,
        or its provenance cannot be parsed.
    """
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise
    except _parquet_errors() as exc:
        raise unreadable_catalog(path, exc) from exc
    key = PARQUET_METADATA_KEY.encode()
    if key not in metadata:
        raise CatalogError(f"{path} has no {PARQUET_METADATA_KEY!r} metadata: not a lenshunt catalog")
    try:
        return Provenance.model_validate(json.loads(metadata[key])["provenance"])
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise unreadable_catalog(path, exc) from exc
