"""A grading page's catalog read again once a score run only grew it: new objects, or objects
scored since (their band files came late), join the page's queue when the page is reloaded.

:class:`~pipeline.inspection.rewrites.CatalogWatch` tells that the run's catalog only grew; the
page says to reload it, and a reloaded page asks the server to take the new catalog in
(:meth:`pipeline.inspection.server.InspectSession.reload_grown`), read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.inspection.band_flags import with_band_flags
from pipeline.inspection.images import ObjectImages
from pipeline.inspection.rewrites import CatalogWatch, file_identity, key_columns

__all__ = ["GrownCatalog", "grown_catalog", "read_run_catalog"]


def read_run_catalog(run_dir: Path) -> tuple:
    """(file identity, catalog, provenance) of the run's ``catalog.parquet``: the identity taken
    before reading, so that a rewrite meanwhile shows (:class:`CatalogWatch`)."""
    from pipeline.catalog import read_catalog, read_provenance
    from pipeline.paths import catalog_parquet

    path = catalog_parquet(run_dir)
    identity = file_identity(path)
    return identity, read_catalog(path), read_provenance(path)


@dataclass(frozen=True)
class GrownCatalog:
    """The run's grown catalog (with each band's flags), the store's images of it, a watch from it,
    and how many objects are new and how many were scored since."""

    catalog: pd.DataFrame
    images: ObjectImages
    watch: CatalogWatch
    new: int
    scored: int

    def joined(self) -> str:
        """What joined, in words.

        >>> GrownCatalog(None, None, None, 2, 1).joined()
        "The run's catalog grew since this page was loaded: 2 new objects and 1 scored since"
        """
        new = f"{self.new} new object{'s' if self.new != 1 else ''}"
        return f"The run's catalog grew since this page was loaded: {new}" + (
            f" and {self.scored} scored since" if self.scored else ""
        )


def grown_catalog(run_dir: Path, watch: CatalogWatch | None, store: Path) -> GrownCatalog | None:
    """The run's catalog read again when ``watch`` (the page's) says it only grew; None where it did
    not, or where another score run changed it otherwise meanwhile (``watch`` says so next)."""
    from pipeline.paths import catalog_parquet

    if watch is None or watch.gained() is None:
        return None
    identity, catalog, provenance = read_run_catalog(run_dir)
    changes, (new, scored) = watch.changes(provenance, key_columns(catalog))
    if changes or not new + scored:
        return None
    images = ObjectImages(store)  # the store's new objects: their images
    catalog = with_band_flags(catalog, store, images.layout.band_names)
    now = CatalogWatch.start(run_dir, catalog_parquet(run_dir), identity, provenance, catalog)
    return GrownCatalog(catalog, images, now, new, scored)
