"""Read a manifest's objects into store rows (no writing), and the file facts kept about them.

Shared by the ingest of new objects and the re-read of stored objects whose files changed.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from functools import partial

import numpy as np
import xarray as xr

from pipeline.flags import ORIENTATION_TOLERANCE_DEG, POSITION_TOLERANCE_ARCSEC, Flag, describe
from pipeline.sources.discovery import Manifest
from pipeline.sources.duplicate_files import read_first_usable
from pipeline.sources.fits_io import read_band
from pipeline.sources.headers import MAX_CARDS
from pipeline.sources.orientation import orientation_mismatch
from pipeline.store.header_columns import (
    NOT_SQUARE_REASON,
    HeaderColumns,
    not_square,
    scale_off,
    stored_card_room,
)
from pipeline.store.ingest_report import ReasonTally
from pipeline.store.zarr_store import empty_dataset
from schemas.layout import Layout

_NOT_NO_COORDINATES, _DUPLICATE_ID = ~int(Flag.NO_COORDINATES), int(Flag.DUPLICATE_ID)
_BAD_WCS = int(Flag.BAD_WCS)
_NO_HEADER = int(Flag.UNREADABLE | Flag.TRUNCATED)
INGEST_FLAGS = 0xFFFF
PASSED_OVER_REASON = "preferred file unreadable, truncated or of another shape: its duplicate read"
"""The ingest reason of a DUPLICATE_ID band read from a file other than discovery's first."""
"""Bits set at ingest (bits 0-15): an object with one of them may be fixed by a new file."""


