"""The ``config`` argument of the training functions: a :class:`TrainConfig`, or a mapping of its options.

Fresh-user trial: ``train("sim.zarr", "models/x", dict(epochs=1))`` failed on ``'dict' object has no
attribute 'init'``. A mapping is what :meth:`TrainConfig.from_options` takes, so it is validated into a
config (bad options are a :class:`TrainingError` naming each); anything else is a ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.training.config import TrainConfig

ConfigArg = TrainConfig | Mapping[str, Any]
"""A training config as the public training functions take it (:func:`as_train_config`)."""


def as_train_config(config: ConfigArg, where: str) -> TrainConfig:
    """``config`` itself, or the :class:`TrainConfig` of a mapping of its options.

    Raises
    ------
    TrainingError
        A mapping with options TrainConfig refuses (:meth:`TrainConfig.from_options`).
    TypeError
        ``config`` is neither, saying what ``where`` (the function's name) needs and what was given.

    >>> as_train_config({"epochs": 1}, "train") == TrainConfig(epochs=1)
    True
    >>> as_train_config(["epochs", 1], "train")
    Traceback (most recent call last):
    ...
    TypeError: train needs a pipeline.training.TrainConfig or a mapping of its options ...; got builtins.list
    """
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, Mapping) and all(isinstance(key, str) for key in config):
        return TrainConfig.from_options(**config)
    kind = type(config)
    raise TypeError(
        f"{where} needs a pipeline.training.TrainConfig or a mapping of its options (e.g. "
        f"TrainConfig(epochs=3) or {{'epochs': 3}}); got {kind.__module__}.{kind.__qualname__}"
    )
