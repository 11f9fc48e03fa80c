"""What an ingest remembers of a band's duplicate files: one number per object and band.

A band with several files of one id (DUPLICATE_ID, :mod:`pipeline.sources.duplicate_files`) takes
its pixels from the preferred file or, where that one is broken, from the next readable duplicate;
so every one of those files decides the band. Beside the preferred file's size and modification
time (:class:`pipeline.store.file_records.FileTable`), a file table holds for each band with
duplicates a *signature*: a hash of the names, sizes and modification times of the other files,
in discovery's order. A duplicate that appears, goes, or is replaced changes the signature, and the
next ingest reads the object again. Trial: a corrected ``.fits.gz`` beside a still-broken ``.fits``
was not read until the ``.fits`` changed, and a duplicate read in place of a broken ``.fits`` could
be replaced unnoticed.

Only the files of bands with duplicates are looked at (no more ``os.stat`` calls for the others),
and the tables keep the signatures of those bands only (:func:`packed`). File names, not paths, are
hashed: a source moved elsewhere (``--source-moved``) keeps them.

Tables saved before signatures existed hold none: their bands read as :data:`NOT_RECORDED`, and an
object with a duplicate now whose record is such is read again once (:func:`duplicates_differ`),
as what decided its pixels is unknown; objects without duplicates are compared as before.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

NO_DUPLICATES = 0
"""Signature of a band without duplicates (or without files)."""
NOT_RECORDED = -2
"""Signature of a band in a table saved before signatures were kept (unknown)."""
_RESERVED = (NO_DUPLICATES, NOT_RECORDED, -1)


def signature(files: Sequence[str]) -> int:
    """The signature of a band's duplicate ``files`` (discovery's order) as they are now.

    A file that cannot be looked at (gone meanwhile) counts as such, not as an error.
    """
    parts = []
    for path in files:
        name = Path(path).name
        try:
            stat = os.stat(path)
        except OSError:
            parts.append(f"{name}\0-")
            continue
        parts.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
    digest = hashlib.blake2b("\n".join(parts).encode("utf-8", "surrogateescape"), digest_size=8).digest()
    value = int.from_bytes(digest, "little", signed=True)
    return 1 if value in _RESERVED else value


def duplicate_signatures(
    object_ids: np.ndarray, bands: tuple[str, ...], duplicates: Mapping[tuple[int, str], Sequence[str]]
) -> np.ndarray:
    """(n, n_bands) int64: the :func:`signature` of each object's band with duplicates, else
    :data:`NO_DUPLICATES`; ``duplicates`` as :attr:`pipeline.sources.discovery.Manifest.duplicates`."""
    signatures = np.full((object_ids.size, len(bands)), NO_DUPLICATES, np.int64)
    if not duplicates:
        return signatures
    row_of = {int(object_id): row for row, object_id in enumerate(object_ids)}
    for (object_id, band), others in duplicates.items():
        row = row_of.get(int(object_id))
        if row is not None and band in bands and others:
            signatures[row, bands.index(band)] = signature(others)
    return signatures


def packed(signatures: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays saved in a file table for ``signatures``: the bands with duplicates only."""
    rows, columns = np.nonzero(signatures != NO_DUPLICATES)
    return {
        "duplicate_row": rows.astype(np.int64),
        "duplicate_band": columns.astype(np.int64),
        "duplicate_signature": signatures[rows, columns].astype(np.int64),
    }


def unpacked(saved: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The signatures of a saved table of ``shape`` (its objects, its bands): :data:`NOT_RECORDED`
    throughout for a table saved before signatures were kept."""
    if "duplicate_signature" not in saved:
        return np.full(shape, NOT_RECORDED, np.int64)
    signatures = np.full(shape, NO_DUPLICATES, np.int64)
    signatures[saved["duplicate_row"], saved["duplicate_band"]] = saved["duplicate_signature"]
    return signatures


def duplicates_differ(recorded: np.ndarray, now: np.ndarray) -> np.ndarray:
    """Where a band's duplicates differ from those recorded: appeared, went, or were replaced; and
    where some are there now but the record has no signatures (:data:`NOT_RECORDED`, an older table).

    >>> duplicates_differ(np.array([[0, 5, 5, NOT_RECORDED, NOT_RECORDED]]), np.array([[7, 0, 5, 0, 9]]))
    array([[ True,  True, False, False,  True]])
    """
    return np.where(recorded == NOT_RECORDED, now != NO_DUPLICATES, now != recorded)