def read_objects(
    layout: Layout, manifest: Manifest, labels: np.ndarray, store: str | os.PathLike[str] | None = None
) -> tuple[xr.Dataset, ReasonTally]:
    """Read every band of the manifest's objects into a store-schema dataset (no writing), with the
    header cards per band that ``store`` holds (:func:`~pipeline.store.header_columns.stored_card_room`;
    no store: a new store's).

    Returns the dataset and each problem's objects (``"<band>: <reason>"``: their count, the first ids).
    """
    n = len(manifest)
    # Filled in place; the slots of bands without an image are set to NaN at the end (a NaN fill
    # of every pixel first cost as much as reading the headers).
    images = {
        group: np.empty((n, len(bands), *layout.group_shape(group)), dtype=np.float32)
        for group, bands in layout.groups.items()
    }
    empty_slots: list[tuple[str, int, int]] = []
    band_flags = np.zeros((n, len(layout.bands)), dtype=np.int32)
    room = stored_card_room(store) if store is not None else MAX_CARDS
    headers = HeaderColumns.empty(n, len(layout.bands), room)
    reasons = ReasonTally()
    position_problems: list[str | None] = [None] * n
    card_problems: list[tuple[int, int, str]] = []  # (row, band index, which position cards are unusable)
    band_ra, band_dec = np.full((n, len(layout.bands)), np.nan), np.full((n, len(layout.bands)), np.nan)
    # per file: plain Python floats and ints (numpy scalars and Flag operations cost microseconds each)
    first_ra, first_dec = [math.nan] * n, [math.nan] * n
    object_ids = manifest.object_ids.tolist()
    for band_index, band in enumerate(layout.bands):
        hdu = layout.band_hdu(band.name)
        group_images = images[band.group]
        slot = layout.groups[band.group].index(band.name)
        for row, path in enumerate(manifest.paths[band.name]):
            searching = math.isnan(first_ra[row])  # the first band with a position gives it
            read = partial(  # the other bands' positions: a check, from cards only (review: cost)
                read_band,
                expected_shape=band.shape,
                masked_value=layout.masked_value,
                coordinates=layout.coordinates,
                position=True if searching else "cheap",
                hdu=hdu,
                wcs_position=layout.wcs_position,
            )
            others = manifest.duplicates.get((object_ids[row], band.name)) if manifest.duplicates else None
            if others:  # the next duplicate when the preferred file is broken (trial: a truncated .fits)
                chosen = read_first_usable([path, *others], read)
                result = chosen.result
                reasons.add(f"{band.name}: duplicate id", [object_ids[row]])
                if chosen.passed_over:
                    reasons.add(f"{band.name}: {PASSED_OVER_REASON}", [object_ids[row]])
            else:
                result = read(path)
            flags = int(result.flags) if searching else int(result.flags) & _NOT_NO_COORDINATES
            band_ra[row, band_index], band_dec[row, band_index] = result.ra_deg, result.dec_deg
            if others:
                flags |= _DUPLICATE_ID
            band_flags[row, band_index] = flags
            if result.image is not None:
                group_images[row, slot] = result.image
                left_out = headers.put(row, band_index, band.name, result.header)
                if left_out:  # trial: SIP terms crowded out BUNIT, MAGZP, RADESYS, ... without a word
                    reasons.add(f"{band.name}: {left_out}", [object_ids[row]])
            else:
                empty_slots.append((band.group, row, slot))
            if result.reason:
                reasons.add(f"{band.name}: {result.reason}", [object_ids[row]])
            for reason in result.extra_reasons:
                if reason:
                    reasons.add(f"{band.name}: {reason}", [object_ids[row]])
            if searching and not math.isnan(result.ra_deg):
                first_ra[row], first_dec[row] = result.ra_deg, result.dec_deg
            elif result.position_problem and not position_problems[row]:
                position_problems[row] = result.position_problem
            if result.card_problem:
                card_problems.append((row, band_index, result.card_problem))
    ra, dec = np.asarray(first_ra, dtype=np.float64), np.asarray(first_dec, dtype=np.float64)
    for group, row, slot in empty_slots:
        images[group][row, slot] = np.nan
    ids = manifest.object_ids
    _flag_position_mismatch(layout, band_ra, band_dec, ra, dec, band_flags, reasons, ids)
    for row, band_index, problem in card_problems:  # without a position, "no sky position" says why
        if not math.isnan(ra[row]):
            reasons.add(f"{layout.bands[band_index].name}: {problem}, {CARDS_NOT_USED}", [ids[row]])
    off_scale = scale_off(headers.pixel_scale, layout)
    oblong = not_square(headers.pixel_aspect)
    band_flags[off_scale | oblong] |= Flag.PIXEL_SCALE_MISMATCH
    for band_index, band in enumerate(layout.bands):
        for off, why in (
            (off_scale, "WCS pixel scale over 5 percent from the layout's pixel_scale_arcsec"),
            (oblong, NOT_SQUARE_REASON),
        ):
            if off[:, band_index].any():
                reasons.add(f"{band.name}: {why}", ids[off[:, band_index]])
    _flag_orientation_mismatch(layout, headers, band_flags, reasons, ids)
    dataset = empty_dataset(layout, n, images)
    flags = np.bitwise_or.reduce(band_flags, axis=1).astype(np.int32)
    # A sky position from any band is the object's position.
    flags[~np.isnan(ra)] &= ~np.int32(Flag.NO_COORDINATES)
    for row in np.flatnonzero(np.isnan(ra)):
        flags[row] |= Flag.NO_COORDINATES
        why = position_problems[row] or _no_header(layout, band_flags[row])
        reasons.add(f"no sky position: {why}", [ids[row]])
    dataset = dataset.assign_coords(
        object_id=("object", manifest.object_ids.astype(np.int64)),
        ra=("object", ra),
        dec=("object", dec),
        flags=("object", flags),
        band_flags=(("object", "band"), band_flags),
        label=("object", np.asarray(labels, dtype=np.int8)),
    )
    return headers.assign(dataset), reasons


def _no_header(layout: Layout, flags: np.ndarray) -> str:
    """Why an object none of whose band files gave a position problem has no position: no file, or
    files whose header could not be read (trial: a header-only file was called "no band file with a
    header"; a file cut in its data has its header read, and a position or a problem of its own).

    >>> from schemas.layout import load_layout
    >>> layout = load_layout("euclid-sglc2")
    >>> _no_header(layout, np.array([Flag.TRUNCATED, Flag.UNREADABLE, Flag.MISSING_FILE, Flag.MISSING_FILE]))
    'no band file whose image header was read (VIS TRUNCATED, Y UNREADABLE)'
    """
    broken = [
        f"{band.name} {'/'.join(describe(int(flag) & _NO_HEADER)) or 'unread'}"
        for band, flag in zip(layout.bands, flags)
        if not flag & Flag.MISSING_FILE
    ]
    if not broken:
        return "no band file"
    return f"no band file whose image header was read ({', '.join(broken)})"


