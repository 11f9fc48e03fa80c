"""The store: the Zarr v3 dataset (schema in :mod:`schemas.store`) and the ingest that fills it.

:mod:`~pipeline.store.zarr_store` creates, opens and checks stores; :mod:`~pipeline.store.ingestion`
turns a source directory into store rows, incrementally and resumably, on Dask.
"""

from pipeline.store.cutouts import CutoutFiles, write_cutouts
from pipeline.store.ingestion import IngestReport, ingest, plan_regions
from pipeline.store.zarr_store import (
    DEFAULT_CHUNK_OBJECTS,
    DEFAULT_INNER_CHUNK_OBJECTS,
    create_store,
    open_store,
    read_attributes,
    store_layout,
)

__all__ = [
    "DEFAULT_CHUNK_OBJECTS",
    "DEFAULT_INNER_CHUNK_OBJECTS",
    "CutoutFiles",
    "IngestReport",
    "create_store",
    "ingest",
    "open_store",
    "plan_regions",
    "read_attributes",
    "store_layout",
    "write_cutouts",
]
