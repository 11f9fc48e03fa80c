"""Exclusive ``flock`` locks on files: one store writer, one score or train run per output folder.

The kernel releases an ``flock`` when the process holding it exits, however it exits (SIGKILL
included), so a lock can never go stale: the next process after a kill simply gets it. The lock
file keeps the holder's purpose, pid, host and start time only to name it in a refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline import paths
from pipeline.errors import OutputBusyError, OutputPathError


@contextlib.contextmanager
def exclusive_lock(
    lock_path: str | os.PathLike[str],
    *,
    purpose: str,
    refusal: Callable[[str], Exception],
    patience_s: float = 0.25,
    remove: bool = False,
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created with its folder) for the block.

    A lock file its holder removed as it released it (``remove``) is not held by a process that had
    it open and took its lock then: that process opens the path anew (a new file, or another's).

    Parameters
    ----------
    lock_path : the lock file
    purpose : what the holder does, recorded for the refusal of others (``"ingest"``, ``"score"``)
    refusal : the error to raise, given who holds the lock (:func:`lock_holder`'s words)
    patience_s : how long to retry before refusing, seconds
    remove : remove the lock file, still holding its lock, when the block ends (trial: a finished
        bundle kept an empty ``.lenshunt-train.lock``)

    Raises
    ------
    Exception
        ``refusal(holder)``, if another process holds the lock for longer than ``patience_s``.
    """
    lock_path = Path(lock_path)
    fd, writable = _open_locked(lock_path, refusal, patience_s)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "purpose": purpose}
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            if writable:
                os.ftruncate(fd, 0)
            if remove and _is_file_of(fd, lock_path):  # removed before it is released: no one holds it
                with contextlib.suppress(OSError):
                    lock_path.unlink()
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_locked(lock_path: Path, refusal: Callable[[str], Exception], patience_s: float) -> tuple[int, bool]:
    """(fd, writable) of ``lock_path`` opened and exclusively locked, the lock file still at its path."""
    while True:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:  # the umask decides who else may write it (a shared folder: a colleague's rerun)
            fd, writable = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666), True
        except PermissionError:  # another user's lock file: it locks as well read-only, unnamed
            fd, writable = os.open(lock_path, os.O_RDONLY), False
        except FileNotFoundError:  # its folder, removed since by a holder that made it for the lock alone
            continue
        try:
            if not _lock_within(fd, patience_s):
                raise refusal(lock_holder(fd)) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_file_of(fd, lock_path):
            return fd, writable
        os.close(fd)  # its holder removed it as it released it: lock the file now at the path