def _flag_position_mismatch(layout, band_ra, band_dec, ra, dec, band_flags, reasons, ids) -> None:  # type: ignore[no-untyped-def]
    """Set the object's position to the one most of its bands agree on and flag the others, in place.

    ``band_ra``/``band_dec`` (n, n_bands) deg are each band's position (NaN: none), ``ra``/``dec``
    (n,) the first band's, ``ids`` (n,) the objects'. The reference is the band with the most bands within
    POSITION_TOLERANCE_ARCSEC of it (the first such band on a tie, so the first band's position
    when all agree); bands farther from it are flagged POSITION_MISMATCH (new-user trial: another
    object's VIS file gave the object its position, unflagged; review: with three or more bands, the
    odd one out is the one to flag).
    """
    from astropy.coordinates import angular_separation

    lon, lat = np.radians(band_ra), np.radians(band_dec)
    with np.errstate(invalid="ignore"):
        pairs = angular_separation(lon[:, :, None], lat[:, :, None], lon[:, None, :], lat[:, None, :])
        separation = np.degrees(pairs) * 3600.0  # (n, n_bands, n_bands) arcsec
    near = separation <= POSITION_TOLERANCE_ARCSEC  # NaN (no position): False
    reference = np.argmax(near.sum(axis=2), axis=1)  # the first of the most agreed-with bands
    rows = np.arange(band_ra.shape[0])
    has = np.isfinite(band_ra[rows, reference])
    ra[has], dec[has] = band_ra[rows, reference][has], band_dec[rows, reference][has]
    far = np.isfinite(separation[rows, reference]) & ~near[rows, reference]  # (n, n_bands)
    why = f"sky position over {POSITION_TOLERANCE_ARCSEC:g} arcsec from the object's (another's file?)"
    for band_index, band in enumerate(layout.bands):
        flagged = np.flatnonzero(far[:, band_index])
        band_flags[flagged, band_index] |= Flag.POSITION_MISMATCH
        if flagged.size:
            reasons.add(f"{band.name}: {why}", ids[flagged])


CARDS_NOT_USED = "not used for the object's position (its other cards, bands or WCS gave it)"
"""Said after a band's unusable position cards where the object has a position (trial: a band's
``RA = 'garbage'`` or ``DEC = 95`` went unsaid where another band gave the position)."""

MIRRORED_REASON = "WCS pixel grid mirrored against the object's other bands' (stacked flipped)"
TURNED_REASON = (
    f"WCS pixel grid rotated over {ORIENTATION_TOLERANCE_DEG:g} degree from the object's other bands' "
    "(stacked misaligned)"
)
"""The ingest reasons of a band flagged ORIENTATION_MISMATCH (``"BAND: <reason>"``)."""


def _flag_orientation_mismatch(layout, headers: HeaderColumns, band_flags, reasons, ids) -> None:  # type: ignore[no-untyped-def]
    """Flag ORIENTATION_MISMATCH, in place, the bands whose pixel grid lies otherwise than the object's
    (:func:`pipeline.sources.orientation.orientation_mismatch`; before, a band whose CD matrix was
    turned by 90 degrees, or whose CDELT1 had the other sign, was stacked with the others unflagged).
    A band with an unusable WCS (BAD_WCS) has no known orientation."""
    parity = np.where(band_flags & _BAD_WCS, 0, headers.parity)
    for off, why in zip(orientation_mismatch(headers.rotation, parity), (MIRRORED_REASON, TURNED_REASON)):
        band_flags[off] |= Flag.ORIENTATION_MISMATCH
        for band_index, band in enumerate(layout.bands):
            if off[:, band_index].any():
                reasons.add(f"{band.name}: {why}", ids[off[:, band_index]])


def flag_counts(flags: np.ndarray) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for value, n in zip(*np.unique(flags, return_counts=True)):
        for name in describe(int(value)):
            counts[name] += int(n)
    return dict(counts)
