"""Where a training run may write its bundle: OUT holds a lenshunt bundle, or nothing, and no store.

A training run writes its bundle's files into OUT, and ``--overwrite`` replaces OUT whole with the new
bundle (:mod:`pipeline.training.replacement`). So OUT must hold nothing but what training writes
(new-user trial: ``lenshunt train a.zarr a.zarr --overwrite`` replaced the store by the bundle, and
``lenshunt train proj/a.zarr proj --overwrite`` deleted the store and ``thesis.tex`` beside it).
As ``lenshunt score --overwrite`` removes only the files lenshunt names
(:func:`pipeline.scoring.parts.discard_score_run`), an OUT is accepted only where every entry in it
is named as training names its files (:data:`BUNDLE_ENTRIES`, :data:`TRAINING_RECORDS`), the
member folders of an ensemble (``fold-<i>``, ``seed-<i>``) holding the same.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from pipeline import paths
from pipeline.models.integrity import (
    CARD_FILE,
    ENSEMBLE_FILE,
    FEATURES_FILE,
    LAYOUT_FILE,
    MODEL_FILE,
    RECIPE_FILE,
)
from pipeline.models.parent import PARENT_FILE
from pipeline.training.config import TrainingError
from pipeline.training.finetune import check_init_out
from pipeline.training.out_of_fold import VALIDATION_SCORES_FILE

TRAINING_DIR = "training"
CHECKPOINT_FILE = "best.keras"
TRAIN_LOCK = paths.output_lock_file(Path(), "train").name
BUNDLE_ENTRIES = frozenset(
    {MODEL_FILE, RECIPE_FILE, CARD_FILE, ENSEMBLE_FILE, FEATURES_FILE, LAYOUT_FILE, TRAIN_LOCK}
)
"""Files training (or a later evaluation of the bundle) writes at a bundle's top level."""
TRAINING_RECORDS = frozenset(
    {"config.json", "split.json", "history.json", "grades.json", "start.json", PARENT_FILE, CHECKPOINT_FILE}
    | {VALIDATION_SCORES_FILE}
)
"""Files training writes in the bundle's ``training/`` folder."""
_DESKTOP_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
"""What a desktop's file browser leaves in a folder it showed (review trial: .DS_Store refused OUT)."""
_PARTIAL = re.compile(r"^\.(card\.json|ensemble\.json|features\.npz)\.\d+\.tmp(\.npz)?$")
_MEMBER = re.compile(r"^(fold|seed)-\d+$")
_SHOWN = 4


