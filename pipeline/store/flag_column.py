"""An object's flags as read from a store: its ``flags`` with every band's ``band_flags`` OR-ed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.flags import object_flags
from pipeline.store.zarr_store import read_column
from schemas.store import BAND_FLAGS

if TYPE_CHECKING:
    import xarray as xr


def read_flags(
    dataset: xr.Dataset, rows: slice | np.ndarray = slice(None), store: object = None
) -> np.ndarray:
    """The flags of ``rows`` (along the object axis) of a store's dataset, int32 shape (n,).

    Every reader that decides which objects are usable reads them here (or through
    :func:`~pipeline.store.zarr_store.read_object_columns`, which does the same), so that a store
    whose ``band_flags`` chunk file is missing (read as UNREADABLE bands) has those objects unusable
    everywhere, not only where ``flags`` says so (:func:`pipeline.flags.object_flags`).

    Raises
    ------
    StoreError
        Where a chunk of either column cannot be decoded, naming the column (and ``store`` if given).
    """
    return object_flags(
        read_column(dataset, "flags", rows, store=store), read_column(dataset, BAND_FLAGS, rows, store=store)
    )
