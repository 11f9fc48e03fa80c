"""The catalog: one row per store object (contract in :mod:`schemas.catalog`), written per format.

:mod:`~pipeline.catalog.table` builds, checks, writes and reads it; :mod:`~pipeline.catalog.fits` and
:mod:`~pipeline.catalog.parquet` are the encodings, sharing :mod:`~pipeline.catalog.encoding`.
"""

from pipeline.catalog.table import (
    CatalogError,
    CatalogPaths,
    assign_ranks,
    make_catalog_table,
    read_catalog,
    read_provenance,
    validate_catalog,
    write_catalog,
)

__all__ = [
    "CatalogError",
    "CatalogPaths",
    "assign_ranks",
    "make_catalog_table",
    "read_catalog",
    "read_provenance",
    "validate_catalog",
    "write_catalog",
]
