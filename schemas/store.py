"""The Zarr store contract: names, dimensions, dtypes and attributes of a lenshunt store.

A store holds one image variable per resolution group of its layout, each with dims
``(object, <group>_band, <group>_y, <group>_x)`` and dtype float32 (NaN where pixels are missing,
masked or non-finite), and per-object coordinates along ``object``:

============  =======  ================================================================
name          dtype    meaning
================  =======  ==========================================================
name              dtype    meaning
================  =======  ==========================================================
object_id         int64    the object's id in the set (from the file names)
ra, dec           float64  sky position in degrees (NaN when no header had one)
flags             int32    OR of the band flags (:mod:`pipeline.flags`)
band_flags        int32    per band flags, dims ``(object, band)``, bands in layout order
band_zero_point   float32  per band AB zero point (mag) from the header, NaN if none
band_pixel_scale  float32  per band pixel scale (arcsec) from the header WCS, NaN if none
label             int8     1 lens, 0 non-lens, -1 unknown (from the set's catalog)
================  =======  ==========================================================

``header_cards`` (uint8, dims ``(object, band, header_byte)``) holds, per object and band, the
input header's cards that define its WCS, units and calibration, verbatim as 80-column ASCII
card images, zero padded (:mod:`pipeline.sources.headers`): 256 cards (``header_byte`` 20,480) in
a store made today, 64 (5,120) in one made before 2026-12-06, which keeps its size; a header with
more is chosen from (:mod:`pipeline.sources.card_choice`); ``lenshunt cutout`` writes them back
into per-band FITS files. Each image variable has the coordinate ``<group>_pixel_scale``
(arcsec, the layout's nominal scale) along ``<group>_band``, and attributes ``units`` and
``band_units`` (``BUNIT`` of the inputs per band, from the ``band_units`` store attribute, which
names every band of the layout: ``(no file read)`` where no ingest read a file of it, no unit).

Only ``object`` is chunked. Band names are kept in attributes (Zarr v3 has no string dtype
spec), and :func:`pipeline.store.zarr_store.open_store` turns them into coordinates.

Schema 2 added ``header_cards``, ``band_zero_point``, ``band_pixel_scale``, the
``<group>_pixel_scale`` coordinates and ``band_units``; stores of schema 1 are refused with a
message saying to re-ingest.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.path_text import PathText

STORE_SCHEMA_VERSION = 2
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
BAND_FLOAT_COORDINATES = ("band_zero_point", "band_pixel_scale")
"""Per (object, band) float32 coordinates read from the headers."""
HEADER_CARDS = "header_cards"
HEADER_DIM = "header_byte"
NO_FILE_READ = "(no file read)"
"""A band's ``band_units`` where no file of it was read (none found, or none readable): no unit known,
not a unit, and never written as one (a cutout's ``BUNIT`` is its input's card)."""
IMAGE_DTYPE = "float32"
LABEL_UNKNOWN = -1


RESERVED_NAMES = frozenset(
    {OBJECT_DIM, BAND_DIM, HEADER_DIM, HEADER_CARDS, BAND_FLAGS, *BAND_FLOAT_COORDINATES, *COORDINATE_DTYPES}
)
"""The store's own variables, coordinates and dimensions: no layout group (image variable) may take one."""


def image_dims(group: str) -> tuple[str, str, str, str]:
    """Dimension names of a group's image variable."""
    return (OBJECT_DIM, f"{group}_band", f"{group}_y", f"{group}_x")


def pixel_scale_coordinate(group: str) -> str:
    """Name of a group's coordinate holding its bands' layout pixel scales (along ``<group>_band``)."""
    return f"{group}_pixel_scale"


def group_names(group: str) -> tuple[str, ...]:
    """Every name a group brings into the store: its image variable, dimensions and coordinate.

    >>> group_names("vis")
    ('vis', 'vis_band', 'vis_y', 'vis_x', 'vis_pixel_scale')
    """
    return (group, *image_dims(group)[1:], pixel_scale_coordinate(group))


PENDING_PLAN_ATTR = "ingest_pending_plan"
"""Root attribute naming the plan of an ingest that has not committed yet (a killed ingest's plan
stays there until the next ``lenshunt ingest`` finishes it)."""


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
    source: PathText = Field(description="Root directory of the cutouts first ingested.")
    band_units: dict[str, str] = Field(
        default_factory=dict,
        description="Band -> BUNIT of its inputs ('' when none had one; 'mixed: a, b' when they differ; "
        f"{NO_FILE_READ!r} when no file of it was read), every band of the layout.",
    )
    reader_revision: int = Field(
        default=1,
        ge=1,
        description="Revision of the rules of reading files that every object was read by "
        "(pipeline/store/reader_revision.py; 1: stores made before revisions were recorded, or a value "
        "that is no whole number of at least 1, taken as the oldest).",
    )

    @field_validator("reader_revision", mode="before")
    @classmethod
    def _oldest_when_unreadable(cls, value: object) -> object:
        """An edited or damaged value (null, text) is the oldest revision (trial: a traceback)."""
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


REREAD_PENDING_ATTR = "reread_pending"
"""Root attribute set while ``lenshunt ingest --reread`` rewrites a store's rows (before its first row
and layout are written, cleared when its last shard is): a killed re-read leaves it, and the next
ingest finishes the re-read (:mod:`pipeline.store.reread_marker`)."""
