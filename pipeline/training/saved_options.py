"""The options a training run saved (``training/config.json``) as that run trained them.

Fields added to :class:`~pipeline.training.config.TrainConfig` later change what a default means; a
run's own file lacks them, and :func:`older_run_defaults` gives them the values of that run's day.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUN_FIELDS = frozenset({"architecture", "build_options", "downsample", "max_stat_objects", "epochs", "seed"})
"""Fields that every ``training/config.json`` a run wrote holds, since the first (2026-11-23): a file
with all of them is a run's own file (the whole TrainConfig of its day), not options written by hand."""


def older_run_defaults(
    options: dict[str, Any], *, new_init: bool = False, grouped: bool = False
) -> dict[str, Any]:
    """``options`` of a run's own ``training/config.json`` (:data:`RUN_FIELDS`) with the defaults of
    its day for the fields it predates, so that the file reproduces what that run trained.

    - No ``asymmetry`` (before 2026-11-30 22:03): no asymmetry channels, ``false``.
    - No ``asymmetry_smoothing_px`` (before 2026-12-01): unsmoothed, 0.
    - No ``inpaint_px`` (before 2026-12-05): invalid pixels given the fill value, 0.
    - A new small_cnn (no ``init``) without ``polar`` in ``build_options`` (before 2026-12-03):
      the Cartesian grid, ``polar: false``.
    - No ``group_duplicates`` (files written before the field, 2026-12-03): ``grouped``, which the
      caller reads from the run's own ``split.json`` beside the file (:func:`saved_split_grouped`):
      runs from 2026-12-03 14:10 on grouped objects at one sky position, and their ``split.json``
      says so (``n_grouped``, from 14:50; the few runs between wrote no trace of it). No trace: keyed
      by object id alone, ``false``. Not where ``new_init``: the split belongs to the new run
      (review: the ``polar`` key cannot tell, the shipped small-cnn-11 has it and did not group).
    - A fine-tune (``init``) without ``keep_start`` (before 2026-12-01): it kept its best trained
      epoch, ``false``; not where ``new_init`` (the file's options tune another bundle: a new run,
      with today's default; review: a new ``--init`` lost its epoch 0).

    Other dicts (options written by hand) come back unchanged; ``options`` itself is not modified.

    >>> from pipeline.training.config import TrainConfig
    >>> older_run_defaults(TrainConfig().model_dump(mode="json") | {"build_options": {}})["build_options"]
    {'polar': False}
    >>> older_run_defaults({"epochs": 3})
    {'epochs': 3}
    """
    options = dict(options)
    if not options.keys() >= RUN_FIELDS:
        return options
    options.setdefault("asymmetry", False)
    options.setdefault("asymmetry_smoothing_px", 0.0)
    options.setdefault("inpaint_px", 0.0)
    if options.get("init") is not None and not new_init:
        options.setdefault("keep_start", False)
    if not new_init:
        options.setdefault("group_duplicates", grouped)
    build = dict(options.get("build_options") or {})
    if options.get("init") is None and options.get("architecture") == "small_cnn" and "polar" not in build:
        options["build_options"] = build | {"polar": False}
    return options


def saved_split_grouped(config_path: str | Path) -> bool:
    """Whether the run whose ``training/config.json`` is ``config_path`` kept objects at one sky position
    on one side of its split: its ``split.json`` beside the file records ``n_grouped`` (every run that
    grouped since 2026-12-03 14:50 wrote it). False without a readable one."""
    try:
        return "n_grouped" in json.loads((Path(config_path).parent / "split.json").read_text())
    except (OSError, ValueError, TypeError):
        return False
