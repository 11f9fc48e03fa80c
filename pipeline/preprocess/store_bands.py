"""A recipe read against another store's bands: each band found by its name, not its position.

A recipe indexes the store arrays by ``store_groups``, the band order of the layout it was fitted
on. A store of another layout may hold the same group with its bands in another order, or with
more bands (a fifth NISP band in ``nir``). Read by position, the first gives the model the wrong
bands without any error, and the second fails in every worker (new-user trial, 2026-12-03).
:func:`recipe_for_store` gives the recipe whose ``store_groups`` are the store's own, so
:func:`~pipeline.preprocess.recipe.apply_recipe` takes each band the model reads by its name.

Examples
--------
>>> import numpy as np
>>> from schemas.layout import load_layout
>>> from pipeline.preprocess import apply_recipe, fit_recipe
>>> rng = np.random.default_rng(0)
>>> nir = rng.normal(size=(2, 3, 66, 66)).astype("float32")
>>> recipe = fit_recipe({"nir": nir}, load_layout("euclid-sglc2"), combine="branches", bands=["Y", "J", "H"])
>>> recipe.store_groups["nir"]
('Y', 'J', 'H')
>>> other = recipe_for_store(recipe, {"vis": ["VIS"], "nir": ["H", "K", "J", "Y"]})
>>> other.store_groups["nir"]
('H', 'K', 'J', 'Y')
>>> reordered = nir[:, [2, 1, 1, 0]]  # H, a fourth band (here a copy of J), J, Y
>>> same = apply_recipe(other, {"nir": reordered})["nir"] == apply_recipe(recipe, {"nir": nir})["nir"]
>>> bool(same.all())
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from pipeline.errors import BundleError, validation_problems
from pipeline.preprocess.recipe import Recipe


def recipe_for_store(
    recipe: Recipe, groups: Mapping[str, Sequence[str]], layout: str | None = None
) -> Recipe:
    """``recipe`` reading a store whose groups hold ``groups``, each band taken by its name.

    Parameters
    ----------
    recipe
        A fitted recipe (a bundle's).
    groups
        The store's group -> its bands, in store order (``read_attributes(store).groups``, or a
        layout's ``groups``); groups the recipe does not read are ignored.
    layout
        The store's layout name, recorded as the recipe's ``layout`` (fine-tuning on that store);
        None keeps the recipe's.

    Returns
    -------
    Recipe
        ``recipe`` itself when the store's groups are the recipe's ``store_groups``; else a copy
        whose ``store_groups`` are the store's (its statistics, scaling and version unchanged).

    Raises
    ------
    BundleError
        When the store lacks a group or a band the recipe reads, naming them.
    """
    missing = {
        group: [band for band in bands if band not in groups.get(group, ())]
        for group, bands in recipe.groups.items()
    }
    missing = {group: bands for group, bands in missing.items() if bands}
    if missing:
        have = {group: list(bands) for group, bands in groups.items()}
        raise BundleError(
            f"the model reads bands that the store lacks: {missing} (group -> bands); the store has "
            f"{have}: use a model trained on this layout"
        )
    store_groups = {group: tuple(groups[group]) for group in recipe.groups}
    if store_groups == dict(recipe.store_groups) and layout in (None, recipe.layout):
        return recipe
    update = {"store_groups": store_groups, "layout": layout or recipe.layout}
    try:  # validated again: store_groups must still hold every band the recipe reads
        return Recipe.model_validate(recipe.model_dump() | update)
    except ValidationError as exc:
        raise BundleError(f"the recipe cannot read this store: {validation_problems(exc)}") from exc
