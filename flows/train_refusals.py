"""Refusals of ``lenshunt train`` options and paths that need no data, in the command's words.

Kept apart from :mod:`flows.train_args` (the parser): an option documented "with --X" given
without ``--X`` (trial: ``--grade-c lens`` without ``--grades`` trained a plain model, while
``--grades-only`` was refused), an ``--init`` path that does not exist (trial: the README's relative
path to the shipped model, run from another folder, named no way out), and an OUT inside a bundle's
training records (trial: the refusal suggested a folder there); and the note on ``--config`` fields
that ``--init`` leaves unused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.config_file import read_options_file
from pipeline.paths import shipped_model
from pipeline.training import TrainConfig, TrainingError, holds_bundle


def check_companions(given: dict[str, Any], config: dict[str, Any]) -> None:
    """Refuse an option given on the command line without the option it applies with.

    ``given``: the TrainConfig fields the command line gave (None: not given); ``config``: those of
    ``--config``. ``--trainable-layers`` and ``--grades-only`` are refused by
    :class:`~pipeline.training.TrainConfig` itself (their defaults say they were not given).

    Raises
    ------
    TrainingError
        For ``--keep-start``/``--no-keep-start`` without ``--init``, ``--grade-c`` without ``--grades``.

    Examples
    --------
    >>> check_companions({"grade_c_as": "lens"}, {})
    Traceback (most recent call last):
    ...
    pipeline.training.config.TrainingError: --grade-c applies to grade tables only: give --grades RUN_DIR too
    """
    if given.get("keep_start") is not None and (given.get("init") or config.get("init")) is None:
        flag = "--keep-start" if given["keep_start"] else "--no-keep-start"  # review: --keep-start was taken
        raise TrainingError(f"{flag} applies to fine-tuning only: give --init BUNDLE too")
    if given.get("grade_c_as") is not None and not (given.get("grades") or config.get("grades")):
        raise TrainingError("--grade-c applies to grade tables only: give --grades RUN_DIR too")


def check_init_exists(init: str | Path) -> None:
    """Refuse an ``--init`` path that does not exist, naming the folder it was looked for from and the
    shipped model's absolute path (a relative path is read from the current folder).

    Raises
    ------
    TrainingError
        If ``init`` does not exist.
    """
    path = Path(init)
    if path.exists():
        return
    where = "" if path.is_absolute() else f" (looked for from {Path.cwd()})"
    raise TrainingError(
        f"--init {init}: no model bundle at {path.absolute()}: the path does not exist{where}; "
        f"the shipped model is {shipped_model()}"
    )


def check_not_in_training_records(out: str | Path) -> None:
    """Refuse an OUT that is or lies in a bundle's ``training/`` folder, suggesting a folder beside
    that bundle (trial: a bundle's ``training/`` was refused with ``training/model`` as the fix).

    Raises
    ------
    TrainingError
        Naming the bundle and a free folder beside it.
    """
    out = Path(out)
    for folder in (out, *out.parents):
        if folder.name == "training" and holds_bundle(folder.parent):
            bundle = folder.parent
            raise TrainingError(
                f"{out} {'is' if folder == out else 'lies in'} the training records of the bundle {bundle}; "
                f"train into a folder beside that bundle (e.g. {_free_sibling(bundle)})"
            )


def _free_sibling(bundle: Path) -> Path:
    """``bundle-2`` beside ``bundle`` (or the first ``-N`` not taken)."""
    number = 2
    while (sibling := bundle.with_name(f"{bundle.name}-{number}")).exists():
        number += 1
    return sibling


MODEL_BUILDING = ("architecture", "build_options", "separate_outputs", "detached_outputs")
"""TrainConfig fields that shape a new model, dropped from a ``--config`` file under ``--init``."""


def unused_under_init(args: argparse.Namespace) -> str | None:
    """A note naming the ``--config`` file's model-building fields that ``--init`` leaves unused, or None.

    :func:`config_from_args` drops them (the fine-tune keeps its bundle's model); the note says so,
    with their values, instead of dropping them without a word (review).
    """
    if not args.config:
        return None
    config = read_options_file(args.config)
    init = getattr(args, "init", None) or config.get("init")
    defaults = TrainConfig().model_dump(mode="json")  # every run's file holds them (review: a note each time)
    unused = [
        f"{name}={config[name]!r}"
        for name in MODEL_BUILDING
        if config.get(name) not in (None, [], {}, defaults[name])
    ]
    if init is None or not unused:
        return None
    verb = "build" if len(unused) > 1 else "builds"
    return (
        f"note: --config {args.config} gives {', '.join(unused)}, which {verb} a new model; --init {init} "
        "keeps its bundle's model, so the file's model options are not used"
    )
