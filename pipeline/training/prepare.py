"""The first two steps of training, which read the store but build no model (:mod:`pipeline.training.run`).

:func:`load_split` chooses training and validation rows from ids, labels and flags, no images;
:func:`fit_store_recipe` fits the recipe's per-band statistics on a sample of training blocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.catalog.duplicates import duplicate_groups
from pipeline.preprocess.recipe import Recipe
from pipeline.preprocess.recipe_fit import check_recipe_options, fit_recipe_streaming
from pipeline.store.columns import read_flags, read_object_columns
from pipeline.store.zarr_store import open_store, read_attributes, store_layout
from pipeline.training.config import TrainingError
from pipeline.training.config_arg import ConfigArg, as_train_config
from pipeline.training.dataset import BlockReader, statistics_chunks, statistics_rows, store_block_rows
from pipeline.training.finetune import init_recipe, training_groups
from pipeline.training.grades import check_grade_stores, training_labels
from pipeline.training.splits import Split, make_split, one_class_fix


def load_split(store: str | Path, config: ConfigArg) -> Split:
    """Training and validation rows of ``store`` for ``config``; reads only the per-object columns.

    Raises
    ------
    TrainingError
        If either side lacks lenses or non-lenses.
    StoreError
        Rows without an object id or per-object columns that cannot be read (a damaged store).
    pipeline.catalog.StoreMismatchError
        If ``config.grades`` holds grades of a run of another store.
    """
    config = as_train_config(config, "load_split")
    if config.grades:
        check_grade_stores(store, list(config.grades))  # grades of another set's run label other objects
    dataset = open_store(store, chunks=None)
    column = read_object_columns(dataset, store)  # new-user trial: trained on rows without an id
    labels = training_labels(dataset, config, store)
    used = training_groups(store_layout(read_attributes(store)), config)
    bands = [band for names in used.values() for band in names]
    split = make_split(
        column["object_id"],
        labels,
        read_flags(dataset, store=store, bands=bands),  # only the model's bands decide (trial)
        seed=config.seed,
        val_fraction=config.val_fraction,
        k_folds=config.k_folds,
        fold=config.fold,
        max_val_objects=config.max_val_objects,
        description=config.split_description(),
        groups=duplicate_groups(column["ra"], column["dec"]) if config.group_duplicates else None,
    )
    usable = np.concatenate([split.train_rows, split.val_rows])
    n_lenses = int(np.count_nonzero(labels[usable] == 1))
    for side, rows in (("training", split.train_rows), ("validation", split.val_rows)):
        n_pos = int(np.count_nonzero(labels[rows] == 1))
        n_neg = int(rows.size - n_pos)
        if n_pos == 0 or n_neg == 0:
            graded, folds = config.grades_only, config.k_folds is not None
            fix = one_class_fix(n_lenses, usable.size - n_lenses, graded=graded, folds=folds)
            raise TrainingError(
                f"the {side} split of {store} has {n_pos} lens{'es' * (n_pos != 1)} and {n_neg} "
                f"non-lens{'es' * (n_neg != 1)}; both classes are "
                f"needed ({split.summary()}): {fix}"
            )
    return split


def fit_store_recipe(store: str | Path, split: Split, config: ConfigArg) -> Recipe:
    """The recipe for ``config``, its statistics fit on about ``max_stat_objects`` training objects.

    With ``config.init`` the recipe of that bundle, its statistics unchanged, its bands found by name
    in the store's layout (:func:`~pipeline.training.finetune.init_recipe`).
    Options that cannot give a model input (:meth:`TrainConfig.check_input_shapes`) are refused first.
    """
    config = as_train_config(config, "fit_store_recipe")
    layout = store_layout(read_attributes(store))
    if config.init is not None:
        return init_recipe(config.init, layout)
    draft = check_recipe_options(layout, **config.recipe_options())
    config.check_input_shapes(draft.input_shapes())
    dataset, used = open_store(store, chunks=None), dict(draft.groups)
    block_rows = store_block_rows(dataset, list(used))
    reader = BlockReader(dataset, list(used), block_rows, cache_blocks=1, bands=used)
    rows = statistics_rows(split.train_rows, config.max_stat_objects, block_rows, config.seed)
    bands = [band for names in used.values() for band in names]
    return fit_recipe_streaming(
        statistics_chunks(reader, rows, read_flags(dataset, store=store, bands=bands)),
        layout,
        max_pixels_per_band=config.max_stat_pixels,
        seed=config.seed,
        **config.recipe_options(),
    )
