"""The store's per (object, band) header columns: kept cards, zero points, pixel scales, units.

:class:`HeaderColumns` gathers what :func:`pipeline.sources.headers.summarise_header` kept for each
band read at ingest and assigns it to a store-schema dataset; :func:`band_units_in` finds the
``BUNIT`` values of a region, and :func:`record_band_units` keeps them in the store attributes
(``band_units``), from where :func:`pipeline.store.zarr_store.open_store` puts them on the image
variables. A store holds a fixed number of cards per band (:func:`stored_card_room`: 256 in a store
made today, 64 in one made before 2026-12-06); :meth:`HeaderColumns.put` chooses among the cards
of a header with more (:func:`pipeline.sources.card_choice.choose_cards`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.flags import PIXEL_SCALE_TOLERANCE
from pipeline.sources.card_choice import choose_cards
from pipeline.sources.headers import CARD_LENGTH, MAX_CARDS, HeaderSummary
from schemas.store import BAND_DIM, HEADER_CARDS, HEADER_DIM, NO_FILE_READ, OBJECT_DIM

_BUNIT = b"BUNIT   ="


@dataclass
class HeaderColumns:
    """Header columns of ``n`` objects and ``n_bands`` bands, filled band by band."""

    cards: np.ndarray  # (n, n_bands, room * CARD_LENGTH) uint8
    zero_point: np.ndarray  # (n, n_bands) float32, mag
    pixel_scale: np.ndarray  # (n, n_bands) float32, arcsec
    pixel_aspect: np.ndarray  # (n, n_bands) float32, HeaderSummary.pixel_aspect; not stored
    rotation: np.ndarray  # (n, n_bands) float64, deg, HeaderSummary.rotation_deg; not stored
    parity: np.ndarray  # (n, n_bands) int8, HeaderSummary.parity (0: unknown); not stored

    @classmethod
    def empty(cls, n: int, n_bands: int, room: int = MAX_CARDS) -> HeaderColumns:
        """Blank columns holding ``room`` cards per band (the store's: :func:`stored_card_room`)."""
        return cls(
            np.zeros((n, n_bands, room * CARD_LENGTH), dtype=np.uint8),
            np.full((n, n_bands), np.nan, dtype=np.float32),
            np.full((n, n_bands), np.nan, dtype=np.float32),
            np.full((n, n_bands), np.nan, dtype=np.float32),
            np.full((n, n_bands), np.nan, dtype=np.float64),
            np.zeros((n, n_bands), dtype=np.int8),
        )

    def put(self, row: int, band_index: int, band: str, summary: HeaderSummary | None) -> str | None:
        """Keep ``summary`` for band ``band_index`` of ``row``; what was left out when its cards do not
        all fit (an ingest reason), else None."""
        if summary is None:
            return None
        cards, note = choose_cards(summary.cards, self.cards.shape[-1] // CARD_LENGTH)
        raw = np.frombuffer(cards, dtype=np.uint8)
        self.cards[row, band_index, : raw.size] = raw
        self.zero_point[row, band_index] = summary.zero_point
        self.pixel_scale[row, band_index] = summary.pixel_scale_arcsec
        self.pixel_aspect[row, band_index] = summary.pixel_aspect
        self.rotation[row, band_index] = summary.rotation_deg
        self.parity[row, band_index] = summary.parity
        return note

    def assign(self, dataset: xr.Dataset) -> xr.Dataset:
        """``dataset`` with these columns in place of its blank ones (same attributes)."""
        attrs = dataset[HEADER_CARDS].attrs  # of the store's room (a blank of today's is replaced)
        dataset = dataset.drop_vars(HEADER_CARDS)
        dataset[HEADER_CARDS] = xr.Variable((OBJECT_DIM, BAND_DIM, HEADER_DIM), self.cards, attrs)
        return dataset.assign_coords(
            band_zero_point=xr.Variable(
                (OBJECT_DIM, BAND_DIM), self.zero_point, dataset["band_zero_point"].attrs
            ),
            band_pixel_scale=xr.Variable(
                (OBJECT_DIM, BAND_DIM), self.pixel_scale, dataset["band_pixel_scale"].attrs
            ),
        )


def band_units_in(cards: np.ndarray, bands: list[str]) -> dict[str, list[str]]:
    """Distinct ``BUNIT`` values per band in header cards of shape (n, n_bands, cards * 80).

    Objects whose kept cards have no ``BUNIT`` count as ``""``; objects without cards (no image)
    are left out.
    """
    n, n_bands, _ = cards.shape
    as_cards = cards.reshape(n, n_bands, -1, CARD_LENGTH)
    has_cards = as_cards[:, :, 0, 0] != 0
    starts = as_cards[:, :, :, : len(_BUNIT)]
    is_bunit = (starts == np.frombuffer(_BUNIT, dtype=np.uint8)).all(axis=-1)  # (n, n_bands, cards)
    found: dict[str, set[str]] = {band: set() for band in bands}
    for band_index, band in enumerate(bands):
        rows, slots = np.nonzero(is_bunit[:, band_index])
        for row, slot in zip(rows, slots):
            found[band].add(_card_value(bytes(as_cards[row, band_index, slot])))
        without = has_cards[:, band_index] & ~is_bunit[:, band_index].any(axis=-1)
        if without.any():
            found[band].add("")
    return {band: sorted(values) for band, values in found.items() if values}


@functools.lru_cache(maxsize=1024)
def _card_value(card: bytes) -> str:
    """The value of a BUNIT card (cached: a set repeats a few distinct cards thousands of times)."""
    from astropy.io import fits

    return str(fits.Card.fromstring(card.decode("ascii", errors="replace")).value).strip()


def stored_card_room(store: str | os.PathLike[str]) -> int:
    """Cards per band the store's ``header_cards`` hold (its last dimension over 80); today's
    :data:`~pipeline.sources.headers.MAX_CARDS` when the store has none yet."""
    import zarr

    try:
        return int(zarr.open_array(Path(store) / HEADER_CARDS, mode="r").shape[-1]) // CARD_LENGTH
    except FileNotFoundError:  # no store yet (a read for a new one)
        return MAX_CARDS


def merge_band_units(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, list[str]]:
    """Union of two band -> units maps."""
    return {band: sorted(set(a.get(band, [])) | set(b.get(band, []))) for band in sorted({*a, *b})}


def describe_units(values: list[str]) -> str:
    """One string for a band's units: the unit, '' when unknown, 'mixed: a, b' when they differ,
    :data:`NO_FILE_READ` when there are none (no file of the band read).

    >>> describe_units(["e-/s"]), describe_units([""]), describe_units(["", "adu"]), describe_units([])
    ('e-/s', '', 'mixed: adu, (none)', '(no file read)')
    """
    named = [v for v in values if v]
    if not values:
        return NO_FILE_READ
    if len(values) == 1:
        return values[0]
    return "mixed: " + ", ".join(named + (["(none)"] if "" in values else []))


def record_band_units(store: str | os.PathLike[str], seen: dict[str, list[str]]) -> None:
    """Merge the units seen by an ingest into the store's ``band_units`` attribute.

    Every band of the store's layout is in it: a band no ingest read a file of has
    :data:`NO_FILE_READ` (trial: it was left out, while the images' ``band_units`` named it), which a
    later ingest that reads one replaces.
    """
    from pipeline.store.zarr_store import read_attributes, update_attributes

    attributes = read_attributes(Path(store))
    current = attributes.band_units
    merged: dict[str, list[str]] = {}
    for band in [*attributes.bands, *sorted({*current, *seen} - set(attributes.bands))]:
        values = set(seen.get(band, []))
        old = current.get(band, NO_FILE_READ)
        if old != NO_FILE_READ:
            values |= set(old.removeprefix("mixed: ").split(", ")) if old.startswith("mixed: ") else {old}
        merged[band] = sorted(v.replace("(none)", "") for v in values)
    described = {band: describe_units(v) for band, v in merged.items()}
    if described != current:
        update_attributes(store, {"band_units": described})


def pixel_scale_mismatch(scales: np.ndarray, layout) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """Band -> [objects whose header pixel scale differs from the layout's (:func:`scale_off`), the
    sum of their scales (arcsec), the layout's scale] (bands with none left out). ``scales`` is
    (n, n_bands) arcsec in the order of ``layout.bands``, NaN where a header gives none (new-user
    trial: a layout saying 0.2"/px for 0.1"/px files was scored at the wrong scale without a word)."""
    found: dict[str, list] = {}
    off = scale_off(scales, layout)
    for column, band_spec in enumerate(layout.bands):
        values = scales[off[:, column], column]
        if values.size:
            expected = float(band_spec.pixel_scale_arcsec)
            found[band_spec.name] = [int(values.size), float(values.sum()), expected]
    return found


def scale_off(scales: np.ndarray, layout) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Boolean (n, n_bands): the header pixel scale (``scales``, arcsec, NaN where none) differs from
    the layout's band's by more than :data:`pipeline.flags.PIXEL_SCALE_TOLERANCE` (relative)."""
    expected = np.array([band.pixel_scale_arcsec for band in layout.bands], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(scales) & (np.abs(scales / expected - 1) > PIXEL_SCALE_TOLERANCE)


NOT_SQUARE_REASON = "WCS pixels not square (sides over 5 percent apart; the layout's are square)"
"""The ingest reason of a band whose pixels :func:`not_square` finds (``"BAND: <reason>"``)."""


def not_square_lines(reasons: dict[str, int]) -> list[str]:
    """Ingest report lines advising on the bands with pixels that are not square, from the reasons."""
    return [
        f"{key.split(':')[0]}: {n} object(s)' files have pixels that are not square: models (and the "
        "asymmetry channels, the polar view) see them stretched; resample them to square pixels first"
        for key, n in sorted(reasons.items())
        if key.endswith(f": {NOT_SQUARE_REASON}")
    ]


def left_out_lines(reasons: dict[str, int]) -> list[str]:
    """Ingest report warnings on the bands whose header cards did not all fit the store (the reasons
    of :meth:`HeaderColumns.put`): said whether or not the objects are flagged, whose reasons alone
    the report lists (trial: SIP terms crowded out BUNIT, MAGZP, RADESYS, ... without a word)."""
    by_band: dict[str, list] = {}
    for key, n in sorted(reasons.items()):
        band, _, reason = key.partition(": ")
        if reason.startswith("header cards over the store's"):
            count = by_band.setdefault(band, [0, 0, reason])
            count[0] += n
            count[1] += n * ("distortion" in reason)
    lines = []
    for band, (n, distorted, example) in by_band.items():
        newer = "" if f"store's {MAX_CARDS} " in example else f" (a store made today holds {MAX_CARDS})"
        lines.append(
            f"{band}: {n} object(s)' kept header cards did not all fit the store{newer}"
            + (f", {distorted} of them losing their distortion whole" if distorted else "")
            + f"; e.g. {example}"
        )
    return lines


def not_square(aspects: np.ndarray) -> np.ndarray:
    """Boolean, ``aspects``' shape: WCS pixels whose sides differ by more than
    :data:`pipeline.flags.PIXEL_SCALE_TOLERANCE` (relative; NaN, unknown: False). The layout gives one
    square pixel scale, so one side of such a pixel is off it however its area matches (review: a
    0.07" x 0.14" pixel passed as 0.1")."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(aspects) & (aspects > 1 + PIXEL_SCALE_TOLERANCE)


def merge_scale_mismatch(a: dict[str, list], b: dict[str, list]) -> dict[str, list]:
    """The sum of two :func:`pixel_scale_mismatch` results."""
    merged = {band: list(value) for band, value in a.items()}
    for band, (n, total, expected) in b.items():
        before = merged.get(band, [0, 0.0, expected])
        merged[band] = [before[0] + n, before[1] + total, expected]
    return merged


def scale_lines(mismatch: dict[str, list]) -> list[str]:
    """Ingest report lines for :func:`pixel_scale_mismatch` results."""
    return [
        f"{band}: {n} object(s)' files have a WCS pixel scale of {total / n:.3g}\"/px on average, the layout "
        f"says {expected:.3g}\"/px: check the layout's pixel_scale_arcsec (models see the sky at its scale)"
        for band, (n, total, expected) in sorted(mismatch.items())
    ]