def _is_file_of(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is the file at ``path`` (not one removed or replaced since)."""
    try:
        at_path = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)


@contextlib.contextmanager
def output_lock(
    out: str | os.PathLike[str],
    *,
    purpose: str,
    advice: str,
    lock: str | None = None,
    remove: bool = False,
) -> Iterator[None]:
    """Hold ``out``'s ``lock`` (default: ``purpose``; :func:`pipeline.paths.output_lock_file`), ``out`` made.

    Two runs writing one folder would write the same files (score parts, catalogs, checkpoints, a
    bundle's card); the second is refused at once, naming the first. Re-entrant within a process,
    from any thread: a score flow holds its folder's lock from before its cluster starts, and the
    scoring and the grade consensus it runs take it again; the last to leave releases it (review:
    the first did, under a thread still writing). ``remove``: the lock file is removed as the last
    holder releases it (:func:`exclusive_lock`).

    Raises
    ------
    OutputPathError
        If ``out`` is a file.
    OutputBusyError
        If another process holds the lock (:func:`busy_error`).
    """
    if Path(out).exists() and not Path(out).is_dir():  # review: mkdir's "File exists" said less
        raise OutputPathError(f"{out} is a file, not a directory; pass a directory path")
    lock_path = paths.output_lock_file(Path(out), lock or purpose).resolve()
    take = functools.partial(_output_hold, out, lock_path, purpose=purpose, advice=advice, remove=remove)
    with shared_hold(lock_path, take):
        yield


@contextlib.contextmanager
def _output_hold(
    out: str | os.PathLike[str], lock_path: Path, *, purpose: str, advice: str, remove: bool
) -> Iterator[None]:
    """``out`` made and its lock held (:func:`exclusive_lock`), for :func:`output_lock`."""
    Path(out).mkdir(parents=True, exist_ok=True)
    refusal = functools.partial(busy_error, out, advice=advice)
    with exclusive_lock(lock_path, purpose=purpose, refusal=refusal, remove=remove):
        yield


def remove_lock_alone(lock_path: str | os.PathLike[str], keep: str | os.PathLike[str]) -> None:
    """Remove the lock file at ``lock_path`` where its folder holds nothing else, and the folders above
    it that this leaves empty, up to ``keep`` (kept): what a command made for its lock alone. Its
    holder calls this before it releases the lock, so that no other process's folder is removed (one
    waiting for the lock finds the file gone and makes it again: :func:`exclusive_lock`)."""
    lock_path, keep = Path(lock_path).absolute(), Path(keep).absolute()
    folder = lock_path.parent
    with contextlib.suppress(OSError):
        if {entry.name for entry in folder.iterdir()} - {lock_path.name}:
            return
        lock_path.unlink(missing_ok=True)
        while folder != keep and keep in folder.parents and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


@contextlib.contextmanager
def shared_hold(
    lock_path: str | os.PathLike[str], take: Callable[[], contextlib.AbstractContextManager[object]]
) -> Iterator[None]:
    """Hold the lock at ``lock_path`` for the block, re-entrant within this process, from any thread:
    the first holder takes it (enters ``take()``), later ones join it, and the last to leave releases
    it (exits what ``take()`` gave), whichever thread that is; :func:`held_here` says it is held.

    A command holds the lock of what it writes from its start (``flows.cli``) and the flow it runs
    takes it again; a stage's work may still run in a thread when the command is stopped (review:
    the first holder released it, under a thread still writing).
    """
    lock_path = Path(lock_path).resolve()
    with _HELD_LOCK:
        gate = _GATES.setdefault(lock_path, threading.Lock())
    with gate:  # one thread of this process takes the lock, or joins the holder, at a time
        if lock_path not in _HELD:
            held = contextlib.ExitStack()
            held.enter_context(take())
            _HELD[lock_path] = [0, held]
        _HELD[lock_path][0] += 1
    try:
        yield
    finally:
        with gate:
            _HELD[lock_path][0] -= 1
            if _HELD[lock_path][0] == 0:
                _HELD.pop(lock_path)[1].close()  # releases the lock


def keep_lock_file(lock_path: str | os.PathLike[str], into: str | os.PathLike[str]) -> None:
    """Give the lock file at ``lock_path`` a second name ``into``, in a folder about to take its
    folder's place by a rename (a hard link: the same file, which its holder's ``flock`` is on), so
    that the lock is still the one at its path after the rename; where the file system has no hard
    links, the file is moved there. Nothing where there is no lock file."""
    with contextlib.suppress(FileNotFoundError):
        Path(into).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(lock_path, into)
        except FileNotFoundError:  # no lock file (suppressed)
            raise
        except OSError:  # no hard links here (or ``into`` exists): the file itself goes
            os.replace(lock_path, into)


def held_here(lock_path: str | os.PathLike[str]) -> bool:
    """Whether this process holds the lock at ``lock_path`` through :func:`shared_hold`."""
    return Path(lock_path).resolve() in _HELD


@contextlib.contextmanager
def output_lock_from_start(
    out: str | os.PathLike[str], *, purpose: str, advice: str, lock: str | None = None
) -> Iterator[None]:
    """:func:`output_lock` of ``out``, taken by a command before its flow starts and held to its end
    (the flow's own taking of it joins this one); where the command made ``out`` and left nothing in
    it but the lock file (a refusal inside the flow), ``out`` is removed again.

    Trial: a second ``lenshunt run`` into one work directory, started a second after the first, began
    a Prefect flow run before it was refused: the first took the lock only inside its flow.

    Raises
    ------
    OutputBusyError, OutputPathError
        As :func:`output_lock`.
    """
    out = Path(out).absolute()
    made = next((folder for folder in (*reversed(out.parents), out) if not folder.exists()), None)
    with output_lock(out, purpose=purpose, advice=advice, lock=lock):
        try:
            yield
        finally:  # still held: no other process takes the folder while it goes (a waiting one makes it anew)
            if made is not None and out.is_dir() and _only_own_files(out):
                _remove_own_files(out)
                for folder in (out, *out.parents):
                    if folder == made.parent or any(folder.iterdir()):
                        break
                    folder.rmdir()


def _only_own_files(folder: Path) -> bool:
    """Whether ``folder`` holds lenshunt's own lock and bookkeeping files
    (:data:`pipeline.paths.OWN_FILE_PREFIX`) and folders of only those, nothing else. Trial: a run
    refused inside its flow (an empty source) left its work directory with ``.lenshunt-run.lock``,
    ``.lenshunt-run.flow-run`` and ``scores/.lenshunt-score.lock``."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if not _only_own_files(entry):
                return False
        elif not entry.name.startswith(paths.OWN_FILE_PREFIX):
            return False
    return True


def _remove_own_files(folder: Path) -> None:
    """Remove what :func:`_only_own_files` found in ``folder`` (the folder itself stays)."""
    for root, folders, files in os.walk(folder, topdown=False):
        for name in files:
            Path(root, name).unlink(missing_ok=True)
        for name in folders:
            with contextlib.suppress(OSError):
                Path(root, name).rmdir()


SCORE_FOLDER_ADVICE = (
    "wait for it to finish (a score run's rerun then scores only what is missing), or use another folder"
)
"""What a refused writer of a score run's folder is told to do."""


def score_folder_lock(
    out: str | os.PathLike[str], *, purpose: str = "score"
) -> contextlib.AbstractContextManager[None]:
    """The lock of a score run's folder (``.lenshunt-score.lock``), held by whatever writes its parts,
    catalogs or report: the score run, the grade consensus (``lenshunt inspect --apply``) and the
    evaluation (``lenshunt evaluate``), each as ``purpose`` (:func:`output_lock`)."""
    return output_lock(out, purpose=purpose, advice=SCORE_FOLDER_ADVICE, lock="score")


_HELD: dict[Path, list] = {}
"""Locks this process holds: lock file -> [holders, the held flock] (:func:`shared_hold`)."""
_GATES: dict[Path, threading.Lock] = {}
"""One thread lock per lock file, serialising this process's takers and leavers of it."""
_HELD_LOCK = threading.Lock()


def busy_error(out: str | os.PathLike[str], holder: str, *, advice: str) -> OutputBusyError:
    """The refusal of a run into ``out`` while ``holder`` (:func:`lock_holder`'s words) writes it."""
    return OutputBusyError(f"{out} is being written by another lenshunt process ({holder}); {advice}")


def check_not_busy(out: str | os.PathLike[str], *, lock: str, advice: str) -> None:
    """Refuse now, before a flow starts, if another process holds ``out``'s ``lock``.

    A probe (a shared lock taken and dropped at once), for the one-line refusal of a command's
    checks; :func:`output_lock` still decides.

    Raises
    ------
    OutputBusyError
        If another process holds the lock (:func:`busy_error`).
    """
    lock_path = paths.output_lock_file(Path(out), lock)
    if held_here(lock_path):  # this process's own (a command holding it from its start: flows.cli)
        return
    holder = lock_being_held(lock_path)
    if holder is not None:
        raise busy_error(out, holder, advice=advice)


def lock_being_held(lock_path: str | os.PathLike[str]) -> str | None:
    """Who holds the lock at ``lock_path`` now, or None when nobody does (a probe: a shared lock taken
    and dropped at once, so a holder starting in that microsecond is the only one it can get in the
    way of)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


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
