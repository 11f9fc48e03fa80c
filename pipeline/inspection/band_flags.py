"""Each band's ingest flags of the grading page's candidates: the catalog's ``flags_<band>`` columns,
or the store's flags for a run scored before its catalog had them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from schemas.catalog import band_flags_column

__all__ = ["band_flag_columns", "store_band_flags", "with_attrs", "with_band_flags"]


def band_flag_columns(catalog: pd.DataFrame, bands: list[str]) -> dict[str, str]:
    """Band -> name of its per-band flags column (``flags_<band>``), for each of ``bands`` (in their
    order) that ``catalog`` has one for; empty for a catalog written before these columns existed.

    Parameters
    ----------
    catalog : pandas.DataFrame
        The run's catalog.
    bands : list of str
        The store's band names, in its order.

    Returns
    -------
    dict of str to str
        Band name -> column name.

    Examples
    --------
    >>> band_flag_columns(pd.DataFrame(columns=["flags", "flags_VIS", "flags_H"]), ["VIS", "Y", "H"])
    {'VIS': 'flags_VIS', 'H': 'flags_H'}
    """
    names = {band: band_flags_column(band).name for band in bands}
    return {band: name for band, name in names.items() if name in catalog.columns}


def with_attrs(table: pd.DataFrame, attrs: dict) -> pd.DataFrame:
    """``table`` with ``attrs`` (the catalog's layout, which a join drops)."""
    table.attrs = dict(attrs)
    return table


def store_band_flags(store: Path) -> pd.DataFrame:
    """Each band's ingest flags in the store, as the ``flags_<band>`` columns of a score run's catalog.

    For a run scored before its catalog had them (2026-12-02): the page still shows which band of a
    candidate is flagged. Indexed by object id (rows with a lost id, or one seen twice, left out).

    Returns
    -------
    pandas.DataFrame
        One int32 column ``flags_<band>`` per band, in the store's order (:func:`read_band_flags`).
    """
    from pipeline.store import open_store
    from pipeline.store.columns import read_band_flags
    from pipeline.store.zarr_store import read_column

    dataset = open_store(store, chunks=None)
    per_band = read_band_flags(dataset, store)
    frame = pd.DataFrame(
        {band_flags_column(band).name: values for band, values in per_band.items()},
        index=pd.Index(read_column(dataset, "object_id"), name="object_id"),
    )
    return frame[(frame.index >= 0) & ~frame.index.duplicated(keep=False)]


def with_band_flags(catalog: pd.DataFrame, store: Path, bands: list[str]) -> pd.DataFrame:
    """``catalog`` with the store's ``flags_<band>`` columns where it has none of ``bands``' (scored
    before it had them: review), else as it is."""
    if band_flag_columns(catalog, bands):
        return catalog
    return with_attrs(catalog.join(store_band_flags(store), on="object_id"), catalog.attrs)
