"""Discover a set's objects: which files exist for which object id and band.

Only the directories named by the layout's band patterns are listed (``os.scandir``, no
recursive walk), so discovery of a 400k-file set takes seconds. An object exists when at least
one of its bands has a file; bands without a file are ``None`` in the manifest and are flagged
at ingest, never dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.layout import Layout


@dataclass(frozen=True)
class Manifest:
    """Object ids (sorted) and, per band, the file of each object or None.

    ``duplicates`` maps (object id, band) to the extra files that also matched the id (e.g.
    ``...-100002.fits`` and ``...-0100002.fits``); the first in sorted order is the one used.
    """

    object_ids: np.ndarray
    paths: dict[str, list[str | None]]
    duplicates: dict[tuple[int, str], list[str]]

    def __len__(self) -> int:
        return int(self.object_ids.size)

    def select_or_missing(self, object_ids: np.ndarray) -> Manifest:
        """The manifest for ``object_ids`` in that order; ids no longer present get no files.

        An object planned by an interrupted ingest whose files vanished since is thereby flagged
        MISSING_FILE in every band rather than dropped.
        """
        index = {int(object_id): i for i, object_id in enumerate(self.object_ids)}
        rows = [index.get(int(object_id)) for object_id in object_ids]
        wanted = {int(object_id) for object_id in object_ids}
        return Manifest(
            object_ids=np.asarray(object_ids, dtype=np.int64),
            paths={
                band: [None if row is None else paths[row] for row in rows]
                for band, paths in self.paths.items()
            },
            duplicates={key: value for key, value in self.duplicates.items() if key[0] in wanted},
        )


def discover(layout: Layout, root: str | os.PathLike[str]) -> Manifest:
    """List the cutouts of ``layout`` under ``root``.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist, or none of the layout's band directories exists under it
        (the message lists what was expected, which catches a wrong ``--layout``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"cutout directory {root} does not exist")
    found: dict[str, dict[int, list[str]]] = {}
    n_dirs = 0
    for band in layout.bands:
        directory = root / Path(band.path).parent
        pattern = band.path_regex()
        prefix = Path(band.path).parent.as_posix()
        by_id: dict[int, list[str]] = {}
        if directory.is_dir():
            n_dirs += 1
            with os.scandir(directory) as entries:
                for entry in entries:
                    relative = entry.name if prefix == "." else f"{prefix}/{entry.name}"
                    match = pattern.match(relative)
                    if match:
                        by_id.setdefault(int(match.group(1)), []).append(entry.path)
        found[band.name] = by_id
    if n_dirs == 0:
        expected = sorted({str(root / Path(band.path).parent) for band in layout.bands})
        raise FileNotFoundError(
            f"no band directory of layout {layout.name!r} under {root}: expected {expected}. "
            "Check the source directory and --layout."
        )
    all_ids = sorted(set().union(*(by_id.keys() for by_id in found.values())))
    paths: dict[str, list[str | None]] = {}
    duplicates: dict[tuple[int, str], list[str]] = {}
    for band_name, by_id in found.items():
        column: list[str | None] = []
        for object_id in all_ids:
            matches = sorted(by_id.get(object_id, []))
            column.append(matches[0] if matches else None)
            if len(matches) > 1:
                duplicates[(object_id, band_name)] = matches[1:]
        paths[band_name] = column
    return Manifest(np.asarray(all_ids, dtype=np.int64), paths, duplicates)
