"""Data contracts of lenshunt: cutout layouts, the Zarr store schema and the catalog schema.

The YAML files under ``schemas/layouts/`` are data; the pydantic models here validate them.
"""

from schemas.layout import (
    Band,
    CatalogSpec,
    CoordinateSpec,
    Layout,
    as_layout,
    available_layouts,
    load_layout,
)

__all__ = [
    "Band",
    "CatalogSpec",
    "CoordinateSpec",
    "Layout",
    "as_layout",
    "available_layouts",
    "load_layout",
]