def check_output(
    out: Path,
    overwrite: bool,
    init: str | Path | None = None,
    store: str | Path | None = None,
    *,
    overwrite_option: str = "overwrite=True",
) -> None:
    """Refuse to train into ``out`` where the bundle would not be the only thing that run replaces.

    Parameters
    ----------
    out : the bundle folder the run writes (OUT, or a member folder of an ensemble)
    overwrite : whether a bundle at ``out`` may be replaced
    init : the bundle a fine-tune starts from, if any
    store : the training store, if known
    overwrite_option : how the refusal of a bundle at ``out`` names ``overwrite`` (the CLI: ``--overwrite``)

    Raises
    ------
    TrainingError
        If ``out`` is a file; is, lies in or holds ``store``, the ``init`` bundle or any Zarr store;
        holds anything training does not write (:func:`foreign_entries`); or holds a bundle and not
        ``overwrite``.

    Examples
    --------
    >>> check_output(Path("/no/such/model"), False)
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out} is a file; the output of training is a bundle directory")
    if init is not None:
        check_init_out(init, out)
    check_place(out, store, init)
    foreign = foreign_entries(out)
    if foreign:
        more = f" and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else ""
        shown = ", ".join(foreign[:_SHOWN]) + more
        raise TrainingError(
            f"{out} holds {shown}, which training did not write, and a bundle folder holds its bundle only "
            f"(--overwrite replaces it whole); train into a new or empty directory (e.g. {out / 'model'})"
        )
    if ((out / CARD_FILE).exists() or (out / ENSEMBLE_FILE).exists()) and not overwrite:
        raise TrainingError(
            f"{out} already holds a model bundle; choose another output directory or pass "
            f"{overwrite_option} to replace it"
        )


def check_place(out: Path, store: str | Path | None, init: str | Path | None = None) -> None:
    """Refuse an ``out`` that is, lies in or holds the training ``store`` or the ``init`` bundle, or lies
    in any Zarr store (a ``zarr.json`` in it or a folder above).

    Raises
    ------
    TrainingError
        Naming the store or bundle, and the fix.
    """
    target = Path(out).resolve()
    for what, given in (("the training store", store), ("the --init bundle", init)):
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source or source in target.parents or target in source.parents:
            where = "is" if target == source else "lies in" if source in target.parents else "holds"
            raise TrainingError(
                f"the output directory {out} {where} {what} {given}, which a bundle written there (or "
                "replaced with --overwrite) would damage; train into a directory outside it"
            )
    for folder in (target, *target.parents):
        if (folder / "zarr.json").is_file():
            where = "is a Zarr store" if folder == target else f"lies in the Zarr store {folder}"
            raise TrainingError(
                f"the output directory {out} {where}; train into a directory outside any store"
            )


def foreign_entries(out: Path, *, members: bool = True) -> list[str]:
    """What ``out`` holds that training does not write, relative to ``out`` (sorted); [] where ``out``
    is absent, empty or a bundle (or an unfinished one) and nothing else."""
    out = Path(out)
    if not out.is_dir():
        return []
    foreign = []
    for entry in sorted(out.iterdir()):
        name = entry.name
        if entry.is_symlink():
            foreign.append(name)
        elif name in _DESKTOP_FILES and entry.is_file():
            continue
        elif name in BUNDLE_ENTRIES or _PARTIAL.match(name):
            if not entry.is_file():
                foreign.append(name)
        elif name == TRAINING_DIR and entry.is_dir():
            foreign += [
                f"{name}/{inner.name}"
                for inner in sorted(entry.iterdir())
                if inner.name not in TRAINING_RECORDS or inner.is_symlink() or not inner.is_file()
            ]
        elif members and _MEMBER.match(name) and entry.is_dir():
            foreign += [f"{name}/{inner}" for inner in foreign_entries(entry, members=False)]
        else:
            foreign.append(name)
    return foreign


def first_missing(out: Path) -> Path | None:
    """The highest of ``out`` and its parents that does not exist (what a run writing ``out`` makes);
    None where ``out`` exists."""
    out = Path(out).absolute()
    if out.exists():
        return None
    while not out.parent.exists() and out.parent != out:
        out = out.parent
    return out


def remove_unfinished(out: Path, made: Path | None = None) -> bool:
    """Remove ``out`` where it holds no bundle, no member bundle and nothing training did not write
    (what a run that made ``out`` and failed before its bundle leaves), and the folders above it up to
    ``made`` (:func:`first_missing` before the run) that are left empty; whether it removed ``out``.

    Review trial: ``lenshunt train STORE new1/a/b`` that failed removed ``b`` and left ``new1/a``."""
    out = Path(out)
    if not out.is_dir() or foreign_entries(out):
        return False
    if any(out.glob(CARD_FILE)) or any(out.glob(ENSEMBLE_FILE)) or any(out.glob(f"*/{CARD_FILE}")):
        return False
    shutil.rmtree(out, ignore_errors=True)
    if made is not None:
        folder = out.absolute().parent
        while made in (folder, *folder.parents) and folder != made.parent:
            try:
                folder.rmdir()  # only an empty folder
            except OSError:
                break
            folder = folder.parent
    return True


@contextlib.contextmanager
def removed_if_unfinished(out: str | Path) -> Iterator[None]:
    """Remove ``out`` (and the folders above it made with it) when the block raises, where the block
    made it and it holds no bundle (:func:`remove_unfinished`): what ``lenshunt train`` does, for
    callers of :func:`pipeline.training.train` (note 47: a failed call left OUT holding
    ``training/config.json``). An ``out`` that existed before is kept as the block left it.
    """
    made = first_missing(Path(out))
    try:
        yield
    except BaseException:
        if made is not None:
            remove_unfinished(Path(out), made)
        raise
