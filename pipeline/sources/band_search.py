"""Where a layout's band folders are, when the source given does not hold them.

User trial: ``lenshunt ingest outer X.zarr`` of a set at ``outer/delivery/Public/EUC_VIS/...`` was
told which folders were expected, not that they were one level down. :func:`band_folders_hint`
looks a few levels below the source (and a few above it, for a source given too deep) for a folder
that holds the layout's band folders, and says to give that one. The search is bounded
(:data:`MAX_DEPTH` levels, :data:`MAX_DIRECTORIES` folders listed, :data:`MAX_ENTRIES` names read),
so a huge tree, or a folder of 400k files, does not stall the error; hidden folders, lenshunt's
own and Zarr stores are not entered.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from pathlib import Path

from schemas.file_names import nfc as _nfc
from schemas.layout import Layout, LayoutArg, as_layout

MAX_DEPTH = 3
"""How many levels below (and above) the source are looked at."""
MAX_DIRECTORIES = 200
"""Most folders listed below the source."""
MAX_ENTRIES = 20_000
"""Most names read from those listings, all together."""
_N_SHOWN = 3


def _holds_bands(directory: Path, relatives: list[str]) -> bool:
    return any(os.path.isdir(directory / relative) for relative in relatives)


def _band_relatives(layout: Layout) -> list[str]:
    return sorted({Path(band.path).parent.as_posix() for band in layout.bands} - {"."})


def folders_holding_bands(layout: Layout, root: str | os.PathLike[str]) -> list[Path]:
    """The shallowest folders within :data:`MAX_DEPTH` levels below ``root`` that hold a band folder of
    ``layout`` (sorted by name), else the nearest of ``root``'s ancestors within as many levels that
    does; empty when none is found within the bounds (or the layout's files lie in the source itself).
    """
    relatives = _band_relatives(layout)
    root = Path(root)
    if not relatives:
        return []
    level, listed, read = [root], 0, 0
    for _ in range(MAX_DEPTH):
        below: list[Path] = []
        for directory in level:
            if listed >= MAX_DIRECTORIES or read >= MAX_ENTRIES:
                break
            listed += 1
            try:
                with os.scandir(directory) as entries:
                    names = []
                    for entry in entries:
                        read += 1
                        if read > MAX_ENTRIES:
                            break
                        if entry.name.startswith(".") or entry.name.lower().endswith(".zarr"):
                            continue
                        if entry.is_dir():
                            names.append(entry.name)
            except OSError:
                continue
            below += [directory / name for name in sorted(names)]
        found = [directory for directory in below if _holds_bands(directory, relatives)]
        if found:
            return found
        level = below
    for parent in list(root.resolve().parents)[:MAX_DEPTH]:
        if _holds_bands(parent, relatives):
            return [parent]
    return []


def band_folders_hint(layout: LayoutArg, root: str | os.PathLike[str]) -> str:
    """A sentence saying where the band folders of ``layout`` are, if near ``root``, or that ``root``
    holds band files of ``layout`` itself, outside their folders (:func:`loose_band_files`; trial: the
    flat folder of the challenges' sample files was told only that ``Band1`` was expected); else ``""``.

    Starts with ``"; "`` so it follows the message that the band folders are not under ``root``.
    """
    layout = as_layout(layout, "band_folders_hint")
    found = folders_holding_bands(layout, root)
    if not found:
        loose = loose_band_files(layout, root)
        if not loose:
            return ""
        from schemas.layout import available_layouts, load_layout

        where = ", ".join(f"{name} in {Path(layout.band(band).path).parent}/" for band, name in loose.items())
        others = [
            name
            for name in available_layouts()
            if name != layout.name and loose_band_files(load_layout(name), root)
        ]
        named = f"layout{'s' if len(others) > 1 else ''} {' and '.join(others)}"
        also = f" (files so named are band files of {named} too)" if others else ""
        return (
            f"; {root} holds band files of this layout itself, not in their folders (e.g. {where}): move "
            f"each band's files into its folder, or give a layout whose band paths name no folder{also}"
        )
    if len(found) == 1:
        return f"; the band folders are under {found[0]}: give that folder as SOURCE"
    shown = ", ".join(str(path) for path in found[:_N_SHOWN]) + (", ..." if len(found) > _N_SHOWN else "")
    return f"; band folders are under {len(found)} folders ({shown}): give one of them as SOURCE"


_FILES_LOOKED_AT = 2000
"""Most names read from one band folder when looking for the files of another layout."""


def loose_band_files(layout: Layout, root: str | os.PathLike[str]) -> dict[str, str]:
    """Band -> the name of one file directly in ``root`` named as that band's files, for the bands
    whose path has a folder (bounded: :data:`_FILES_LOOKED_AT` names read)."""
    patterns = {
        band.name: re.sub(r"\{[^}]*\}", "*", Path(band.path).name)
        for band in layout.bands
        if Path(band.path).parent != Path(".")
    }
    found: dict[str, str] = {}
    try:
        with os.scandir(root) as entries:
            for n, entry in enumerate(entries):
                if n >= _FILES_LOOKED_AT:
                    break
                for band, pattern in patterns.items():
                    if band not in found and fnmatch.fnmatchcase(entry.name, pattern):
                        found[band] = entry.name
    except OSError:
        return {}
    return {band: found[band] for band in patterns if band in found}


def _band_matches(root: Path, band_path: str) -> bool:
    """Whether ``root / band_path``'s folder holds a file named as ``band_path``'s pattern (bounded)."""
    relative = Path(band_path)
    pattern = re.sub(r"\{[^}]*\}", "*", relative.name)
    try:
        with os.scandir(root / relative.parent) as entries:
            for n, entry in enumerate(entries):
                if n >= _FILES_LOOKED_AT:
                    break
                if fnmatch.fnmatchcase(entry.name, pattern):
                    return True
    except OSError:
        return False
    return False


def matching_layouts(root: str | os.PathLike[str], skip: str = "") -> list[str]:
    """The shipped layouts (other than ``skip``) whose band folders under ``root`` hold files named as
    theirs, those with the most such bands first (folder names alone do not tell: sglc1-ground and
    sglc1-space both have ``Band1``).

    Fresh-user trial: an sglc1-space set given to ``lenshunt run`` without ``--layout`` was told there
    was no band directory of layout 'euclid-sglc2', not which layout its folders are.
    """
    from schemas.layout import available_layouts, load_layout

    counts: dict[str, tuple[bool, int]] = {}  # name: (all its bands found, how many)
    for name in available_layouts():
        if name == skip:
            continue
        paths = {band.path for band in load_layout(name).bands}
        found = sum(_band_matches(Path(root), path) for path in paths)
        if found:
            counts[name] = (found == len(paths), found)
    return sorted(counts, key=lambda name: (not counts[name][0], -counts[name][1], name))


def other_layout_hint(layout_name: str, root: str | os.PathLike[str]) -> str:
    """``"; its folders match layout NAME: pass --layout NAME"`` where ``root`` holds the files of
    another shipped layout than ``layout_name`` (:func:`matching_layouts`); else ``""``."""
    names = matching_layouts(root, skip=layout_name)
    if not names:
        return ""
    if len(names) == 1:
        return f"; its folders match layout {names[0]}: pass --layout {names[0]}"
    return f"; its folders match layouts {', '.join(names)}: pass --layout {names[0]} (or another of them)"


def absent_folder_line(
    root: str | os.PathLike[str], directory: str, bands: list[str], there: list[str]
) -> str:
    """The warning for a band folder ``directory`` (relative) that ``root`` does not hold as a folder.

    ``bands``: the bands whose files it should hold; ``there``: a few folders that are there beside it.
    A path that is there but no folder (a file, a broken symbolic link) is said so (trial: a band folder
    that was a regular file was said to be "not under" the source).

    >>> absent_folder_line("/nowhere", "Public/EUC_H", ["H"], ["EUC_J"])[:70]
    'band folder Public/EUC_H is not under /nowhere (there: EUC_J): band(s)'
    """
    kind = not_a_folder(Path(root) / directory)
    seen = f" (there: {', '.join(there)})" if there and not kind else ""
    where = f"under {root} is {kind}, not a folder" if kind else f"is not under {root}{seen}"
    return (
        f"band folder {directory} {where}: band(s) {', '.join(bands)} are MISSING_FILE for every object; "
        "check the source directory and the layout's paths"
    )


def not_a_folder(path: Path) -> str | None:
    """What ``path`` is, in words, where it is there but no folder (``a file``); None where not there
    (or a folder)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        if not path.exists():
            return f"a broken symbolic link (to {os.readlink(path)})"
        mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        return None  # a folder (not read: the caller says why)
    return "a file" if stat.S_ISREG(mode) else "no regular file nor folder"


def folder_names(directory: Path) -> list[str]:
    """A few names of the folders in ``directory`` (none if it is not there)."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(
                entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")
            )
    except OSError:
        return []
    return names[:_N_SHOWN] + (["..."] if len(names) > _N_SHOWN else [])


def band_directory(root: Path, relative: str) -> Path | None:
    """The directory ``root/relative``, its names compared in NFC (an NFD-named folder is found);
    None where there is none."""
    if (root / relative).is_dir():
        return root / relative
    directory = root
    for part in Path(relative).parts:
        try:
            with os.scandir(directory) as entries:
                found = [entry.path for entry in entries if _nfc(entry.name) == _nfc(part) and entry.is_dir()]
        except OSError:
            return None
        if not found:
            return None
        directory = Path(sorted(found)[0])
    return directory
