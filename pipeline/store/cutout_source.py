"""Which input file each band of a cutout was read from (``LHFILE`` of ``lenshunt cutout``).

The store keeps no file paths. It keeps its input folder (the ``source`` attribute) and, per object
and band, the size and modification time of the file ingest read (:mod:`pipeline.store.file_records`;
a re-read of a changed file records anew). :func:`input_files` finds the object's files again with
the ingest's own discovery (:func:`pipeline.sources.discover` on that folder with the store's layout:
the same rules pick the same file, e.g. the ``.fits`` of a DUPLICATE_ID object with a ``.fits`` and
a ``.fits.gz``, or the ``.fits.gz`` where the ``.fits`` is broken:
:mod:`pipeline.sources.duplicate_files`) and compares each with what ingest recorded: the same size
and modification time is the file read (for a duplicate read in place of a broken preferred file,
those of every file of the band: :mod:`pipeline.store.duplicate_records`). A file changed since, a
store without those records, a source folder moved or deleted: each is said, never an error
(new-user trial: a cutout named no input file, and which of two duplicates was read could be learnt
nowhere).

Finding the files again was chosen over recording paths at ingest (a new store column, which every
store made so far would lack) by measurement (2-core machine, warm file cache, a 10,000-object
euclid-sglc2 set of 40,000 files): its whole discovery takes 0.07 s; of one object
(``discover(..., only_id=)``: names without its digits passed over) 0.015 s, and reading the store's
size and time records 0.006 s; ``write_cutouts`` of four bands took 0.065 s instead of 0.037 s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import LenshuntError
from schemas.layout import Layout

READ = "read"
""":attr:`InputFile.status` of a file whose size and modification time are those ingest recorded (of a
duplicate read in place of a broken preferred file: those of every file of the band; :attr:`InputFile.why`
then says why the preferred one was passed over)."""
UNCHECKED = "unchecked"
"""The file the ingest's rules pick now; the store recorded nothing to compare it with."""
UNKNOWN = "unknown"
"""No file can be named (:attr:`InputFile.why` says why)."""


@dataclass(frozen=True)
class InputFile:
    """The input file of one band: its path relative to the store's source folder (POSIX separators;
    None when :data:`UNKNOWN`), :data:`READ`, :data:`UNCHECKED` or :data:`UNKNOWN`, and why, when not
    :data:`READ`."""

    path: str | None
    status: str
    why: str = ""


