"""Sources: the input side of the pipeline, before any store exists.

Discovery of cutout files in a layout (id x band -> path), FITS reading into pixels, flags and
positions, and the challenge-style label catalogs.
"""

from pipeline.sources.discovery import Manifest, NoCutoutsError, band_file_regex, discover
from pipeline.sources.fits_io import BandRead, clean_pixels, read_band
from pipeline.sources.labels import (
    CatalogFormatError,
    find_label_catalog,
    labels_for,
    labels_from_catalog,
    read_label_catalog,
)
from pipeline.sources.positions import sky_position, wcs_centre

__all__ = [
    "BandRead",
    "CatalogFormatError",
    "Manifest",
    "NoCutoutsError",
    "band_file_regex",
    "clean_pixels",
    "discover",
    "find_label_catalog",
    "labels_for",
    "labels_from_catalog",
    "read_band",
    "read_label_catalog",
    "sky_position",
    "wcs_centre",
]
