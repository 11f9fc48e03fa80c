"""Create, grow, write and open lenshunt Zarr v3 stores (the contract is :mod:`schemas.store`).

Images are sharded along ``object`` (one shard per ``chunk_objects`` objects, inner chunks of
``inner_chunk_objects``) so that bulk reads stream whole shards while single objects (a gallery,
a random training batch) read one small inner chunk. Writers must own whole shards: regions
handed out by :func:`plan_regions` never share one.

Rows past the committed count (``n_objects`` attribute) belong to an ingest in progress (or killed)
and are hidden by :func:`open_store`, not by a plain ``xarray.open_zarr`` (why: :mod:`pipeline.store`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline import __version__
from pipeline.atomic import exchange
from pipeline.errors import StoreError, StoreExistsError, StoreNotFoundError
from pipeline.flags import Flag
from pipeline.locking import keep_lock_file
from pipeline.paths import BOOKKEEPING, store_lock_file, store_path_hint
from pipeline.sources.headers import HEADER_BYTES
from pipeline.store.lock import only_writer_lock
from schemas.layout import Layout, LayoutArg, as_layout, parse_layout

if TYPE_CHECKING:
    import xarray as xr

from schemas.store import (
    BAND_DIM,
    BAND_FLAGS,
    BAND_FLOAT_COORDINATES,
    COORDINATE_DTYPES,
    HEADER_CARDS,
    HEADER_DIM,
    IMAGE_DTYPE,
    NO_FILE_READ,
    OBJECT_DIM,
    STORE_SCHEMA_VERSION,
    StoreAttributes,
    image_dims,
    pixel_scale_coordinate,
)

DEFAULT_CHUNK_OBJECTS = 1024
_BOOKKEEPING_DOC = "lenshunt ingest plans, region done markers and reports; not data"
DEFAULT_INNER_CHUNK_OBJECTS = 16
_FILL = {"object_id": -1, "ra": np.nan, "dec": np.nan, "flags": 0, "label": -1}
_UNREADABLE = int(Flag.UNREADABLE)
MISSING_CHUNK_FILL = {"object_id": -1, "label": -1, "flags": _UNREADABLE, BAND_FLAGS: _UNREADABLE}
"""Zarr fill values of the per-object arrays (floats: NaN), which a missing chunk file reads as: with
Zarr's 0, a deleted ``label`` chunk read as non-lenses and ``flags`` as clean (older stores keep 0)."""


def empty_dataset(
    layout: Layout, n_objects: int = 0, images: Mapping[str, np.ndarray] | None = None
) -> xr.Dataset:
    """A dataset of the store schema for ``layout`` with ``n_objects`` blank rows.

    ``images`` (group -> float32 array of shape (n_objects, bands, ny, nx)) are used as the image
    variables instead of new all-NaN arrays.
    """
    data_vars = {}
    for group, bands in layout.groups.items():
        ny, nx = layout.group_shape(group)
        data_vars[group] = (
            image_dims(group),
            images[group]
            if images is not None
            else np.full((n_objects, len(bands), ny, nx), np.nan, dtype=IMAGE_DTYPE),
            {"bands": list(bands), "units": "flux (as in the input files)"},
        )
    coords = {
        name: ((OBJECT_DIM,), np.full(n_objects, _FILL[name], dtype=dtype))
        for name, dtype in COORDINATE_DTYPES.items()
    }
    n_bands = len(layout.bands)
    coords[BAND_FLAGS] = ((OBJECT_DIM, BAND_DIM), np.zeros((n_objects, n_bands), dtype="int32"))
    for name in BAND_FLOAT_COORDINATES:
        coords[name] = ((OBJECT_DIM, BAND_DIM), np.full((n_objects, n_bands), np.nan, dtype="float32"))
    for group, bands in layout.groups.items():
        scales = [layout.band(band).pixel_scale_arcsec for band in bands]
        coords[pixel_scale_coordinate(group)] = ((f"{group}_band",), np.asarray(scales, dtype="float64"))
    data_vars[HEADER_CARDS] = (
        (OBJECT_DIM, BAND_DIM, HEADER_DIM),
        np.zeros((n_objects, n_bands, HEADER_BYTES), dtype="uint8"),
        {"description": "per band input header cards (WCS, BUNIT, calibration), 80-column ASCII, 0-padded"},
    )
    import xarray as xr

    dataset = xr.Dataset(data_vars, coords=coords)
    dataset["band_zero_point"].attrs.update(units="mag", description="AB zero point from the header")
    dataset["band_pixel_scale"].attrs.update(units="arcsec", description="pixel scale of the header WCS")
    for group in layout.groups:
        dataset[pixel_scale_coordinate(group)].attrs.update(units="arcsec", description="layout pixel scale")
    dataset["ra"].attrs["units"] = "deg"
    dataset["dec"].attrs["units"] = "deg"
    dataset["label"].attrs["description"] = "1 lens, 0 non-lens, -1 unknown"
    dataset["flags"].attrs["description"] = "bitmask, see pipeline.flags"
    return dataset


