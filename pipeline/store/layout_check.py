"""Whether a layout given to an ingest may be used with a store made with another one.

A store keeps the layout it was made with (its ``layout_yaml`` attribute) and reads every object by
it, so a layout given to an existing store is compared with it field by field before anything is
read or written:

- the store's arrays: the bands, their order and groups, shapes, pixel scales and wavelengths. A
  store with other ones is another store: refused always;
- how files are found and read and how their values are taken: each band's ``path`` and HDU,
  ``id_digits``, ``masked_value``, ``coordinates`` (cards and unit) and ``wcs_position``. Refused,
  naming each field with the store's value and the given one, unless ``--reread``, which reads every
  stored object again by the given layout and records it (trial: band paths edited were taken for
  files that changed, band g rewritten with band i's pixels and the store still saying g came from the
  g files; an edited masked value or coordinate unit was ignored);
- the label ``catalog`` (its file, id column, label rule, comment mark and units): it says how labels
  are read, not pixels, so a layout differing there alone is taken and kept by the store, and every
  stored object's label is read again by it (:func:`keep_given_layout`; note 52: it needed a
  ``--reread`` of every image);
- names for people only (``name``, ``description``): may differ, said in a note.

A reread refuses, too, a band whose path given finds no file under the source where the store's own
finds some (:func:`check_band_files`; fresh-user trial: a mistyped ``cutz/{id}_u.fits.fz`` was
recorded, re-read nothing, and every later ingest warned the band was MISSING_FILE for every object).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import ConservationError
from pipeline.sources.discovery import Manifest, discover
from schemas.layout import Layout, available_layouts, load_layout

READING_FIELDS = ("id_digits", "masked_value", "coordinates", "wcs_position")
"""Layout-wide fields, besides ``catalog`` and the bands' paths and HDUs, that say how files are read."""


