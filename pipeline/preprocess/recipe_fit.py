"""Fitting a recipe's per-band statistics on training images, in memory or streamed from a big store.

Percentiles are measured on finite pixels only (NaN, masked and non-finite pixels are ignored),
and objects whose flags intersect :data:`~pipeline.flags.UNUSABLE` are left out. Recipe options
are validated before any data is read, so a typo fails at once rather than after a pass over the
store. Both functions are also importable from :mod:`pipeline.preprocess.recipe`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from pipeline.errors import BundleError, validation_problems
from pipeline.preprocess import arrays as pp
from pipeline.preprocess.group_scaling import check_group
from pipeline.preprocess.recipe import FLAGS_KEY, BandStatistics, Recipe
from pipeline.preprocess.sampling import PixelReservoir
from schemas.layout import Layout, LayoutArg, as_layout


def select_groups(layout: LayoutArg, bands: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Layout groups restricted to ``bands`` (all bands when None), in layout order.

    Raises
    ------
    BundleError
        For a band the layout lacks, with the layout's bands (trial: a KeyError traceback).
    """
    layout = as_layout(layout, "select_groups")
    if bands is None:
        return dict(layout.groups)
    for band in bands:
        try:
            layout.band(band)
        except KeyError as exc:  # its message has a "did you mean" hint
            raise BundleError(str(exc.args[0])) from None
    chosen = {group: tuple(b for b in members if b in bands) for group, members in layout.groups.items()}
    return {group: members for group, members in chosen.items() if members}


def fit_recipe(
    groups_sample: Mapping[str, np.ndarray],
    layout: LayoutArg,
    *,
    flags: np.ndarray | None = None,
    **options: Any,
) -> Recipe:
    """Fit a recipe's per-band statistics on an in-memory sample of training images.

    Parameters
    ----------
    groups_sample
        Store group name -> ``(n, band, y, x)`` array holding every band of the group; NaN
        pixels are ignored. Groups not used by the recipe may be present.
    layout
        The layout of the store the sample came from.
    flags
        Per-object flags; objects intersecting ``UNUSABLE`` are left out of the statistics.
    **options
        Recipe options: ``bands`` (subset of band names, default all), ``combine``,
        ``expand_single_band``, ``scaling``, ``percentiles``, ``fill_value``, ``downsample``.

    Returns
    -------
    Recipe
        Statistics measured on every finite pixel of every usable object.
    """
    layout = as_layout(layout, "fit_recipe")
    chunk: dict[str, np.ndarray] = dict(groups_sample)
    if flags is not None:
        chunk[FLAGS_KEY] = np.asarray(flags)
    return fit_recipe_streaming([chunk], layout, max_pixels_per_band=None, **options)


def check_recipe_options(layout: LayoutArg, *, bands: Sequence[str] | None = None, **options: Any) -> Recipe:
    """Validate recipe options against ``layout`` before any data is read.

    Returns
    -------
    Recipe
        A draft with placeholder statistics: its shapes (:meth:`Recipe.input_shapes`) are the
        fitted recipe's.

    Raises
    ------
    BundleError
        The options' problems in one line (e.g. a crop larger than the layout's grid).
    """
    layout = as_layout(layout, "check_recipe_options")
    groups = select_groups(layout, bands)
    placeholder = BandStatistics(low=0.0, high=1.0, median=0.0, sigma=1.0, n_pixels=1)
    return _make_recipe(layout, groups, dict.fromkeys(layout.band_names, placeholder), 0, options)


def fit_recipe_streaming(
    chunks: Iterable[Mapping[str, np.ndarray]],
    layout: LayoutArg,
    *,
    max_pixels_per_band: int | None = 4_000_000,
    seed: int = 0,
    bands: Sequence[str] | None = None,
    **options: Any,
) -> Recipe:
    """Fit a recipe from chunks of a store too big for memory.

    Each chunk is a mapping like the argument of :func:`fit_recipe`, optionally with the
    chunk's per-object flags under :data:`FLAGS_KEY` (``"flags"``). A uniform random sample of
    at most ``max_pixels_per_band`` finite pixels per band is kept across all chunks (bottom-k
    sampling, :class:`~pipeline.preprocess.sampling.PixelReservoir`), whatever the number and sizes of the
    chunks; the same chunks and ``seed`` give the same recipe. ``None`` keeps every pixel.
    Other options are those of :func:`fit_recipe`.
    """
    layout = as_layout(layout, "fit_recipe_streaming")
    groups = select_groups(layout, bands)
    placeholder = BandStatistics(low=0.0, high=1.0, median=0.0, sigma=1.0, n_pixels=1)
    draft = _make_recipe(layout, groups, dict.fromkeys(layout.band_names, placeholder), 0, options)
    rng = np.random.default_rng(seed)
    reservoirs = {
        band: PixelReservoir(max_pixels_per_band, rng) for members in groups.values() for band in members
    }
    n_objects = 0
    for chunk in chunks:
        n_objects += _sample_chunk(chunk, layout, groups, reservoirs)
    statistics = {}
    for band, reservoir in reservoirs.items():
        values = reservoir.values()
        if values.size == 0:
            raise BundleError(
                f"band {band!r} has no finite pixel in the {n_objects} usable training objects: "
                "the statistics cannot be measured; check the store (flags, NaN fraction) or drop the band"
            )
        stats = pp.band_statistics(values, draft.percentiles)
        statistics[band] = BandStatistics(**stats, n_pixels=reservoir.n_seen)
    return _make_recipe(layout, groups, statistics, n_objects, options)


def _make_recipe(
    layout: Layout,
    groups: dict[str, tuple[str, ...]],
    statistics: dict[str, BandStatistics],
    n_objects: int,
    options: Mapping[str, Any],
) -> Recipe:
    """The validated recipe; bad options raise :class:`BundleError` (before any data is read)."""
    try:
        return Recipe(
            layout=layout.name,
            store_groups={group: layout.groups[group] for group in groups},
            groups=groups,
            group_shapes={group: layout.group_shape(group) for group in groups},
            statistics={band: statistics[band] for band in statistics_bands(groups)},
            masked_value=layout.masked_value,
            n_objects_fit=n_objects,
            pixel_scales={band: layout.band(band).pixel_scale_arcsec for band in statistics_bands(groups)},
            **options,
        )
    except ValidationError as exc:
        raise BundleError(f"invalid recipe options: {validation_problems(exc)}") from exc


def statistics_bands(groups: Mapping[str, Sequence[str]]) -> list[str]:
    """The bands of ``groups`` (group -> bands), groups in order."""
    return [band for members in groups.values() for band in members]


def _sample_chunk(
    chunk: Mapping[str, np.ndarray],
    layout: Layout,
    groups: dict[str, tuple[str, ...]],
    reservoirs: dict[str, PixelReservoir],
) -> int:
    """Feed one chunk's usable finite pixels to the reservoirs; returns its usable object count."""
    usable: np.ndarray | None = None
    if FLAGS_KEY in chunk:
        usable = np.asarray(pp.usable_objects(np.asarray(chunk[FLAGS_KEY])))
    n_usable = 0
    for group, members in groups.items():
        if group not in chunk:
            raise BundleError(
                f"training chunk lacks group {group!r} (it has {sorted(chunk)}); pass every used group"
            )
        images = check_group(group, chunk[group], layout.groups[group], layout.group_shape(group))
        if usable is not None:
            images = images[usable]
        images = pp.mask_invalid(images, layout.masked_value)
        n_usable = images.shape[0]
        for band in members:
            reservoirs[band].add(pp.finite_band_values(images, layout.groups[group].index(band)))
    return n_usable
