"""The catalog: one row per store object (contract in :mod:`schemas.catalog`), written per format.

:mod:`~pipeline.catalog.table` builds, checks and writes it and :mod:`~pipeline.catalog.reading`
reads it; :mod:`~pipeline.catalog.fits`, :mod:`~pipeline.catalog.parquet`,
:mod:`~pipeline.catalog.votable` and :mod:`~pipeline.catalog.hats` (for LSDB) are the encodings,
sharing :mod:`~pipeline.catalog.encoding`; :mod:`~pipeline.catalog.known_lenses` crossmatches
positions against known lenses, and :mod:`~pipeline.catalog.duplicates` finds objects at one position.
"""

from pipeline.catalog.columns import CatalogLayout, default_rank_by, output_column_specs
from pipeline.catalog.duplicates import DUPLICATE_RADIUS_ARCSEC, describe_duplicates, duplicate_groups
from pipeline.catalog.hats import HATS_EXTRA_COLUMNS
from pipeline.catalog.known_lenses import (
    DEFAULT_MATCH_RADIUS_ARCSEC,
    KnownLenses,
    check_match_radius,
    lenscat_lenses,
    load_known_lenses,
    match_known_lenses,
    read_known_lenses,
)
from pipeline.catalog.store_match import (
    StoreMismatchError,
    check_run_store,
    check_runs_share_store,
    check_same_store,
    read_run_record,
    run_store,
    store_identity,
)
from pipeline.catalog.table import (
    CatalogError,
    CatalogPaths,
    assign_ranks,
    make_catalog_table,
    read_catalog,
    read_provenance,
    scored_mask,
    validate_catalog,
    write_catalog,
)

__all__ = [
    "DEFAULT_MATCH_RADIUS_ARCSEC",
    "DUPLICATE_RADIUS_ARCSEC",
    "HATS_EXTRA_COLUMNS",
    "CatalogError",
    "CatalogLayout",
    "CatalogPaths",
    "KnownLenses",
    "StoreMismatchError",
    "assign_ranks",
    "check_match_radius",
    "check_run_store",
    "check_runs_share_store",
    "check_same_store",
    "default_rank_by",
    "describe_duplicates",
    "duplicate_groups",
    "lenscat_lenses",
    "load_known_lenses",
    "make_catalog_table",
    "match_known_lenses",
    "output_column_specs",
    "read_catalog",
    "read_known_lenses",
    "read_provenance",
    "read_run_record",
    "run_store",
    "scored_mask",
    "store_identity",
    "validate_catalog",
    "write_catalog",
]
