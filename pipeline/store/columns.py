"""A store's per-object columns as the stages read them, checked for damage.

An object's flags are its ``flags`` with every band's ``band_flags`` OR-ed in
(:func:`pipeline.flags.object_flags`), and a row whose sky position is missing carries
``NO_COORDINATES``, so that a missing chunk file of one column (read as its fill value,
:data:`~pipeline.store.zarr_store.MISSING_CHUNK_FILL`) cannot make an object look clean.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import StoreError
from pipeline.flags import UNUSABLE, Flag, object_flags
from pipeline.store.zarr_store import read_column
from schemas.store import BAND_FLAGS

if TYPE_CHECKING:
    import xarray as xr

OBJECT_COLUMNS = ("object_id", "label", "flags", "ra", "dec")
"""The per-object columns every store has."""


def read_flags(
    dataset: xr.Dataset,
    rows: slice | np.ndarray = slice(None),
    store: object = None,
    bands: Sequence[str] | None = None,
) -> np.ndarray:
    """The flags of ``rows`` (along the object axis) of a store's dataset, int32 shape (n,).

    Every reader that decides which objects are usable reads them here, so that all agree (the
    catalog's ``flags``, from :func:`read_object_columns`, are these without ``bands``): ``flags`` with every
    band's ``band_flags`` OR-ed in (a store whose ``band_flags`` chunk file is missing reads those
    bands UNREADABLE; :func:`pipeline.flags.object_flags`) and, given ``store`` (its path),
    UNREADABLE where a missing image shard file lost the object's pixels (:func:`lost_pixel_rows`).

    Parameters
    ----------
    dataset : the store's dataset
    rows : the rows to read (default: all)
    store : the store's path, to find lost shard files (default: not looked for)
    bands : sequence of str, optional
        The bands a model reads (default: every band). The flags are then those of an object as that
        model sees it: the :data:`~pipeline.flags.UNUSABLE` bits come from these bands only (and from
        the lost shards of their groups), so an object whose other bands have no pixels stays usable
        (new-user trial: a ``--bands VIS`` model left out objects with a good VIS and no J), and from
        the object's own ``flags`` where no band explains them (a lost ``flags`` chunk reads as
        UNREADABLE). Every other bit is the object's, as without ``bands``.

    Raises
    ------
    StoreError
        Where a chunk of either column cannot be decoded, naming the column (and ``store`` if given).
    ValueError
        If ``bands`` names a band the store lacks.
    """
    band_flags = np.asarray(read_column(dataset, BAND_FLAGS, rows, store=store))
    own = read_column(dataset, "flags", rows, store=store)
    flags = object_flags(own, band_flags)
    a = dataset.attrs
    if bands is not None:
        unknown = sorted(set(bands) - set(a["bands"]))
        if unknown:
            raise ValueError(f"bands {unknown} are not in the store (its bands: {list(a['bands'])})")
        used = [list(a["bands"]).index(band) for band in bands]
        from_used = np.bitwise_or.reduce(band_flags[:, used], axis=1) & int(UNUSABLE)
        # bits no band explains stay (review: a lost `flags` chunk, UNREADABLE, was read as clean)
        unexplained = np.asarray(own) & int(UNUSABLE) & ~np.bitwise_or.reduce(band_flags, axis=1)
        flags = ((flags & ~int(UNUSABLE)) | from_used | unexplained).astype(np.int32)
    if store is not None:
        index = np.arange(int(dataset.sizes["object"]))[rows]
        lost = lost_pixel_rows(store, a["groups"], a["bands"], a["chunk_objects"], band_flags, index)
        for group, lost_rows in lost.items():
            if bands is None or set(a["groups"][group]) & set(bands):
                flags[lost_rows] |= int(Flag.UNREADABLE)  # new-user trial: scored as clean (NaN pixels)
    return flags


def read_band_flags(dataset: xr.Dataset, store: object = None) -> dict[str, np.ndarray]:
    """Every band's ingest flags, band name -> int32 shape (n,), in the store's band order.

    As :func:`read_flags` does for the object, a band whose shard file is missing (given ``store``,
    its path) is UNREADABLE where it had pixels (:func:`lost_pixel_rows`). NO_COORDINATES is left out:
    the sky position is the object's (``flags``), and ingest keeps it on the first band it searched
    only (review: a VIS file without a WCS was flagged in its column, an H file not).

    Raises
    ------
    StoreError
        Where a chunk of ``band_flags`` cannot be decoded.
    """
    band_flags = np.array(read_column(dataset, BAND_FLAGS, store=store), dtype=np.int32)
    band_flags &= ~np.int32(Flag.NO_COORDINATES)
    a = dataset.attrs
    bands = list(a["bands"])
    if store is not None:
        lost = lost_pixel_rows(store, a["groups"], bands, a["chunk_objects"], band_flags)
        for group, rows in lost.items():
            for band in a["groups"][group]:
                band_flags[rows, bands.index(band)] |= int(Flag.UNREADABLE)
    return {band: band_flags[:, index] for index, band in enumerate(bands)}


def lost_pixel_rows(
    path: str | os.PathLike[str],
    groups: Mapping[str, Sequence[str]],
    bands: Sequence[str],
    chunk_objects: int,
    band_flags: np.ndarray,
    rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Objects whose pixels of a group are gone with a missing shard file, per group: bool, shape (n,).

    A shard holds ``chunk_objects`` objects of one group (file ``GROUP/c/K/0/0/0``, Zarr v3's
    default chunk keys); ingest writes one wherever a band of one of its objects had pixels, so an
    object whose bands of the group had pixels and whose shard file is missing lost them (Zarr
    reads it as NaN, the fill value). Only whole shard files are checked (a stat per shard touched),
    not the inner chunks inside them.

    Parameters
    ----------
    path : the store
    groups : group -> its bands
    bands : every band, in the order of ``band_flags``' columns
    chunk_objects : objects per shard
    band_flags : ndarray of int, shape (n, n_bands)
        The band flags of ``rows``.
    rows : ndarray of int, shape (n,), optional
        The store rows ``band_flags`` belongs to (default: rows 0 to n - 1).
    """
    bands = list(bands)
    rows = np.arange(len(band_flags)) if rows is None else np.asarray(rows, dtype=np.int64)
    shard_of_row = rows // chunk_objects
    lost: dict[str, np.ndarray] = {}
    for name, names in groups.items():
        had_pixels = ((band_flags[:, [bands.index(band) for band in names]] & int(UNUSABLE)) == 0).any(axis=1)
        shards = np.unique(shard_of_row[had_pixels])
        missing = [int(k) for k in shards if not (Path(path) / name / "c" / str(k) / "0/0/0").exists()]
        lost[name] = had_pixels & np.isin(shard_of_row, missing)
    return lost


