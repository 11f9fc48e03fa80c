"""Files a killed writer left in a store, removed by the next writer.

Zarr's local store writes each chunk or shard to ``NAME.<32 hex>.partial`` beside it and renames
it into place (``zarr.storage.LocalStore``, ``_atomic_write``); lenshunt's bookkeeping writes go
through ``NAME.tmp`` or ``.NAME.PID.tmp`` in ``STORE/_lenshunt/`` (:func:`pipeline.atomic.temporary_beside`,
:func:`pipeline.store.repair.write_json_atomic`). A ``kill -9`` between the write and the rename
leaves that file: never read (readers open only the final names), but a killed shard write leaves
up to a shard's bytes behind (trial: a 165 MB ``*.partial`` after a kill during an ingest). Only the
holder of the store's writer lock (:func:`pipeline.store.lock.store_writer_lock`) writes a store,
so when a writer holds it every such file is a dead writer's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline import paths

_ZARR_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")
"""Zarr's temporary name: ``path.with_suffix(f".{uuid.uuid4().hex}.partial")``."""


@dataclass(frozen=True)
class Leftovers:
    """Unfinished writes found (or removed) in one store."""

    n_files: int = 0
    n_bytes: int = 0

    def line(self) -> str | None:
        """The ingest report's line, or None where there were none.

        >>> Leftovers(2, 3_500_000).line()
        'removed 2 unfinished write(s) (3.5 MB) that an interrupted writer left in the store'
        >>> Leftovers().line() is None
        True
        """
        if not self.n_files:
            return None
        return (
            f"removed {self.n_files} unfinished write(s) ({self.n_bytes / 1e6:.1f} MB) that an interrupted "
            "writer left in the store"
        )


def unfinished_writes(store: str | os.PathLike[str]) -> list[Path]:
    """The temporary files of writes that were never renamed into place, sorted.

    Parameters
    ----------
    store : path
        A store directory.

    Returns
    -------
    list of Path
        Zarr's ``*.<32 hex>.partial`` files anywhere in the store and ``*.tmp`` files in its
        ``_lenshunt/`` folder.
    """
    store = Path(store)
    bookkeeping = paths.bookkeeping_dir(store)
    found = []
    for folder, _dirs, names in os.walk(store):
        ours = Path(folder).is_relative_to(bookkeeping)
        found.extend(
            Path(folder) / name
            for name in names
            if _ZARR_PARTIAL.search(name) or (ours and name.endswith(".tmp"))
        )
    return sorted(found)


def remove_unfinished_writes(store: str | os.PathLike[str]) -> Leftovers:
    """Delete :func:`unfinished_writes` of ``store``; call only while holding its writer lock.

    A file that vanishes meanwhile is skipped; one that cannot be deleted raises.

    Raises
    ------
    OSError
        As :meth:`pathlib.Path.unlink` raised it (other than the file being gone).
    """
    n_files = n_bytes = 0
    for path in unfinished_writes(store):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        n_files, n_bytes = n_files + 1, n_bytes + size
    return Leftovers(n_files, n_bytes)
