"""Write one object of a store back out as per-band FITS files (``lenshunt cutout``).

Each file holds the band's pixels as stored (float32; pixels that were masked or non-finite in the
input are NaN) and the input header's kept cards (WCS, ``BUNIT``, calibration; see
:mod:`pipeline.sources.headers`), so DS9, Aladin, astropy or a lens-modelling code see the
input's WCS. A few ``LH*`` cards say where the file came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import __version__
from pipeline.errors import StoreError
from pipeline.flags import describe
from pipeline.sources.headers import cards_to_text
from schemas.store import HEADER_CARDS


@dataclass
class CutoutFiles:
    """What :func:`write_cutouts` wrote: band -> file, and band -> why no file."""

    object_id: int
    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def write_cutouts(
    store: str | os.PathLike[str],
    object_id: int,
    out_dir: str | os.PathLike[str],
    *,
    bands: list[str] | None = None,
    overwrite: bool = False,
) -> CutoutFiles:
    """Write ``<out_dir>/<object_id>_<band>.fits`` for each band of ``object_id`` in ``store``.

    Parameters
    ----------
    bands
        Bands to write (default: all of the layout's).
    overwrite
        Replace existing files; otherwise an existing file is an error.

    Raises
    ------
    StoreError
        If the object is not in the store, a band is unknown, or a file exists.
    """
    from astropy.io import fits

    from pipeline.store.zarr_store import open_store, read_attributes

    attributes = read_attributes(store)
    dataset = open_store(store, chunks=None)
    rows = np.flatnonzero(dataset["object_id"].values == int(object_id))
    if rows.size == 0:
        raise StoreError(f"object {object_id} is not in {store}; `lenshunt info {store}` shows what it holds")
    row = int(rows[0])
    all_bands = list(attributes.bands)
    unknown = sorted(set(bands or []) - set(all_bands))
    if unknown:
        raise StoreError(f"unknown band(s) {unknown}; the store's bands are {all_bands}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = CutoutFiles(int(object_id))
    cards = dataset[HEADER_CARDS][row].values  # (band, byte)
    band_flags = dataset["band_flags"][row].values
    for group, group_bands in attributes.groups.items():
        pixels = dataset[group][row].values  # (band, y, x)
        for slot, band in enumerate(group_bands):
            if bands and band not in bands:
                continue
            index = all_bands.index(band)
            flags = int(band_flags[index])
            text = cards_to_text(cards[index])
            if not text:
                result.skipped[band] = "no pixels in the store: " + (", ".join(describe(flags)) or "empty")
                continue
            header = fits.Header.fromstring(text)
            header["OBJECT"] = (str(object_id), "lenshunt object id")
            header["LHBAND"] = (band, "lenshunt band name")
            header["LHFLAGS"] = (flags, (",".join(describe(flags)) or "no flags")[:46])
            header["LHSTORE"] = str(Path(store).resolve())[-68:]
            header["ORIGIN"] = (f"lenshunt {__version__}", "written by lenshunt cutout")
            path = out_dir / f"{object_id}_{band}.fits"
            if path.exists() and not overwrite:
                raise StoreError(f"{path} exists; pass --overwrite or another --out")
            image = np.asarray(pixels[slot], dtype=np.float32)
            fits.PrimaryHDU(image, header=header).writeto(path, overwrite=overwrite, output_verify="fix")
            result.files[band] = path
    return result
