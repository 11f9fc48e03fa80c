"""One writer per store: an exclusive ``flock`` on ``STORE/_lenshunt/writer.lock``
(:func:`pipeline.locking.exclusive_lock`: never stale, released by the kernel however the holder
exits).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline import paths
from pipeline.errors import StoreBusyError
from pipeline.locking import exclusive_lock, lock_being_held


@contextlib.contextmanager
def store_writer_lock(store: str | os.PathLike[str], *, purpose: str = "ingest") -> Iterator[None]:
    """Hold the store's writer lock for the duration of the block.

    Raises
    ------
    StoreBusyError
        If another process holds the lock (it is writing the store now).
    """

    with exclusive_lock(
        paths.store_lock_file(Path(store)),
        purpose=purpose,
        refusal=lambda holder: _busy(store, holder),
        patience_s=_LOCK_PATIENCE_S,
    ):
        yield


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
    holder = store_being_written(store)
    if holder is not None:
        raise _busy(store, holder)


_LOCK_PATIENCE_S = 0.25
"""How long a writer retries the lock before refusing: a score run's probe
(:func:`store_being_written`) holds it for microseconds."""


def store_being_written(store: str | os.PathLike[str]) -> str | None:
    """Who holds ``store``'s writer lock now, or None when nobody does (:func:`lock_being_held`)."""
    return lock_being_held(paths.store_lock_file(Path(store)))
