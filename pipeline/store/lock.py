"""One writer per store: an exclusive ``flock`` on ``STORE/_lenshunt/writer.lock``
(:func:`pipeline.locking.exclusive_lock`: never stale, released by the kernel however the holder
exits).

A writer takes the lock before it makes a new store (:func:`pipeline.store.ingest`): ``STORE`` then
holds the lock file alone until the store is put in its place around it
(:func:`pipeline.store.create_store` keeps the lock file's inode), so that only the lock's holder
makes the store. A holder that ends without a store there removes what it made for the lock.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline import paths
from pipeline.errors import StoreBusyError
from pipeline.locking import exclusive_lock, held_here, lock_being_held, remove_lock_alone, shared_hold


@contextlib.contextmanager
def store_writer_lock(store: str | os.PathLike[str], *, purpose: str = "ingest") -> Iterator[None]:
    """Hold the store's writer lock for the duration of the block.

    Not re-entrant, except that it joins the hold of a command of this process that holds it from its
    start (:func:`store_lock_from_start`: ``lenshunt ingest``, whose ingest takes it again).

    Raises
    ------
    StoreBusyError
        If another process holds the lock (it is writing the store now).
    """
    lock_path = paths.store_lock_file(Path(store))
    if held_here(lock_path):
        with shared_hold(lock_path, functools.partial(_writer_hold, store, purpose)):
            yield
        return
    with _writer_hold(store, purpose):
        yield


def store_lock_from_start(
    store: str | os.PathLike[str], *, purpose: str
) -> contextlib.AbstractContextManager[None]:
    """The store's writer lock, held by a command from before its flow starts to its end; the ingest
    it runs (:func:`store_writer_lock`, in any thread of this process) joins it, and the last to leave
    releases it. Trial: a second ``lenshunt ingest`` into one store began a Prefect flow run before it
    was refused, the first having taken the lock only inside its flow.

    Raises
    ------
    StoreBusyError
        If another process holds the lock.
    """
    lock_path = paths.store_lock_file(Path(store))
    return shared_hold(lock_path, functools.partial(_writer_hold, store, purpose))


@contextlib.contextmanager
def _writer_hold(store: str | os.PathLike[str], purpose: str) -> Iterator[None]:
    """The writer lock held; where no store is there at the end (``zarr.json``), the lock file and the
    folders made for it (``STORE`` too, where it held nothing else before) are removed, still held."""
    given, store = store, Path(store).absolute()
    made = next((folder for folder in (*reversed(store.parents), store) if not folder.exists()), None)
    if made is None and only_writer_lock(store):  # left by a holder killed before it made the store
        made = store
    with exclusive_lock(
        paths.store_lock_file(store),
        purpose=purpose,
        refusal=functools.partial(_busy, given),
        patience_s=_LOCK_PATIENCE_S,
    ):
        try:
            yield
        finally:
            if not (store / "zarr.json").exists():
                remove_lock_alone(paths.store_lock_file(store), made.parent if made else store)


def only_writer_lock(store: str | os.PathLike[str]) -> bool:
    """Whether ``store`` is a folder holding its writer lock file and nothing else: no store yet (a
    writer holds the lock of the store it is about to make, or was killed before it made it)."""
    store = Path(store)
    try:
        if {entry.name for entry in store.iterdir()} != {paths.BOOKKEEPING}:
            return False
        kept = {entry.name for entry in paths.bookkeeping_dir(store).iterdir()}
    except OSError:
        return False
    return kept <= {paths.store_lock_file(store).name}


def _busy(store: str | os.PathLike[str], holder: str) -> StoreBusyError:
    return StoreBusyError(
        f"store {store} is being written by another lenshunt process ({holder}); wait for it "
        "to finish and rerun (a rerun adds only what is still missing)"
    )


def check_store_not_busy(store: str | os.PathLike[str]) -> None:
    """Refuse now if another process writes ``store`` (a probe, :func:`store_being_written`): the
    one-line refusal of a command's checks, before Prefect and Dask start, and the reason a scheduled
    firing is skipped (trial: a nightly run that met a daytime ingest still writing its store ended
    Failed, with two tracebacks); :func:`store_writer_lock` still decides.

    Raises
    ------
    StoreBusyError
        If another process holds the store's writer lock, naming it.
    """
    holder = store_writer_elsewhere(store)
    if holder is not None:
        raise _busy(store, holder)


_LOCK_PATIENCE_S = 0.25
"""How long a writer retries the lock before refusing: a score run's probe
(:func:`store_being_written`) holds it for microseconds."""


def store_being_written(store: str | os.PathLike[str]) -> str | None:
    """Who holds ``store``'s writer lock now, or None when nobody does (:func:`lock_being_held`)."""
    return lock_being_held(paths.store_lock_file(Path(store)))


def store_writer_elsewhere(store: str | os.PathLike[str]) -> str | None:
    """Who of another process holds ``store``'s writer lock now (:func:`store_being_written`'s words:
    ``"ingest of SRC pid 12 on host since 2025-01-02 03:04:05"``), or None when nobody does or this
    process holds it (a command's own, from its start: ``lenshunt run``, whose score reads its store)."""
    if held_here(paths.store_lock_file(Path(store))):
        return None
    return store_being_written(store)