def read_object_columns(dataset: xr.Dataset, store: object) -> dict[str, np.ndarray]:
    """Every :data:`OBJECT_COLUMNS` of ``dataset`` (the store at ``store``) as NumPy, shape (n,).

    ``flags`` includes every band's flags (:func:`read_flags`), ``NO_COORDINATES`` wherever ``ra``
    or ``dec`` is NaN (ingest sets it there; a missing chunk file of ``ra`` reads as NaN) and
    UNREADABLE where a missing image shard file lost an object's pixels (:func:`lost_pixel_rows`).

    Raises
    ------
    StoreError
        A chunk that cannot be read (:func:`~pipeline.store.zarr_store.read_column`), or rows without
        an object id (-1: a chunk file of ``object_id`` is missing), naming the first rows.
    """
    columns = {name: read_column(dataset, name, store=store) for name in OBJECT_COLUMNS if name != "flags"}
    columns["flags"] = read_flags(dataset, store=store)
    no_position = np.isnan(columns["ra"]) | np.isnan(columns["dec"])
    columns["flags"][no_position] |= int(Flag.NO_COORDINATES)  # new-user trial: NaN ra with flags 0
    missing = np.flatnonzero(columns["object_id"] < 0)
    if missing.size:
        raise StoreError(
            f"{store}: {missing.size} rows have no object id (rows {missing[:5].tolist()}...): a chunk file "
            "of object_id is missing; ingest the cutouts into a new store"
        )
    return columns