def input_files(store: str | os.PathLike[str], object_id: int) -> tuple[str, dict[str, InputFile]]:
    """The store's source folder, and the input file of each band of ``object_id``.

    Parameters
    ----------
    store
        A lenshunt store.
    object_id
        An object of the store.

    Returns
    -------
    (str, dict of str to InputFile)
        The source folder as recorded, and band -> its file (every band of the layout).
    """
    from pipeline.sources import NoCutoutsError, discover
    from pipeline.store.duplicate_records import NOT_RECORDED, signature
    from pipeline.store.file_records import NO_FILE, recorded_file_table
    from pipeline.store.reread_marker import interrupted_reread, not_reread_yet, reread_line
    from pipeline.store.zarr_store import read_attributes, store_layout

    attributes = read_attributes(store)
    source, bands = attributes.source, tuple(attributes.bands)

    def unknown(why: str) -> tuple[str, dict[str, InputFile]]:
        return source, {band: InputFile(None, UNKNOWN, why) for band in bands}

    if (state := interrupted_reread(store, attributes)) is not None and not_reread_yet(
        store, state, object_id
    ):
        return unknown(
            f"object {object_id} is not re-read yet, so its pixels may not be of the file the "
            f"store's layout finds: {reread_line(store, state)}"
        )  # ops trial: "replaced"

    if not Path(source).is_dir():
        return unknown(
            "the store's source folder (LHSRCDIR) is not there (moved: `lenshunt ingest --source-moved` "
            "records its new place)"
        )
    layout = store_layout(attributes)
    try:
        manifest = discover(layout, source, only_id=int(object_id))
        table = recorded_file_table(Path(store), bands)
    except NoCutoutsError:
        return unknown(f"the store's source folder (LHSRCDIR) holds no file of object {object_id} now")
    except (OSError, ValueError, LenshuntError) as exc:
        return unknown(f"the files under the store's source folder cannot be listed ({exc})")
    row = int(np.searchsorted(manifest.object_ids, object_id))
    if row == manifest.object_ids.size or manifest.object_ids[row] != object_id:
        return unknown(f"the store's source folder (LHSRCDIR) holds no file of object {object_id} now")
    recorded = np.flatnonzero(table.object_ids == object_id)
    found: dict[str, InputFile] = {}
    for column, band in enumerate(bands):
        path = manifest.paths[band][row]
        if path is None:
            found[band] = InputFile(None, UNKNOWN, f"the source folder holds no {band} file of it now")
            continue
        relative = _relative(path, source)
        others = manifest.duplicates.get((int(object_id), band), [])
        if recorded.size == 0:
            why = "the store recorded no size and time of the file read (made by an earlier version)"
            read, passed_over = _file_read(layout, band, path, others)
            found[band] = InputFile(_relative(read, source), UNCHECKED, f"{passed_over}{why}")
            continue
        size, mtime = int(table.size[recorded[0], column]), int(table.mtime_ns[recorded[0], column])
        try:
            stat = os.stat(path)
        except OSError as exc:
            found[band] = InputFile(None, UNKNOWN, f"{relative} cannot be read ({exc.strerror or exc})")
            continue
        if size != NO_FILE and (stat.st_size, stat.st_mtime_ns) == (size, mtime):
            read, passed_over = _file_read(layout, band, path, others)
            duplicates = int(table.duplicates[recorded[0], column])
            if not passed_over:  # the preferred file read fine, as it did when ingest found it so
                found[band] = InputFile(relative, READ)
            elif duplicates == NOT_RECORDED:  # the preferred file is as ingest found it: passed over then too
                why = "the store records the size and time of the preferred file only (an earlier version's)"
                found[band] = InputFile(_relative(read, source), UNCHECKED, f"{passed_over}{why}")
            elif duplicates == signature(others):  # and its duplicates too: the same one was read
                found[band] = InputFile(_relative(read, source), READ, passed_over.removesuffix("; "))
            else:
                found[band] = InputFile(
                    None,
                    UNKNOWN,
                    f"{passed_over.removesuffix('; ')}, but the duplicates of {relative} differ from those "
                    "ingest found (replaced, added or removed since; `lenshunt ingest` re-reads it)",
                )
        else:
            found[band] = InputFile(
                None,
                UNKNOWN,
                f"{relative} is there now, but its size or modification time differs from the file "
                "ingest read (replaced or changed since; `lenshunt ingest` re-reads it)",
            )
    return source, found


def _file_read(layout: Layout, band: str, path: str, others: list[str]) -> tuple[str, str]:
    """The file ingest reads of ``path`` and its duplicates ``others`` (the same rule:
    :func:`pipeline.sources.duplicate_files.read_first_usable`), and, when it is a duplicate, why the
    preferred file was passed over (ending ``"; "``; else ``""``)."""
    if not others:
        return path, ""
    from pipeline.sources import read_band
    from pipeline.sources.duplicate_files import read_first_usable

    shape, hdu = layout.band(band).shape, layout.band_hdu(band)
    chosen = read_first_usable(
        [path, *others],
        lambda file: read_band(file, shape, masked_value=layout.masked_value, position=False, hdu=hdu),
    )
    if chosen.index == 0:
        return path, ""
    return [path, *others][chosen.index], f"{chosen.passed_over}, so ingest read this duplicate of it; "


def _relative(path: str, source: str) -> str:
    """``path`` relative to ``source``, with POSIX separators."""
    try:
        return Path(path).relative_to(source).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, source)).as_posix()
