"""The training stage: streamed, balanced, augmented batches from a store into a Keras model bundle.

:func:`train` runs the whole stage (split, recipe statistics, training, bundle); the train flow
runs its three steps (:func:`load_split`, :func:`fit_store_recipe`, :func:`train_bundle`) as
separate tasks. Importing this package does not import Keras; training does.

Examples
--------
>>> from pipeline.training import TrainConfig, train
>>> result = train("runs/sim.zarr", "runs/models/demo", TrainConfig(epochs=3))  # doctest: +SKIP
>>> result.metrics["val_auroc"]  # doctest: +SKIP
0.97
"""

from pipeline.training.config import DEFAULT_ARCHITECTURE, DEFAULT_POLAR, TrainConfig, TrainingError
from pipeline.training.finetune import (
    RECIPE_OPTIONS,
    check_init_recipe_options,
    check_trainable_layers,
    init_recipe,
)
from pipeline.training.grades import check_grade_stores, check_grades
from pipeline.training.out_folder import check_output, first_missing, remove_unfinished
from pipeline.training.out_of_fold import out_of_fold_text, record_out_of_fold
from pipeline.training.replacement import aside_dir, holds_bundle, replacing, working_dir
from pipeline.training.run import (
    TrainResult,
    fit_store_recipe,
    load_split,
    train,
    train_bundle,
)
from pipeline.training.saved_options import RUN_FIELDS, older_run_defaults, saved_split_grouped
from pipeline.training.splits import Split, assign_folds, make_split, validation_mask

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_POLAR",
    "RECIPE_OPTIONS",
    "RUN_FIELDS",
    "Split",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "aside_dir",
    "assign_folds",
    "check_grade_stores",
    "check_grades",
    "check_init_recipe_options",
    "check_output",
    "check_trainable_layers",
    "first_missing",
    "fit_store_recipe",
    "holds_bundle",
    "init_recipe",
    "load_split",
    "make_split",
    "older_run_defaults",
    "out_of_fold_text",
    "record_out_of_fold",
    "remove_unfinished",
    "replacing",
    "saved_split_grouped",
    "train",
    "train_bundle",
    "validation_mask",
    "working_dir",
]