def check_layout(
    store: Path,
    attributes,
    stored: Layout,
    layout: Layout,
    reread: bool = False,
    source: Path | None = None,
    manifest: Manifest | None = None,
    catalog: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse ``layout`` for ``store`` (made with ``stored``) where they differ in a field that says
    how the store's objects are read (module docstring); ``reread`` allows those that a reread of
    every object takes up, not the store's arrays, nor band paths finding no file under ``source``
    (:func:`check_band_files`, where ``source`` is given; ``manifest``: its discovery by ``layout``),
    nor a label catalog that finds no file under ``source`` where the store's finds one, unless the
    ingest is given its ``catalog`` (:func:`check_catalog_found`).

    Raises
    ------
    ConservationError
        Naming each differing field with the store's value and the given one, and what to do.
    """
    if stored.groups != layout.groups or attributes.bands != list(layout.band_names):
        if attributes.layout == layout.name:  # trial: "ingested with layout 'hjy', not 'hjy'"
            raise ConservationError(
                f"store {store} was ingested with layout {attributes.layout!r} of groups "
                f"{_groups_said(stored.groups)}, but the layout {layout.name!r} given now has "
                f"{_groups_said(layout.groups)}; a store keeps the layout it was made with: pass that "
                "one, or ingest into a new store to use the edited layout"
            )
        raise ConservationError(  # trial: a custom-layout store re-ingested without --layout
            f"store {store} was ingested with layout {attributes.layout!r}, not {layout.name!r}; pass "
            f"--layout with the layout it was made with ({attributes.layout!r}: its name or YAML file), "
            "or use a new store for another layout"
        )
    arrays, reading = array_differences(stored, layout), reading_differences(stored, layout)
    files = [difference for difference in reading if difference not in catalog_differences(stored, layout)]
    if arrays:  # trial: a corrected pixel scale was accepted and ignored (the store keeps its layout's)
        raise ConservationError(
            f"store {store} was ingested with layout {attributes.layout!r} saying "
            f"{', '.join(arrays + reading)}; a store keeps the layout it was made with: ingest into a new "
            "store (`lenshunt run` with a new work directory) to use the corrected layout"
        )
    if files and not reread:
        raise ConservationError(
            f"store {store} was ingested with layout {attributes.layout!r}, and the layout {layout.name!r} "
            f"given now finds or reads files otherwise: {', '.join(reading)}; a store keeps the layout it "
            "was made with and reads every object by it, so nothing was read or written: "
            f"{_own_layout(store, attributes, stored)}; "
            "or ingest into a new store (`lenshunt run` with a new work directory) to use the given "
            f"layout; or `lenshunt ingest SOURCE {store} --layout GIVEN --reread` to read every stored "
            "object again by the given layout, which the store then keeps"
        )
    if files and source is not None:
        check_band_files(store, attributes, stored, layout, source, manifest)
    if catalog is None and source is not None and catalog_differences(stored, layout):
        check_catalog_found(store, stored, layout, source)


def check_catalog_found(store: Path, stored: Layout, layout: Layout, source: Path) -> None:
    """Refuse a layout whose label catalog finds no file under ``source`` where the store's finds one:
    the store would keep it, and every later ingest find no catalog (trial: a mistyped pattern was
    kept, the report saying both that labels were read again and that there was no catalog).

    Raises
    ------
    ConservationError
        Naming the pattern given, the file the store's finds, and the ways out.
    """
    import contextlib

    from pipeline.errors import LenshuntError
    from pipeline.sources.labels import find_label_catalog

    given = own = None
    with contextlib.suppress(LenshuntError, OSError):
        given = find_label_catalog(layout, source)
    with contextlib.suppress(LenshuntError, OSError):
        own = find_label_catalog(stored, source)
    if given is None and own is not None and layout.catalog is not None:
        raise ConservationError(
            f"the layout given finds no label catalog in {source} (pattern {str(layout.catalog.pattern)!r}), "
            f"where the store {store}'s layout finds {own.name}: the store would keep it and label nothing "
            "from now on, so nothing was read or written; correct the layout's catalog pattern, or pass the "
            "catalog with --catalog FILE"
        )


def keep_given_layout(store: Path, stored: Layout, layout: Layout, reread: bool) -> list[str]:
    """Record ``layout`` as the store's (under its own name and description) where it reads it from
    now on: with ``reread``, or where only its label catalog differs (module docstring); the report's
    note of what changed (empty where nothing was recorded).
    """
    from pipeline.store.zarr_store import update_attributes

    catalog = catalog_differences(stored, layout)
    if not (reread or catalog):
        return []
    kept = layout.model_copy(update={"name": stored.name, "description": stored.description})
    update_attributes(store, {"layout_yaml": kept.to_yaml()})
    if reread:  # trial: the report did not say the edited layout was kept
        edits = reading_differences(stored, layout)
        return [f"the store keeps the layout given from now on: {', '.join(edits)}"] if edits else []
    return [
        f"the store keeps the label catalog given from now on: {', '.join(catalog)}; the labels of the "
        "objects it holds are read again by it (their images are not)"
    ]


def check_band_files(
    store: Path, attributes, stored: Layout, layout: Layout, source: Path, manifest: Manifest | None = None
) -> None:
    """Refuse ``layout`` where a band's path in it, unlike the store's (``stored``), matches no file
    under ``source`` while the store's finds some: a reread by it would record that path and keep the
    pixels read before, flagging nothing (fresh-user trial). ``manifest``: ``source`` discovered by
    ``layout`` already (else discovered here); ``source`` is discovered by ``stored`` only where a
    band of ``layout`` finds nothing.

    Raises
    ------
    ConservationError
        Naming each such band, its path given, and how many files the store's path finds.
    """
    edited = {a.name: a.path for a, b in zip(stored.bands, layout.bands) if a.path != b.path}
    if not edited:
        return
    manifest = manifest if manifest is not None else discover(layout, source)
    none = set(manifest.no_file) | {name for names, _ in manifest.absent.values() for name in names}
    if not (nothing := [name for name in edited if name in none]):
        return
    found = discover(stored, source).paths
    counts = {name: sum(path is not None for path in found[name]) for name in nothing}
    if not (lost := [name for name in nothing if counts[name]]):
        return  # the store's path finds none either: nothing read before is lost
    said = "; ".join(
        f"band {name}'s path {layout.band(name).path!r} in the layout given matches no file under {source}, "
        f"where the store's layout ({edited[name]!r}) finds {counts[name]} file(s)"
        for name in lost
    )
    raise ConservationError(
        f"{said}: a --reread would record a layout finding no file of band(s) {', '.join(lost)}, so "
        "nothing was read or written; correct the path in the layout given, or "
        f"{_own_layout(store, attributes, stored)}"
    )


def own_shipped_layout(attributes, stored: Layout, layout: Layout, reread: bool = False) -> str | None:
    """Why the store's own copy of a shipped layout is read by instead of ``layout``, or None.

    Where ``layout`` is what lenshunt ships now under the store's layout name (``--layout NAME``, or
    none given: the store's name loaded again) and the store was made with another version of it
    that reads files otherwise, the store's own is used and said (review: a scheduled ``lenshunt
    run`` without ``--layout`` was refused after an upgrade changed a shipped layout; before, new
    objects were read by the new one, unlike the store's). ``reread`` takes the given one instead.
    """
    if reread or layout.name != attributes.layout or layout.name not in available_layouts():
        return None
    if layout.model_dump() != load_layout(layout.name).model_dump() or array_differences(stored, layout):
        return None
    reading = reading_differences(stored, layout) if stored.groups == layout.groups else []
    if not reading:
        return None
    return (
        f"the store was made with another version of layout {layout.name!r} than lenshunt ships now "
        f"({', '.join(reading)}); the store's own is used, as a store reads every object by the layout it "
        f"was made with; `lenshunt ingest SOURCE STORE --reread` reads every object again by the shipped one"
    )


def array_differences(stored: Layout, layout: Layout) -> list[str]:
    """The bands' shapes, pixel scales and wavelengths that differ (bands and groups alike), as
    ``'VIS 0.2"/px (now 0.1)'``."""
    changed = []  # review: an edited shape or wavelength was accepted too, and ignored
    for a, b in zip(stored.bands, layout.bands):
        if a.pixel_scale_arcsec != b.pixel_scale_arcsec:
            changed.append(f'{a.name} {a.pixel_scale_arcsec:g}"/px (now {b.pixel_scale_arcsec:g})')
        if tuple(a.shape) != tuple(b.shape):
            changed.append(f"{a.name} shape {list(a.shape)} (now {list(b.shape)})")
        if a.wavelength_nm != b.wavelength_nm:
            changed.append(f"{a.name} wavelength {a.wavelength_nm} nm (now {b.wavelength_nm})")
    return changed


def reading_differences(stored: Layout, layout: Layout) -> list[str]:
    """The fields saying how files are found and read that differ, as ``"g path '{id}_g.fits.fz'
    (now '{id}_i.fits.fz')"``; the catalog's field by field."""
    changed = []
    for a, b in zip(stored.bands, layout.bands):
        if a.path != b.path:
            changed.append(f"{a.name} path {a.path!r} (now {b.path!r})")
        if stored.band_hdu(a.name) != layout.band_hdu(b.name):  # else a named HDU would be ignored
            changed.append(f"{a.name} hdu {stored.band_hdu(a.name)!r} (now {layout.band_hdu(b.name)!r})")
    before, now = stored.model_dump(mode="json"), layout.model_dump(mode="json")
    for name in READING_FIELDS:
        if name == "coordinates" and len(before[name]) == len(now[name]):  # the card or unit itself
            changed.extend(
                f"coordinates[{index}] {key} {_said(was[key])} (now {_said(is_[key])})"
                for index, (was, is_) in enumerate(zip(before[name], now[name]))
                for key in was
                if was[key] != is_[key]
            )
        elif before[name] != now[name]:
            changed.append(f"{name} {_said(before[name])} (now {_said(now[name])})")
    return changed + catalog_differences(stored, layout)


def catalog_differences(stored: Layout, layout: Layout) -> list[str]:
    """The label catalog's fields that differ, as ``"catalog label_rule 'a' (now 'b')"``."""
    before, now = stored.model_dump(mode="json")["catalog"], layout.model_dump(mode="json")["catalog"]
    old, new = before or {}, now or {}
    if bool(old) != bool(new):
        return [f"catalog {_said(before)} (now {_said(now)})"]
    return [
        f"catalog {name} {_said(old[name])} (now {_said(new[name])})"
        for name in old
        if old[name] != new[name]
    ]


def naming_notes(stored: Layout, layout: Layout) -> list[str]:
    """Notes on the fields for people only (``name``, ``description``) where ``layout`` differs."""
    notes = []
    if stored.name != layout.name:
        notes.append(
            f"the layout given is named {layout.name!r}, the store's {stored.name!r}: they read files alike, "
            f"and the store keeps its name {stored.name!r}"
        )
    if stored.description != layout.description:
        notes.append(
            f"the layout given describes itself as {layout.description!r}, the store's as "
            f"{stored.description!r}; the store keeps its own"
        )
    return notes


def _own_layout(store: Path, attributes, stored: Layout) -> str:
    """How to give ``store`` its own layout again."""
    if attributes.layout not in available_layouts():
        return f"omit --layout (the layout {attributes.layout!r} the store recorded is then read)"
    if load_layout(attributes.layout).model_dump() == stored.model_dump():
        return f"omit --layout (the store's own, shipped {attributes.layout!r}, is then used)"
    return (
        f"lenshunt ships another {attributes.layout!r} now than the store was made with: pass the store's "
        f"own with --layout {store} (a store's path gives the layout it recorded)"
    )


def _said(value: object) -> str:
    """A field's value as YAML would say it, briefly: ``None`` ``0.0`` ``'RA'`` ``[{ra: RA, ...}]``."""
    if isinstance(value, list):
        return "[" + ", ".join(_said(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_said(item)}" for key, item in value.items()) + "}"
    return repr(value)


def _groups_said(groups) -> str:
    return ", ".join(f"{group} {list(bands)}" for group, bands in groups.items())
