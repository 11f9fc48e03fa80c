"""``--overwrite`` that leaves the old bundle whole until the new one is complete.

A training run that replaces a bundle (``OUT`` holds ``card.json`` or ``ensemble.json``) writes the
new one into a working folder beside it, ``.<OUT name>.overwrite``, and only a finished run puts it
in OUT's place: the two folders are exchanged in one ``renameat2(RENAME_EXCHANGE)`` where the system
has it, else OUT is renamed to ``.<OUT name>.replaced`` and the new bundle to OUT. A run stopped at
any moment leaves OUT the whole old bundle or the whole new one (trial: a stopped ``--overwrite`` left
the old model beside the stopped run's ``split.json``, ``config.json`` and ``best.keras``). What a
killed run left beside OUT is removed by the next run into it (:func:`clear_leftovers`), and a kill
between the two renames is undone there (the old bundle goes back to OUT).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from pipeline import paths
from pipeline.atomic import exchange as _exchange
from pipeline.locking import held_here, keep_lock_file

WORKING_SUFFIX = ".overwrite"
ASIDE_SUFFIX = ".replaced"


def working_dir(out: str | os.PathLike[str]) -> Path:
    """The folder a run replacing the bundle at ``out`` trains into.

    Examples
    --------
    >>> working_dir("models/m1").as_posix()
    'models/.m1.overwrite'
    """
    out = Path(out)
    return out.with_name(f".{out.name}{WORKING_SUFFIX}")


def aside_dir(out: str | os.PathLike[str]) -> Path:
    """Where the old bundle lies between the two renames that replace it (no exchange rename).

    Examples
    --------
    >>> aside_dir("models/m1").as_posix()
    'models/.m1.replaced'
    """
    out = Path(out)
    return out.with_name(f".{out.name}{ASIDE_SUFFIX}")


def holds_bundle(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` holds a finished bundle or ensemble (its card or ``ensemble.json``)."""
    from pipeline.models.bundle import CARD_FILE, ENSEMBLE_FILE

    out = Path(out)
    return (out / CARD_FILE).is_file() or (out / ENSEMBLE_FILE).is_file()


def clear_leftovers(out: str | os.PathLike[str]) -> None:
    """Remove what a stopped replacing run left beside ``out``; put the old bundle back where a kill
    came between the two renames that replace it (``out`` gone, the old bundle aside)."""
    out, aside = Path(out), aside_dir(out)
    if aside.is_dir() and not holds_bundle(out):  # OUT gone, or only the lock a flow made there since
        out.mkdir(parents=True, exist_ok=True)
        for entry in aside.iterdir():
            if not (out / entry.name).exists():
                os.rename(entry, out / entry.name)
    for folder in (working_dir(out), aside):
        if folder.is_dir():
            shutil.rmtree(folder)


@contextlib.contextmanager
def replacing(out: str | os.PathLike[str], overwrite: bool) -> Iterator[Path]:
    """The folder to write the bundle of ``out`` into: ``out`` itself unless ``overwrite`` replaces a
    bundle there, else a fresh working folder that takes ``out``'s place when the block ends without
    an error (and is removed when it raises, a stop included)."""
    out = Path(out)
    clear_leftovers(out)
    if not (overwrite and holds_bundle(out)):
        yield out
        return
    work = working_dir(out)
    work.mkdir()
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _put_in_place(work, out)


def _put_in_place(work: Path, out: Path) -> None:
    """Make ``work`` the bundle at ``out``; the old bundle is removed. The lock file of ``out`` this
    process holds goes with it (:func:`pipeline.locking.keep_lock_file`; review: from the exchange to
    the end of ``lenshunt train``, which holds it from its start, OUT had no lock a second run met)."""
    lock = paths.output_lock_file(out, "train")
    if held_here(lock):
        keep_lock_file(lock, paths.output_lock_file(work, "train"))
    if _exchange(work, out):
        shutil.rmtree(work)  # now the old bundle
        return
    aside = aside_dir(out)
    os.rename(out, aside)
    os.rename(work, out)
    shutil.rmtree(aside)
