"""Sources: the input side of the pipeline, before any store exists.

Discovery of cutout files in a layout (id x band -> path), FITS reading into pixels, flags and
positions, and the challenge-style label catalogs.

Names are imported on first use (PEP 562): reading headers or FITS files does not import pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy import lazy_exports

_EXPORTS = {
    "BandRead": "pipeline.sources.fits_io",
    "CatalogFormatError": "pipeline.sources.labels",
    "Manifest": "pipeline.sources.discovery",
    "NoCutoutsError": "pipeline.sources.discovery",
    "band_file_regex": "pipeline.sources.discovery",
    "band_folders_hint": "pipeline.sources.band_search",
    "clean_pixels": "pipeline.sources.pixels",
    "discover": "pipeline.sources.discovery",
    "find_label_catalog": "pipeline.sources.labels",
    "labels_for": "pipeline.sources.labels",
    "labels_from_catalog": "pipeline.sources.labels",
    "other_layout_hint": "pipeline.sources.band_search",
    "read_band": "pipeline.sources.fits_io",
    "read_label_catalog": "pipeline.sources.labels",
    "sky_position": "pipeline.sources.positions",
    "wcs_centre": "pipeline.sources.positions",
    "wrap_ra": "pipeline.sources.positions",
}

__all__ = [
    "BandRead",
    "CatalogFormatError",
    "Manifest",
    "NoCutoutsError",
    "band_file_regex",
    "band_folders_hint",
    "clean_pixels",
    "discover",
    "find_label_catalog",
    "labels_for",
    "labels_from_catalog",
    "other_layout_hint",
    "read_band",
    "read_label_catalog",
    "sky_position",
    "wcs_centre",
    "wrap_ra",
]

if TYPE_CHECKING:
    from pipeline.sources.band_search import band_folders_hint, other_layout_hint
    from pipeline.sources.discovery import Manifest, NoCutoutsError, band_file_regex, discover
    from pipeline.sources.fits_io import BandRead, read_band
    from pipeline.sources.labels import (
        CatalogFormatError,
        find_label_catalog,
        labels_for,
        labels_from_catalog,
        read_label_catalog,
    )
    from pipeline.sources.pixels import clean_pixels
    from pipeline.sources.positions import sky_position, wcs_centre, wrap_ra


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