def create_store(
    path: str | os.PathLike[str],
    layout: LayoutArg,
    *,
    source: str,
    chunk_objects: int = DEFAULT_CHUNK_OBJECTS,
    inner_chunk_objects: int = DEFAULT_INNER_CHUNK_OBJECTS,
) -> None:
    """Create an empty store for ``layout``, atomically; refuses to overwrite an existing path.

    The store is built in a hidden sibling folder (``.NAME.creating-PID-...``) and renamed into
    place once complete, so a kill at any moment leaves either no store or a whole one; the
    next creation removes folders left by creators that are no longer alive.

    A folder holding the store's writer lock file alone (its writer takes the lock before it makes the
    store: :func:`pipeline.store.ingest`) is replaced so that the lock file stays the store's
    (:func:`_put_around_lock`).

    Raises
    ------
    StoreExistsError
        If ``path`` exists and is not an empty folder (e.g. another process created it first) nor one
        of the lock file alone.
    StoreError
        If the chunk sizes are inconsistent.
    OSError
        If the parent folder cannot be written.
    """
    layout = as_layout(layout, "create_store")
    path = Path(path)
    around_lock = only_writer_lock(path)  # a writer holds the lock of the store it makes (ingest)
    if path.exists() and not _is_empty_dir(path) and not around_lock:
        raise StoreExistsError(f"{path} already exists; pass an existing lenshunt store or a new path")
    inner_chunk_objects = min(inner_chunk_objects, chunk_objects)
    if chunk_objects % inner_chunk_objects:
        raise StoreError(
            f"chunk_objects ({chunk_objects}) must be a multiple of inner_chunk_objects "
            f"({inner_chunk_objects})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_creations(path)
    building = path.parent / f".{path.name}{_CREATING}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_empty_store(building, layout, source, chunk_objects, inner_chunk_objects)
        try:
            if around_lock:
                _put_around_lock(building, path)
            else:
                os.rename(building, path)
        except OSError as exc:
            if path.exists():
                raise StoreExistsError(
                    f"{path} was created by another process meanwhile; rerun to use it"
                ) from exc
            raise
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)


def _put_around_lock(building: Path, path: Path) -> None:
    """Put the store at ``building`` in the place of ``path``, a folder holding only the store's writer
    lock file, that file kept (:func:`pipeline.locking.keep_lock_file`): its holder's lock is the new
    store's. In one exchange rename where the system has it, else ``path`` is renamed aside first
    (then removed with ``building``)."""
    keep_lock_file(store_lock_file(path), store_lock_file(building))
    if exchange(building, path):  # ``building`` now the folder of the lock file alone
        return
    os.rename(path, aside := building.with_name(f"{building.name}.aside"))
    try:
        os.rename(building, path)
    finally:  # as an exchange leaves it; or (another made ``path`` meanwhile) the folder aside removed
        if building.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(aside, building)


