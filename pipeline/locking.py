"""Exclusive ``flock`` locks on files: one store writer, one score or train run per output folder.

The kernel releases an ``flock`` when the process holding it exits, however it exits (SIGKILL
included), so a lock can never go stale: the next process after a kill simply gets it. The lock
file keeps the holder's purpose, pid, host and start time only to name it in a refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline import paths
from pipeline.errors import OutputBusyError


@contextlib.contextmanager
def exclusive_lock(
    lock_path: str | os.PathLike[str],
    *,
    purpose: str,
    refusal: Callable[[str], Exception],
    patience_s: float = 0.25,
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created with its folder) for the block.

    Parameters
    ----------
    lock_path : the lock file
    purpose : what the holder does, recorded for the refusal of others (``"ingest"``, ``"score"``)
    refusal : the error to raise, given who holds the lock (:func:`lock_holder`'s words)
    patience_s : how long to retry before refusing, seconds

    Raises
    ------
    Exception
        ``refusal(holder)``, if another process holds the lock for longer than ``patience_s``.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:  # the umask decides who else may write it (a shared folder: a colleague's rerun)
        fd, writable = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666), True
    except PermissionError:  # another user's lock file: it locks as well read-only, unnamed
        fd, writable = os.open(lock_path, os.O_RDONLY), False
    try:
        if not _lock_within(fd, patience_s):
            raise refusal(lock_holder(fd)) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "purpose": purpose}
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            if writable:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str], *, purpose: str, advice: str) -> Iterator[None]:
    """Hold ``out``'s lock for ``purpose`` runs (:func:`pipeline.paths.output_lock_file`), ``out`` made.

    Two runs writing one folder would write the same files (score parts, checkpoints, a bundle's
    card); the second is refused at once, naming the first.

    Raises
    ------
    OutputBusyError
        If another process holds the lock: "OUT is being written by another lenshunt PURPOSE
        (its holder); ADVICE".
    """

    def refusal(holder: str) -> OutputBusyError:
        return OutputBusyError(f"{out} is being written by another lenshunt {purpose} ({holder}); {advice}")

    Path(out).mkdir(parents=True, exist_ok=True)
    with exclusive_lock(paths.output_lock_file(Path(out), purpose), purpose=purpose, refusal=refusal):
        yield


def _lock_within(fd: int, seconds: float) -> bool:
    """Take the exclusive lock on ``fd``, retrying for ``seconds``; False if another holds it still."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def lock_holder(fd: int) -> str:
    """Who holds the lock whose file is open as ``fd``, in words (``"score pid 12 on host since ..."``)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"{info.get('purpose', 'writer')} pid {info.get('pid')} on {info.get('host')} since {since}"
