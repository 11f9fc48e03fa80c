"""Sources: the input side of the pipeline, before any store exists.

Discovery of cutout files in a layout (id x band -> path), FITS reading into pixels, flags and
positions, and the challenge-style label catalogs.
"""

from pipeline.sources.discovery import Manifest, discover
from pipeline.sources.fits_io import BandRead, clean_pixels, read_band, sky_position
from pipeline.sources.labels import (
    CatalogFormatError,
    find_label_catalog,
    labels_for,
    labels_from_catalog,
    read_label_catalog,
)

__all__ = [
    "BandRead",
    "CatalogFormatError",
    "Manifest",
    "clean_pixels",
    "discover",
    "find_label_catalog",
    "labels_for",
    "labels_from_catalog",
    "read_band",
    "read_label_catalog",
    "sky_position",
]
