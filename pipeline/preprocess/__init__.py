"""Preprocessing: store images to model inputs, as pure NumPy/CuPy functions and saved recipes.

:mod:`~pipeline.preprocess.arrays` holds the array functions, :mod:`~pipeline.preprocess.recipe` the
recipe a bundle saves, :mod:`~pipeline.preprocess.recipe_fit` its fitting from a store, and
:mod:`~pipeline.preprocess.augment` the augmentations. Importing it imports no framework.
"""

from pipeline.preprocess.asymmetry import DEFAULT_ASYMMETRY_SMOOTHING_PX
from pipeline.preprocess.augment import dihedral, random_dihedral, tta_mean_spread
from pipeline.preprocess.inpaint import DEFAULT_INPAINT_PX, inpaint_invalid
from pipeline.preprocess.observing import ObservingAugment, augment_observing
from pipeline.preprocess.recipe import FLAGS_KEY, BandStatistics, Recipe, apply_recipe
from pipeline.preprocess.recipe_fit import (
    check_recipe_options,
    fit_recipe,
    fit_recipe_streaming,
    select_groups,
)
from pipeline.preprocess.sampling import PixelReservoir

__all__ = [
    "DEFAULT_ASYMMETRY_SMOOTHING_PX",
    "DEFAULT_INPAINT_PX",
    "FLAGS_KEY",
    "BandStatistics",
    "ObservingAugment",
    "PixelReservoir",
    "Recipe",
    "apply_recipe",
    "augment_observing",
    "check_recipe_options",
    "dihedral",
    "fit_recipe",
    "fit_recipe_streaming",
    "inpaint_invalid",
    "random_dihedral",
    "select_groups",
    "tta_mean_spread",
]
