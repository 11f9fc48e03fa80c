"""One writer per store: an exclusive ``flock`` on ``STORE/_lenshunt/writer.lock``.

The kernel releases an ``flock`` when the process holding it exits, however it exits (SIGKILL
included), so a lock can never go stale: the next writer after a kill simply gets it. The file
keeps the holder's pid, host and start time only to name it in the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline import paths
from pipeline.errors import StoreBusyError


@contextlib.contextmanager
def store_writer_lock(store: str | os.PathLike[str], *, purpose: str = "ingest") -> Iterator[None]:
    """Hold the store's writer lock for the duration of the block.

    Raises
    ------
    StoreBusyError
        If another process holds the lock (it is writing the store now).
    """
    lock_path = paths.store_lock_file(Path(store))
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock_within(fd, _LOCK_PATIENCE_S):
            holder = _read_holder(fd)
            raise StoreBusyError(
                f"store {store} is being written by another lenshunt process ({holder}); wait for it "
                "to finish and rerun (a rerun adds only what is still missing)"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "purpose": purpose}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_LOCK_PATIENCE_S = 0.25
"""How long a writer retries the lock before refusing: a score run's probe
(:func:`store_being_written`) holds it for microseconds."""


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


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"{info.get('purpose', 'writer')} pid {info.get('pid')} on {info.get('host')} since {since}"


def store_being_written(store: str | os.PathLike[str]) -> str | None:
    """Who holds ``store``'s writer lock now, or None when nobody does (a probe: a shared lock taken
    and dropped at once, so a writer starting in that microsecond is the only one it can get in the
    way of)."""
    lock_path = paths.store_lock_file(Path(store))
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
