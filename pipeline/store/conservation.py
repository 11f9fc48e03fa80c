"""The check closing every ingest: objects in = objects out, against the store itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import ConservationError

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.sources.discovery import Manifest
    from pipeline.store.ingest_report import IngestReport


def check_conservation(store_data: xr.Dataset, manifest: Manifest, report: IngestReport) -> None:
    """Raise where the store ``store_data`` (committed rows) lost, duplicated or left out objects.

    Raises
    ------
    ConservationError
        Naming each problem: duplicated ids, rows without an id, discovered objects missing, or a
        count other than the report's (before + added + finished from an interrupted run).
    """
    ids = store_data["object_id"].values
    problems = []
    if ids.size != np.unique(ids).size:
        problems.append(f"{ids.size - np.unique(ids).size} duplicated object ids")
    if (ids < 0).any():
        problems.append(f"{int((ids < 0).sum())} rows without an object id")
    missing = np.setdiff1d(manifest.object_ids, ids)
    if missing.size:
        problems.append(f"{missing.size} discovered objects not in the store (e.g. {missing[:5].tolist()})")
    if report.n_after != report.n_before + report.n_added + report.n_resumed:
        problems.append(
            f"store holds {report.n_after} objects, expected {report.n_before} + {report.n_added} + "
            f"{report.n_resumed}"
        )
    if problems:
        raise ConservationError(f"ingest into {report.store} broke conservation: {'; '.join(problems)}")
