"""The store: the Zarr v3 dataset (schema in :mod:`schemas.store`) and the ingest that fills it.

:mod:`~pipeline.store.zarr_store` creates, opens and checks stores; :mod:`~pipeline.store.ingestion`
turns a source directory into store rows, incrementally and resumably, on Dask;
:mod:`~pipeline.store.summary` says what a store holds from its metadata and small columns;
:mod:`~pipeline.store.without_files` records the label catalog's objects that have no file.

Only the first ``n_objects`` rows (the attribute) of the arrays are committed objects;
:func:`open_store` keeps to them, a plain ``xarray.open_zarr`` shows every row. Rows past them
belong to an ingest in progress or killed (ids -1 and NaN pixels flagged UNREADABLE, or rows of an
unfinished region with flags 0), and they cannot be hidden from it without giving up the
incremental, resumable ingest: Zarr writes only inside an array's shape, so an ingest grows the
arrays (metadata only) before its workers write their regions in parallel, in place, and the next
ingest after a kill rewrites only the regions without a done marker; the commit is a single
attribute write. Growing the arrays at the commit instead would mean writing the rows elsewhere
first and copying them in, every pixel written twice.

Names are imported on first use (PEP 562), so ``lenshunt info`` and ``--help`` do not pay for
xarray and Dask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_CHUNK_OBJECTS": "pipeline.store.zarr_store",
    "DEFAULT_INNER_CHUNK_OBJECTS": "pipeline.store.zarr_store",
    "CutoutFiles": "pipeline.store.cutouts",
    "IngestReport": "pipeline.store.ingestion",
    "StoreSummary": "pipeline.store.summary",
    "WithoutFiles": "pipeline.store.without_files",
    "check_existing_store": "pipeline.store.ingestion",
    "check_store_not_busy": "pipeline.store.lock",
    "check_store_source": "pipeline.store.store_source",
    "check_has_objects": "pipeline.store.summary",
    "check_no_interrupted_reread": "pipeline.store.reread_marker",
    "interrupted_reread": "pipeline.store.reread_marker",
    "reread_line": "pipeline.store.reread_marker",
    "create_store": "pipeline.store.zarr_store",
    "ingest": "pipeline.store.ingestion",
    "NOT_RECORDED": "pipeline.store.flag_reasons",
    "older_rules_note": "pipeline.store.reader_revision",
    "pending_warning": "pipeline.store.summary",
    "open_store": "pipeline.store.zarr_store",
    "plan_regions": "pipeline.store.ingestion",
    "read_attributes": "pipeline.store.zarr_store",
    "read_column": "pipeline.store.zarr_store",
    "read_flags": "pipeline.store.columns",
    "read_object_columns": "pipeline.store.columns",
    "read_without_files": "pipeline.store.without_files",
    "rewrite_times": "pipeline.store.rewrites",
    "rewritten_since_scored": "pipeline.store.rewrites",
    "store_layout": "pipeline.store.zarr_store",
    "store_lock_from_start": "pipeline.store.lock",
    "store_summary": "pipeline.store.summary",
    "store_writer_elsewhere": "pipeline.store.lock",
    "write_cutouts": "pipeline.store.cutouts",
}

__all__ = [
    "DEFAULT_CHUNK_OBJECTS",
    "DEFAULT_INNER_CHUNK_OBJECTS",
    "NOT_RECORDED",
    "CutoutFiles",
    "IngestReport",
    "StoreSummary",
    "WithoutFiles",
    "check_existing_store",
    "check_has_objects",
    "check_no_interrupted_reread",
    "check_store_not_busy",
    "check_store_source",
    "create_store",
    "ingest",
    "interrupted_reread",
    "older_rules_note",
    "open_store",
    "pending_warning",
    "plan_regions",
    "read_attributes",
    "read_column",
    "read_flags",
    "read_object_columns",
    "read_without_files",
    "reread_line",
    "rewrite_times",
    "rewritten_since_scored",
    "store_layout",
    "store_lock_from_start",
    "store_summary",
    "store_writer_elsewhere",
    "write_cutouts",
]

if TYPE_CHECKING:
    from pipeline.store.columns import read_flags, read_object_columns
    from pipeline.store.cutouts import CutoutFiles, write_cutouts
    from pipeline.store.flag_reasons import NOT_RECORDED
    from pipeline.store.ingestion import IngestReport, check_existing_store, ingest, plan_regions
    from pipeline.store.lock import check_store_not_busy, store_lock_from_start, store_writer_elsewhere
    from pipeline.store.reader_revision import older_rules_note
    from pipeline.store.reread_marker import check_no_interrupted_reread, interrupted_reread, reread_line
    from pipeline.store.rewrites import rewrite_times, rewritten_since_scored
    from pipeline.store.store_source import check_store_source
    from pipeline.store.summary import StoreSummary, check_has_objects, pending_warning, store_summary
    from pipeline.store.without_files import WithoutFiles, read_without_files
    from pipeline.store.zarr_store import (
        DEFAULT_CHUNK_OBJECTS,
        DEFAULT_INNER_CHUNK_OBJECTS,
        create_store,
        open_store,
        read_attributes,
        store_layout,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
