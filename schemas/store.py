"""The Zarr store contract: names, dimensions, dtypes and attributes of a lenshunt store.

A store holds one image variable per resolution group of its layout, each with dims
``(object, <group>_band, <group>_y, <group>_x)`` and dtype float32 (NaN where pixels are missing,
masked or non-finite), and per-object coordinates along ``object``:

============  =======  ================================================================
name          dtype    meaning
============  =======  ================================================================
object_id     int64    the object's id in the set (from the file names)
ra, dec       float64  sky position in degrees (NaN when no header had one)
flags         int32    OR of the band flags (:mod:`pipeline.flags`)
band_flags    int32    per band flags, dims ``(object, band)``, bands in layout order
label         int8     1 lens, 0 non-lens, -1 unknown (from the set's catalog)
============  =======  ================================================================

Only ``object`` is chunked. Band names are kept in attributes (Zarr v3 has no string dtype
spec), and :func:`pipeline.store.zarr_store.open_store` turns them into coordinates.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

STORE_SCHEMA_VERSION = 1
OBJECT_DIM = "object"
BAND_DIM = "band"
COORDINATE_DTYPES: dict[str, str] = {
    "object_id": "int64",
    "ra": "float64",
    "dec": "float64",
    "flags": "int32",
    "label": "int8",
}
BAND_FLAGS = "band_flags"
IMAGE_DTYPE = "float32"
LABEL_UNKNOWN = -1


def image_dims(group: str) -> tuple[str, str, str, str]:
    """Dimension names of a group's image variable."""
    return (OBJECT_DIM, f"{group}_band", f"{group}_y", f"{group}_x")


class StoreAttributes(BaseModel):
    """Root attributes every lenshunt store carries; checked when a store is opened."""

    model_config = ConfigDict(extra="allow")

    lenshunt_store_schema: int = Field(description="Store schema version.")
    layout: str = Field(description="Name of the layout the store was ingested with.")
    layout_yaml: str = Field(description="The full layout, as YAML, so a store explains itself.")
    groups: dict[str, list[str]] = Field(description="Image variable -> its band names in order.")
    bands: list[str] = Field(description="All band names in layout order (the band_flags dim).")
    chunk_objects: int = Field(gt=0, description="Objects per chunk along the object dim.")
    n_objects: int = Field(ge=0, description="Committed objects; rows past it are not yet valid.")
    producer: str = Field(description="lenshunt version that created the store.")
    created: datetime
    source: str = Field(description="Root directory of the cutouts first ingested.")
