"""Moving an evaluation's finished files into place across file systems, all or none.

An evaluation writes into a staging folder inside ``report/`` and renames each file into place. A
rename cannot cross file systems (``EXDEV``): a trial made ``report/`` a link into ``/dev/shm``, so
``metrics.json`` (in the run's folder) could not be renamed out of the staging folder, and the
evaluation stopped with figures moved and the old page left. Here each file from another file
system is first copied beside its target (``.NAME.PID.tmp``), all before any target is replaced,
so a failed copy (a full disk) leaves every target as it was; the renames that follow are within
one folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from pipeline.atomic import temporary_beside

__all__ = ["bring_beside", "replace_all"]

Move = tuple[Path, Path]
"""A file to move, and where it goes."""


def _copy_beside(source: Path, target: Path) -> Path:
    temporary = temporary_beside(target)
    try:
        shutil.copyfile(source, temporary)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    return temporary


def _same_file_system(source: Path, folder: Path) -> bool:
    return os.stat(source).st_dev == os.stat(folder).st_dev


def bring_beside(moves: list[Move]) -> list[Move]:
    """Make each source renameable onto its target: a copy beside the target where they differ in file system.

    Parameters
    ----------
    moves : list of (pathlib.Path, pathlib.Path)
        Each file and its target; the target's folder is created.

    Returns
    -------
    list of (pathlib.Path, pathlib.Path)
        The same moves, in order, with each source on another file system than its target's folder
        replaced by its copy ``.NAME.PID.tmp`` beside the target; for :func:`replace_all`.

    Raises
    ------
    OSError
        As a folder's creation or a copy raised it; the copies already made are deleted, and no
        target has changed.
    """
    ready: list[Move] = []
    try:
        for source, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            if _same_file_system(source, target.parent):
                ready.append((source, target))
            else:
                ready.append((_copy_beside(source, target), target))
    except BaseException:
        for (path, _target), (source, _) in zip(ready, moves, strict=False):
            if path != source:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
        raise
    return ready


def replace_all(ready: list[Move]) -> None:
    """Rename each file onto its target, in order (:func:`os.replace`).

    A rename that still crosses file systems (two mounts of one file system share a device number)
    copies beside the target and renames that.

    Parameters
    ----------
    ready : list of (pathlib.Path, pathlib.Path)
        As :func:`bring_beside` returned them.

    Raises
    ------
    OSError
        As a rename or copy raised it.
    """
    for path, target in ready:
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            temporary = _copy_beside(path, target)
            try:
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
