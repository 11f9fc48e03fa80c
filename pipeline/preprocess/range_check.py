"""Is the data like what the model was trained on? Warnings for inputs far outside its training range.

A bundle's recipe keeps the training set's pixel statistics per band (median and robust sigma
of a pixel sample). Before scoring, the same statistics are measured per cutout on a sample of
the store and compared:

- recipes with fixed flux statistics (``clip_minmax``, ``log``) break when units, zero point or
  depth change, so a typical cutout noise more than ``MAX_NOISE_RATIO`` times off the training
  noise, or a background more than ``MAX_BACKGROUND_SIGMAS`` training sigmas away, is reported
  (e.g. raw counts where the model saw fluxes: a ratio of about 1e12);
- ``robust_asinh`` recipes measure every cutout in units of its own noise, so units, zero points
  and sky levels cannot mislead them; cutouts without measurable noise (constant or blank bands)
  are what is reported there.

A bundle whose recipe records no pixel scale (before version 8) is also reported: the store's
pixel scales could not be checked (:mod:`pipeline.preprocess.pixel_scale`).

The warnings go into the score run's summary, the catalog provenance and the report; scores are
still written (the user decides), never silently trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from pipeline.preprocess.arrays import usable_objects
from pipeline.preprocess.pixel_scale import unknown_pixel_scale_warning
from pipeline.preprocess.robust import cutout_statistics

INPUT_CHECK_OBJECTS = 256
"""Objects (from the start of a store) whose statistics are compared with the model's training range."""

MAX_NOISE_RATIO = 10.0
"""Typical cutout noise over training noise (or its inverse) above which a band is out of range."""

MAX_BACKGROUND_SIGMAS = 20.0
"""Typical background offset from the training median (in training sigmas) that puts a band out of range."""

MAX_BLANK_FRACTION = 0.5
"""Fraction of sampled cutouts without measurable noise above which a band is reported."""


def input_range_warnings(recipe, groups: Mapping[str, np.ndarray], flags: np.ndarray) -> list[str]:
    """Warnings for bands whose sampled cutouts lie far outside the recipe's training statistics.

    Parameters
    ----------
    recipe : pipeline.preprocess.Recipe
        The bundle's recipe (training statistics per band, scaling).
    groups : mapping of str to array (n, band, y, x)
        A sample of store images (every band of each group the recipe reads).
    flags : array (n,)
        Their flags; unusable objects are left out.

    Returns
    -------
    list of str
        One sentence per band out of range (what, by how much, what to do); empty when all is well.
    """
    usable = np.asarray(usable_objects(flags))
    if not usable.any():
        return []
    warnings = []
    for group, bands in recipe.groups.items():
        store_bands = recipe.store_groups[group]
        images = np.asarray(groups[group])[usable]
        median, sigma = cutout_statistics(images, masked_value=recipe.masked_value)
        for band in bands:
            index = store_bands.index(band)
            warning = _band_warning(recipe, band, median[:, index], sigma[:, index])
            if warning:
                warnings.append(warning)
    return warnings


def bundle_input_warnings(bundle, read_group: Callable[[str], np.ndarray], flags: np.ndarray) -> list[str]:
    """:func:`input_range_warnings` for a bundle, or for each member of an ensemble.

    Every member prepares its own inputs with its own recipe, so each is checked. A warning that
    every member gives is listed once; one that only some give starts with ``member K
    (MODEL_ID):`` (K counts from 1), so the user knows which model is out of range. A recipe that
    records no pixel scale (before version 8) gets the warning that the store's was not checked
    (:func:`~pipeline.preprocess.pixel_scale.unknown_pixel_scale_warning`).

    Parameters
    ----------
    bundle : ModelBundle or EnsembleBundle
    read_group : callable
        Group name -> sampled images of that group, shape (n, band, y, x); each read once.
    flags : array (n,)
        The sampled objects' flags.
    """
    members = list(getattr(bundle, "members", [bundle]))
    images: dict[str, np.ndarray] = {}
    per_member = []
    for member in members:
        for group in member.recipe.groups:
            if group not in images:
                images[group] = read_group(group)
        groups = {group: images[group] for group in member.recipe.groups}
        unknown = unknown_pixel_scale_warning(member.recipe)  # before recipe version 8: not checked
        per_member.append(
            [*([unknown] if unknown else []), *input_range_warnings(member.recipe, groups, flags)]
        )
    warnings: list[str] = []
    for number, (member, messages) in enumerate(zip(members, per_member, strict=True), start=1):
        for message in messages:
            if not all(message in others for others in per_member):
                message = f"member {number} ({member.model_id}): {message}"
            if message not in warnings:
                warnings.append(message)
    return warnings


def _band_warning(recipe, band: str, median: np.ndarray, sigma: np.ndarray) -> str | None:
    measurable = np.isfinite(sigma) & (sigma > 0)
    blank = 1.0 - measurable.mean()
    if blank > MAX_BLANK_FRACTION:
        return (
            f"band {band}: {blank:.0%} of the sampled cutouts have no measurable noise (constant or blank); "
            "check the input files"
        )
    if recipe.scaling == "robust_asinh":
        return None
    trained = recipe.statistics[band]
    typical_sigma = float(np.median(sigma[measurable]))
    typical_median = float(np.median(median[measurable]))
    ratio = typical_sigma / trained.sigma if trained.sigma > 0 else np.inf
    offset = abs(typical_median - trained.median) / trained.sigma if trained.sigma > 0 else np.inf
    if ratio > MAX_NOISE_RATIO or ratio < 1.0 / MAX_NOISE_RATIO or offset > MAX_BACKGROUND_SIGMAS:
        return (
            f"band {band}: typical cutout noise {typical_sigma:.3g} and background {typical_median:.3g}, "
            f"the model was trained at noise {trained.sigma:.3g} and background {trained.median:.3g} "
            f"(noise x{ratio:.3g}): other units, zero point or depth (raw counts where the model saw "
            f"fluxes?). Its {recipe.scaling} scaling uses fixed training statistics, so these scores "
            "are not meaningful: use a bundle with robust_asinh scaling (the default since recipe version 2) "
            "or fine-tune on this data with `lenshunt train STORE OUT --init BUNDLE`"
        )
    return None