_CREATING = ".creating-"


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _remove_abandoned_creations(path: Path) -> None:
    """Remove ``.NAME.creating-PID-HEX`` folders of this store whose creator process is gone."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}{re.escape(_CREATING)}(\d+)-[0-9a-f]{{8}}$")
    for candidate in path.parent.iterdir():
        match = pattern.match(candidate.name)
        if match and candidate.is_dir() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(candidate, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def image_codec():
    """The image codec of new stores: Blosc LZ4 with bit shuffling (see bench/RESULTS.md, codecs).

    On noise-like float32 cutouts it compresses as well as Blosc zstd level 3 with bit shuffling
    (1.144x against 1.148x) and encodes 4.8x faster, decodes 1.6x faster. Stores written with
    another Blosc codec stay readable (the codec is in each array's metadata).
    ``LENSHUNT_IMAGE_CODEC`` (a Blosc compressor name, e.g. ``zstd``) overrides it, for benchmarks.
    """
    from zarr.codecs import BloscCodec

    return BloscCodec(cname=os.environ.get("LENSHUNT_IMAGE_CODEC", "lz4"), clevel=5, shuffle="bitshuffle")


def _write_empty_store(
    path: Path, layout: Layout, source: str, chunk_objects: int, inner_chunk_objects: int
) -> None:
    from zarr.codecs import ZstdCodec

    dataset = empty_dataset(layout)
    encoding: dict[str, dict] = {}
    for group in layout.groups:
        shape = dataset[group].shape[1:]
        encoding[group] = {
            "chunks": (inner_chunk_objects, *shape),
            "shards": (chunk_objects, *shape),
            "compressors": [image_codec()],
            "fill_value": np.nan,
        }
    for name in [*COORDINATE_DTYPES, BAND_FLAGS, *BAND_FLOAT_COORDINATES]:
        shape = dataset[name].shape[1:]
        encoding[name] = {
            "chunks": (chunk_objects, *shape),
            "compressors": [ZstdCodec(level=3)],
            "fill_value": MISSING_CHUNK_FILL.get(name, np.nan),
        }
    shape = dataset[HEADER_CARDS].shape[1:]
    encoding[HEADER_CARDS] = {
        "chunks": (inner_chunk_objects, *shape),
        "shards": (chunk_objects, *shape),
        "compressors": [ZstdCodec(level=3)],
    }
    attributes = StoreAttributes(
        lenshunt_store_schema=STORE_SCHEMA_VERSION,
        layout=layout.name,
        layout_yaml=layout.to_yaml(),
        groups={group: list(bands) for group, bands in layout.groups.items()},
        bands=list(layout.band_names),
        chunk_objects=chunk_objects,
        n_objects=0,
        producer=f"lenshunt {__version__}",
        created=datetime.now(UTC),
        source=str(source),
    )
    dataset.attrs.update(json.loads(attributes.model_dump_json()))
    dataset.to_zarr(path, zarr_format=3, consolidated=False, encoding=encoding, mode="w-")
    # Bookkeeping (plans, done markers, reports) lives in a Zarr group of its own, so that Zarr
    # and xarray see a well-formed hierarchy and never warn about it.
    import zarr

    zarr.open_group(path, mode="r+").create_group(BOOKKEEPING, attributes={"description": _BOOKKEEPING_DOC})


def read_column(
    dataset: xr.Dataset, name: str, rows: slice | np.ndarray = slice(None), store: object = None
) -> np.ndarray:
    """``dataset[name][rows]`` (rows along the object axis) as NumPy.

    Raises
    ------
    StoreError
        Where a chunk cannot be read or decoded (zstd and zarr raise OSError, ValueError or
        RuntimeError on a corrupt one), naming the column, and ``store`` when given.
    """
    try:
        return dataset[name][rows].values
    except (OSError, ValueError, RuntimeError) as exc:
        where = f"{store}: its" if store is not None else "its"
        raise StoreError(f"{where} {name!r} cannot be read ({exc})") from exc


def read_attributes(path: str | os.PathLike[str]) -> StoreAttributes:
    """The validated root attributes of the store at ``path``."""
    import zarr

    path = Path(path)
    if not (path / "zarr.json").exists():
        if path.exists() and not only_writer_lock(path):  # (the lock alone: a store not made yet)
            raise StoreError(f"{path} is not a Zarr v3 store (no zarr.json); {store_path_hint(path)}")
        stopped = (  # trial: unsaid why the folder was there
            " (it holds only the writer lock of an ingest stopped before it made the store: rerun it)"
            if path.exists()
            else ""
        )
        raise StoreNotFoundError(f"no store at {path}; create one with `lenshunt ingest`{stopped}")
    try:
        attrs = dict(zarr.open_group(path, mode="r").attrs)
    except (OSError, ValueError, RuntimeError) as exc:  # new-user trial: a zarr.json that is no JSON
        raise StoreError(f"{path} cannot be opened as a Zarr store ({type(exc).__name__}: {exc})") from exc
    if "lenshunt_store_schema" not in attrs:
        raise StoreError(f"{path} is a Zarr store but not a lenshunt store (no lenshunt_store_schema)")
    if attrs["lenshunt_store_schema"] != STORE_SCHEMA_VERSION:
        raise StoreError(
            f"{path} has store schema {attrs['lenshunt_store_schema']} (written by "
            f"{attrs.get('producer', 'an unknown lenshunt')}), this lenshunt reads schema "
            f"{STORE_SCHEMA_VERSION} only (schema 2 added the input headers' WCS, units and zero "
            "points). Re-ingest the cutouts into a new store: "
            f"lenshunt ingest {attrs.get('source', 'SOURCE')} NEW_STORE"
        )
    return StoreAttributes.model_validate(attrs)


def store_layout(attributes: StoreAttributes) -> Layout:
    """The layout a store was ingested with (from its own attributes), validated as it was then: the
    rules on band paths added since (glob characters, other placeholders, two bands' shared files) do
    not stop a store made before them from opening (``parse_layout`` ``recorded``)."""
    import yaml

    return parse_layout(yaml.safe_load(attributes.layout_yaml), source="store attributes", recorded=True)


def update_attributes(path: str | os.PathLike[str], values: Mapping[str, object]) -> None:
    import zarr

    zarr.open_group(Path(path), mode="r+").attrs.update(dict(values))


def resize_objects(path: str | os.PathLike[str], n_rows: int) -> None:
    """Grow (metadata only) every array with the object dimension to ``n_rows`` rows."""
    import zarr

    group = zarr.open_group(Path(path), mode="r+")
    for _, array in group.arrays():
        names = array.metadata.dimension_names
        if names and names[0] == OBJECT_DIM and array.shape[0] < n_rows:
            array.resize((n_rows, *array.shape[1:]))


def write_region(path: str | os.PathLike[str], start: int, dataset: xr.Dataset) -> None:
    """Write ``dataset`` (rows ``start`` onward) into the store, variable by variable, with zarr.

    The region must own its shards (:func:`~pipeline.store.ingestion.plan_regions`). A region
    that is a whole shard of a sharded array is written straight to the shard's file
    (:mod:`pipeline.store.shards`); the rest goes to zarr, raw, as xarray would write it (no CF
    encoding applies to the store's variables): xarray's region write checks and re-opens every
    array, which cost about as much as compressing the pixels (bench/RESULTS.md, ingest).
    """
    import zarr

    from pipeline.store.shards import write_whole_shard

    group = zarr.open_group(Path(path), mode="r+")
    stop = start + dataset.sizes[OBJECT_DIM]
    for name, variable in dataset.variables.items():
        if not variable.dims or variable.dims[0] != OBJECT_DIM:
            continue
        if variable.ndim > 2 and write_whole_shard(Path(path) / str(name), start, variable.values):
            continue  # a whole shard of images or header cards, written straight to its file
        array = group[str(name)]
        array[start:stop] = np.asarray(variable.values, dtype=array.dtype)


def open_store(
    path: str | os.PathLike[str], *, include_uncommitted: bool = False, chunks: str | dict | None = "auto"
) -> xr.Dataset:
    """Open a store lazily, checked against the store schema.

    Default ``chunks``: dask arrays; ``chunks=None``: lazily indexed arrays (for code inside a Dask task).

    Band names become coordinates (``band`` and ``<group>_band``); rows of an unfinished ingest
    are hidden unless ``include_uncommitted``.

    Raises
    ------
    StoreNotFoundError, StoreError
        If there is no store at ``path`` or it does not follow the schema.
    """
    import xarray as xr

    attributes = read_attributes(path)
    options = {} if chunks == "auto" else {"chunks": chunks}
    try:
        dataset = xr.open_zarr(Path(path), consolidated=False, zarr_format=3, **options)
    except ValueError as exc:  # arrays grown part-way by a stopped ingest (the next ingest finishes it)
        if "conflicting sizes for dimension" not in str(exc):
            raise
        why = "an ingest was stopped while growing it; run the same `lenshunt ingest` (or `run`) again"
        raise StoreError(f"store {path} has arrays of different lengths ({exc}): {why}") from exc
    _check_schema(dataset, attributes, path)
    if not include_uncommitted:
        dataset = dataset.isel({OBJECT_DIM: slice(0, attributes.n_objects)})
    dataset = dataset.assign_coords({BAND_DIM: attributes.bands})
    for group, bands in attributes.groups.items():
        dataset = dataset.assign_coords({f"{group}_band": bands})
        band_units = {band: attributes.band_units.get(band, NO_FILE_READ) for band in bands}
        distinct = set(band_units.values())
        dataset[group].attrs["band_units"] = band_units
        dataset[group].attrs["units"] = (
            distinct.pop()
            if len(distinct) == 1 and _single_unit(next(iter(distinct)))
            else (
                "per band, see band_units (BUNIT of the input files; '' where they had none, "
                f"{NO_FILE_READ!r} where no file of the band was read)"
            )
        )
    return dataset


def _single_unit(unit: str) -> bool:
    return bool(unit) and not unit.startswith("mixed: ") and unit != NO_FILE_READ


def _check_schema(dataset: xr.Dataset, attributes: StoreAttributes, path) -> None:
    problems = []
    for name, dtype in COORDINATE_DTYPES.items():
        if name not in dataset.variables:
            problems.append(f"missing {name}")
        elif dataset[name].dtype != np.dtype(dtype) or dataset[name].dims != (OBJECT_DIM,):
            problems.append(f"{name} is {dataset[name].dtype}{dataset[name].dims}, expected {dtype}(object,)")
    for group, bands in attributes.groups.items():
        if group not in dataset.data_vars:
            problems.append(f"missing image variable {group}")
        elif dataset[group].dims != image_dims(group) or dataset[group].shape[1] != len(bands):
            problems.append(f"{group} has dims {dataset[group].dims} and shape {dataset[group].shape}")
    names = (BAND_FLAGS, *BAND_FLOAT_COORDINATES, HEADER_CARDS)
    problems.extend(f"missing {name}" for name in names if name not in dataset.variables)
    if dataset.sizes.get(OBJECT_DIM, 0) < attributes.n_objects:
        problems.append(
            f"{attributes.n_objects} objects committed but arrays hold {dataset.sizes.get(OBJECT_DIM)}"
        )
    if problems:
        raise StoreError(f"store {path} violates the store schema: {'; '.join(problems)}")
