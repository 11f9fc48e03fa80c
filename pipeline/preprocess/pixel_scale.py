"""Is a store at the pixel scale the model was trained at? A model learns lenses as sizes in pixels.

A model trained at VIS 0.1"/px sees a 1" Einstein radius as 10 pixels; given cutouts at 0.2"/px it
sees the same lens as 5 pixels: its scores mean little, and its ``theta_e`` (arcsec, learned from
pixels) comes out at half the truth. Nothing in the pixels says so (new-user trial: such a store was
scored without a word). So a recipe records the pixel scale of each band it reads, from its training
store's layout (``Recipe.pixel_scales``, recipe version 8), and a store, a layout or a fine-tuning
store whose bands' scales differ from it by more than :data:`PIXEL_SCALE_TOLERANCE` is refused
(:func:`pixel_scale_problem`, called by ``pipeline.models.check_bundle_fits_layout`` and the
``--init`` check of training), every member of an ensemble with its own recipe. A recipe from
before version 8 records none: it is not checked, and scoring warns (:func:`unknown_pixel_scale_warning`).

Examples
--------
>>> import numpy as np
>>> from schemas.layout import load_layout
>>> from pipeline.preprocess import fit_recipe
>>> layout = load_layout("sglc1-space")
>>> recipe = fit_recipe({"vis": np.ones((2, 1, 101, 101), "float32")}, layout, combine="branches")
>>> recipe.pixel_scales
{'VIS': 0.1}
>>> pixel_scale_mismatches(recipe, {"VIS": 0.1005})
[]
>>> pixel_scale_mismatches(recipe, {"VIS": 0.2})
[('VIS', 0.1, 0.2)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.preprocess.recipe import Recipe
from schemas.layout import Layout

PIXEL_SCALE_TOLERANCE = 0.01
"""Largest relative difference between a store's pixel scale and the recipe's that is accepted (1%:
nominal scales rounded otherwise; a lens 1% larger in pixels is well within what a model has seen)."""

RESAMPLE_ADVICE = (
    "train a model on cutouts at this scale (`lenshunt train`), or resample the cutouts to the model's "
    "scale and describe them by a layout at that scale"
)
"""What to do about a store at another pixel scale (scoring; fine-tuning gives its own advice)."""


def layout_pixel_scales(layout: Layout) -> dict[str, float]:
    """Band name -> its pixel scale in arcsec/px, as ``layout`` declares it."""
    return {band.name: band.pixel_scale_arcsec for band in layout.bands}


def pixel_scale_mismatches(recipe: Recipe, scales: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """``(band, recipe's scale, store's scale)`` in arcsec/px of each band read at another scale.

    Parameters
    ----------
    recipe
        A bundle's recipe; one without ``pixel_scales`` (before version 8) gives no mismatch.
    scales
        Band name -> pixel scale of the store's (or layout's) band, arcsec/px; bands it lacks are
        left to the band check.

    Returns
    -------
    list of tuple
        The bands whose scales differ by more than :data:`PIXEL_SCALE_TOLERANCE` of the recipe's,
        in the recipe's band order.
    """
    trained = recipe.pixel_scales or {}
    return [
        (band, trained[band], float(scales[band]))
        for band in recipe.bands
        if band in trained
        and band in scales
        and abs(float(scales[band]) - trained[band]) > PIXEL_SCALE_TOLERANCE * trained[band]
    ]


def pixel_scale_problem(
    recipe: Recipe, scales: Mapping[str, float], where: str, model: str, advice: str = RESAMPLE_ADVICE
) -> str | None:
    """One sentence on the bands of ``where`` at other pixel scales than ``recipe``'s, or None.

    Parameters
    ----------
    recipe, scales
        As for :func:`pixel_scale_mismatches` (arcsec/px).
    where
        What holds ``scales``, e.g. ``"store (layout 'euclid-coarse')"``.
    model
        The model's name in the sentence (its id; an ensemble's member named).
    advice
        What to do, ending the sentence.
    """
    mismatches = pixel_scale_mismatches(recipe, scales)
    if not mismatches:
        return None
    pairs: dict[tuple[float, float], list[str]] = {}
    for band, trained, store in mismatches:
        pairs.setdefault((trained, store), []).append(band)
    said = "; ".join(
        f'band{"s" if len(bands) > 1 else ""} {", ".join(bands)} at {store:g}"/px where the model was '
        f'trained at {trained:g}"/px'
        for (trained, store), bands in pairs.items()
    )
    return (
        f"model {model} was trained at other pixel scales than {where} has: {said} (its training layout "
        f"{recipe.layout!r}). It would see every lens at another size in pixels, so its scores would mean "
        f"little (and an Einstein radius it estimates would be off by the ratio of the scales): {advice}"
    )


def unknown_pixel_scale_warning(recipe: Recipe) -> str | None:
    """The warning for a recipe that records no pixel scale (before version 8), or None if it does."""
    if recipe.pixel_scales is not None:
        return None
    return (
        f"the model's recipe (version {recipe.version}) records no pixel scale, so the store's were not "
        "checked against those it was trained at: its scores and theta_e mean what they should only if "
        f"the store's pixel scales are those of its training layout {recipe.layout!r}"
    )


def measured_scale_warnings(bundle, store_bands: Sequence[str], measured: np.ndarray) -> list[str]:  # type: ignore[no-untyped-def]
    """Warnings for bands a model reads whose files' WCS pixel scale, measured at ingest, is another
    than the one it was trained at in at least half the objects that have one.

    The refusal above compares scales as layouts declare them; a layout that misdescribes its files
    (0.2"/px declared, 0.25"/px in every WCS) passes it, and ingest flags each object
    PIXEL_SCALE_MISMATCH (trial: such a store was scored, its metrics printed, without a word at the
    run's level). The files' own scale is then the better witness, so it is said once per band.

    Parameters
    ----------
    bundle
        A bundle or ensemble (each member's recipe is checked; recipes without ``pixel_scales`` are not).
    store_bands
        The store's band names, in the order of ``measured``'s second axis.
    measured
        Float (n_objects, n_bands): each object's header pixel scale in arcsec/px, NaN where none.

    Returns
    -------
    list of str
        One warning per band found off by more than :data:`pipeline.flags.PIXEL_SCALE_TOLERANCE`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(recipe=SimpleNamespace(bands=("R",), pixel_scales={"R": 0.2}))
    >>> measured_scale_warnings(model, ["R"], np.array([[0.25], [0.25], [np.nan]]))[0][:60]
    'band R: 2 of the 2 objects whose files give a pixel scale ha'
    >>> measured_scale_warnings(model, ["R"], np.array([[0.2], [0.25], [0.2]]))
    []
    """
    from pipeline.flags import PIXEL_SCALE_TOLERANCE

    warnings: list[str] = []
    for member in getattr(bundle, "members", [bundle]):
        trained = member.recipe.pixel_scales or {}
        for band in member.recipe.bands:
            if band not in trained or band not in store_bands:
                continue
            scales = measured[:, list(store_bands).index(band)]
            known = scales[np.isfinite(scales)]
            off = known[np.abs(known / trained[band] - 1) > PIXEL_SCALE_TOLERANCE]
            if known.size and 2 * off.size >= known.size:
                median, scale = float(np.median(off)), trained[band]
                message = (
                    f"band {band}: {off.size} of the {known.size} objects whose files give a pixel scale "
                    f'have {median:.3g}"/px (median of their WCS), not the {scale:g}"/px the model was '
                    "trained at: the layout's pixel scale does not describe these files (they are "
                    "flagged PIXEL_SCALE_MISMATCH), so the model sees every lens at another size; describe "
                    "the files by a layout at their scale and ingest them again, or resample them"
                )
                if message not in warnings:
                    warnings.append(message)
    return warnings
