"""Whole-file writes that readers never see half done, and that leave nothing behind when they fail."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temporary_beside(path: str | os.PathLike[str]) -> Path:
    """The temporary name a whole-file write of ``path`` goes through: ``.NAME.PID.tmp`` beside it
    (hidden, on the same file system, so a rename puts it in place; one per process).

    >>> temporary_beside("out/catalog.fits").name.startswith(".catalog.fits.")
    True
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file beside it and a rename; return the path.

    A failed write or rename (a full disk, an immutable or unwritable target) deletes the temporary
    (``.NAME.PID.tmp``) before the error propagates (trial: each failed report left one behind).

    Raises
    ------
    OSError
        As the write or :func:`os.replace` raised it.
    """
    path = Path(path)
    temporary = temporary_beside(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    return path


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise the error :func:`write_text_atomic` would meet at ``path``, changing nothing a reader sees.

    Nothing is copied or replaced: a rename over an existing file needs only that a new file can be
    made in its folder (POSIX), which a temporary file made and removed there shows, and that the
    file is not immutable (or append-only), which a hard link made to it and removed shows (Linux
    refuses both for such a file). Its bytes, inode, mode and times stay (trial: each probe copied
    every flat catalog over itself, a full copy per run, and the report's hard links to them came
    apart). A file system without hard links is probed by opening the file for update instead. For
    a missing file (or a symbolic link) the temporary file is made in its folder, or in the nearest
    folder above that exists (where it would be made). Used before an evaluation or a score run
    writes anything (trial: its new gallery pictures were written, then its page failed, and the
    old page stood beside pictures of another catalog). A full disk is not foreseen: the writes go
    through temporaries, so one that fails leaves the old file.

    Raises
    ------
    OSError
        As creating or linking raised it (``filename``: the file or folder).
    """
    path = Path(path)
    if path.is_file() and not path.is_symlink():  # a link stays a link; its folder is probed below
        check_creatable(path.parent)  # trial: a folder that takes no file was named by a temporary's name
        _check_not_immutable(path)
        return
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    check_creatable(folder)


def _check_not_immutable(path: Path) -> None:
    """Raise ``PermissionError`` (``filename``: ``path``) where ``path`` is immutable or append-only.

    A hard link to it is made beside it and removed (its link count and ctime change a moment);
    where the file system makes no hard links, opening it for update tells instead.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.probe.tmp")
    try:
        os.link(path, temporary)
    except FileExistsError:
        temporary.unlink()
        os.link(path, temporary)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES):
            return  # no hard links here (EMLINK, EOPNOTSUPP, ...): not immutable by this test
        try:
            check_writable(path)  # a file system without hard links (vfat: EPERM) takes an update
            return
        except OSError:
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    os.unlink(temporary)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Swap two existing paths (folders) in one rename (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system or file system cannot (nothing is changed then)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return done == 0


def check_creatable(folder: str | os.PathLike[str]) -> None:
    """Raise where no new file can be made in ``folder`` (read-only, immutable, not enterable).

    A temporary file is made and removed.

    Raises
    ------
    OSError
        As creating it raised it, ``filename`` the folder (not the temporary).
    """
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".lenshunt-probe.", suffix=".tmp")
    except OSError as exc:  # name the folder, not a temporary that never was
        raise type(exc)(exc.errno, exc.strerror, str(folder)) from None
    os.close(handle)
    os.unlink(name)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise where the existing file ``path`` cannot be written in place (what ``open(path, "wb")``
    meets: an immutable or read-only file); it is opened for update and closed, unchanged.

    Raises
    ------
    OSError
        As opening it raised it.
    """
    with open(path, "r+b"):
        pass


#: What FITS writers say of a full disk without an errno: astropy's own free-space check, and
#: cfitsio's WRITE_ERROR (status 106), which any failed write gives (so it counts only where the
#: disk is nearly full, :data:`NEARLY_FULL_BYTES`).
_FULL_DISK_TEXT = ("Not enough space on disk",)
_WRITE_ERROR_TEXT = ("FITSIO status = 106", "error writing to FITS file")
NEARLY_FULL_BYTES = 1 << 20


@contextlib.contextmanager
def full_disk_as_enospc(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise a FITS writer's full-disk error, which has no errno, as ``OSError(ENOSPC)``.

    Trial: ``lenshunt simulate`` on a full disk ended in a traceback of ``OSError: FITSIO status =
    106: error writing to FITS file`` (a bug, it said), ``lenshunt cutout`` in astropy's ``OSError:
    Not enough space on disk``: neither carries ``errno``, so the CLI could not say "writing in
    FOLDER: No space left on device; ..." (:mod:`flows.failures`). The new error names no file, so
    the command's note of the folder it writes is used.
    """
    try:
        yield
    except OSError as exc:
        text = str(exc)
        if exc.errno is not None:
            raise
        full = any(words in text for words in _FULL_DISK_TEXT)
        if not full and any(words in text for words in _WRITE_ERROR_TEXT):
            with contextlib.suppress(OSError):
                full = shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
        if not full:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from exc
