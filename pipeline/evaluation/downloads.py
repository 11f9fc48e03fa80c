"""The report's links to the run's catalogs and metrics, in its ``files/`` folder without a second copy.

The report folder is promised to open on its own (copied or mailed alone), so its ``files/`` folder
holds the catalogs. A copy of a multi-GB catalog doubled the disk it took (a 2M-row trial), so each
file there is a hard link to the run's file (the same bytes on disk, and a whole file again when the
report folder is copied elsewhere), where the file system allows; where it does not (another file
system, or one without hard links) a file up to :data:`MAX_COPIED_BYTES` is copied, and a larger one
is linked where it is, by a relative URL (which holds while the run's folder moves as a whole).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pipeline.atomic import temporary_beside
from pipeline.paths import catalog_fits, catalog_parquet, catalog_votable, metrics_file, report_dir

__all__ = ["MAX_COPIED_BYTES", "Download", "downloads_note", "link_or_copy", "report_downloads"]

MAX_COPIED_BYTES = 64 * 2**20
"""Where no hard link can be made, files up to this size are copied into ``files/``; larger ones are
linked where they are."""

LINKED, COPIED, IN_PLACE = "hard link", "copy", "where it is"
"""How a download is placed (:attr:`Download.how`)."""


@dataclass(frozen=True)
class Download:
    """One link of the report's "Files:" line: the text, the URL relative to the page, and how."""

    name: str
    href: str
    how: str
    source: Path


def link_or_copy(source: Path, target: Path, *, max_copied: int | None = None) -> str | None:
    """Place ``source`` at ``target``: a hard link where the file system allows, else a copy.

    The link or copy is made beside ``target`` and renamed over it, so a stop leaves the old
    ``target`` or the new one, whole.

    Parameters
    ----------
    source, target : pathlib.Path
        The file, and where it should appear (its folder is created).
    max_copied : int or None
        The largest file copied where no hard link can be made, bytes; None: any.

    Returns
    -------
    str or None
        :data:`LINKED` or :data:`COPIED`; None (and ``target`` untouched) for a file over
        ``max_copied`` that cannot be hard-linked.

    Raises
    ------
    OSError
        If the copy or the rename fails (a full disk, a read-only folder).
    """
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if target.exists() and os.path.samefile(source, target):
            return LINKED
    temporary = temporary_beside(target)
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
        how = LINKED
    except OSError:  # another file system (EXDEV), or one without hard links (EPERM, ENOTSUP)
        if max_copied is not None and source.stat().st_size > max_copied:
            return None
        shutil.copyfile(source, temporary)
        how = COPIED
    try:
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return how


def report_downloads(out_dir: Path, run_dir: Path | None = None) -> list[Download]:
    """Place the run's catalogs and metrics in ``out_dir/files/`` (:func:`link_or_copy`) for the page.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder the page is written in.
    run_dir : pathlib.Path or None
        The run's folder, holding the catalogs, when ``out_dir`` is its evaluation's staging folder
        (which holds the new ``metrics.json``; the page moves to ``run_dir/report/``); None: the
        files are in ``out_dir`` or its parent, and the page stays in ``out_dir``.

    Returns
    -------
    list of Download
        One per file found, in the order FITS, Parquet, VOTable, metrics; ``href`` is relative to
        the page's final folder: ``files/NAME`` or, for a large file that could not be linked, the
        path to it where it is.
    """
    final = report_dir(run_dir) if run_dir is not None else Path(out_dir)
    links = []
    for name, find in (
        ("Catalog (FITS)", catalog_fits),
        ("Catalog (Parquet)", catalog_parquet),
        ("Catalog (VOTable)", catalog_votable),
        ("Metrics (JSON)", metrics_file),
    ):
        folders = (Path(out_dir), Path(out_dir).parent)
        if run_dir is not None:
            folders = (Path(out_dir),) if find is metrics_file else (Path(run_dir),)
        for folder in folders:
            source = find(folder)
            if not source.is_file():
                continue
            how = link_or_copy(source, Path(out_dir) / "files" / source.name, max_copied=MAX_COPIED_BYTES)
            if how is None:
                href = Path(os.path.relpath(source.resolve(), final.resolve())).as_posix()
                links.append(Download(f"{name}, in the run's folder", quote(href), IN_PLACE, source))
            else:
                links.append(Download(name, "files/" + quote(source.name), how, source))
            break
    return links


def downloads_note(downloads: list[Download]) -> str | None:
    """What the console should say of files not hard-linked into ``files/`` (None when all were).

    >>> downloads_note([Download("Catalog (FITS)", "files/catalog.fits", COPIED, Path("r/catalog.fits"))])
    'catalog.fits copied into report/files/ (no hard link possible there: another file system?)'
    """
    copied = [item.source.name for item in downloads if item.how == COPIED]
    in_place = [item.source.name for item in downloads if item.how == IN_PLACE]
    parts = []
    if copied:
        parts.append(
            f"{', '.join(copied)} copied into report/files/ "
            "(no hard link possible there: another file system?)"
        )
    if in_place:
        parts.append(
            f"{', '.join(in_place)} not copied but linked in the run's folder (over {MAX_COPIED_BYTES >> 20} "
            "MiB and no hard link possible): the report folder copied alone lacks them"
        )
    return "; ".join(parts) or None
