"""Discover a set's objects: which files exist for which object id and band.

Only the directories named by the layout's band patterns are listed (``os.scandir``, no
recursive walk), so discovery of a 400k-file set takes seconds. An object exists when at least
one of its bands has a file; bands without a file are ``None`` in the manifest and are flagged
at ingest, never dropped.

A band's file may also be in any form the FITS readers read: the layout's ``.fits`` suffix in
any case or as ``.fit``/``.fts``, tile-compressed (``.fits.fz``, ``.fz``) and gzip, bzip2 or xz
compressed (``.gz``, ``.bz2``, ``.xz`` on any of those), e.g. ``imageEUC_VIS-100002.fits.gz`` for the
layout's ``imageEUC_VIS-{id}.fits``. Files in the band directories that match no band are counted
and named in the manifest's ``ignored`` (not lenshunt's own, ``.lenshunt-*``: a work directory
there); a folder named as a band file is no object either (``named_folders``), and folders that hold
band files, which are not searched, are named in ``subfolders``; a source where nothing matches is an
error that says what was looked for and what was found instead. A file whose id has another number
of digits than the layout's ``id_digits`` (the width ids are written with: ``imageEUC_VIS-00100.fits``
or a 7-digit id where 6 are written) is read, as object ``int(id)``, and counted with examples in the
manifest's ``id_width`` (the ingest report warns of them: another set's files, or a wrong layout?).
Names are compared in Unicode normal form NFC: a layout's ``Bänder/VIS/Ø_{id}.fits`` (as typed, NFC)
finds the files macOS and some archives write decomposed (NFD), which look the same (trial: every
object was MISSING_FILE, and the names "matching no band" looked identical to the pattern).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import LenshuntError, SourceNotFoundError
from pipeline.paths import OWN_FILE_PREFIX
from pipeline.sources.band_search import (
    absent_folder_line,
    band_folders_hint,
    not_a_folder,
    other_layout_hint,
)
from pipeline.sources.band_search import band_directory as _directory
from pipeline.sources.band_search import folder_names as _folders
from schemas.file_names import band_file_regex as path_file_regex
from schemas.file_names import nfc as _nfc
from schemas.layout import ID_PLACEHOLDER, Band, Layout, LayoutArg, as_layout

_N_EXAMPLES = 3
_NOT_CATALOGS = ("~$", "._")  # a spreadsheet's lock file, macOS's resource file beside a catalog
MAX_OBJECT_ID = int(np.iinfo(np.int64).max)
"""The largest object id a store holds (int64): a file or catalog row naming a larger one is no object
(trial: a 23-digit id in one file name aborted the discovery with an OverflowError)."""


class NoCutoutsError(LenshuntError, FileNotFoundError):
    """The source has no file matching any band of the layout (wrong directory or layout)."""


@dataclass(frozen=True)
class Manifest:
    """Object ids (sorted) and, per band, the file of each object or None.

    ``duplicates`` maps (object id, band) to the extra files that also matched the id (e.g.
    ``...-100002.fits`` and ``...-0100002.fits``, or ``...-100002.fits.gz`` beside
    ``...-100002.fits``); the file named exactly as the layout writes it is the one used, else a plain
    file before compressed forms (:func:`_preference`). ``ignored`` maps each band directory (relative
    to the root) to the number of its files that match no band and a few of their names.
    """

    object_ids: np.ndarray
    paths: dict[str, list[str | None]]
    duplicates: dict[tuple[int, str], list[str]]
    ignored: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    id_width: tuple[int, int, list[str]] = (0, 0, [])
    """The layout's ``id_digits``, how many files have ids of another number of digits, a few names."""
    absent: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    """Band directory of the layout (relative to the root) that is not there -> its bands, and a few
    folder names its parent does hold."""
    subfolders: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    """Band directory -> how many folders it holds with band files, which are not searched, and a few
    of their names."""
    too_large: tuple[int, list[str]] = (0, [])
    """How many files name an id beyond :data:`MAX_OBJECT_ID` (not read), and a few of their names."""
    named_folders: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    """Band directory -> how many folders in it are named as band files (no object), a few names."""
    no_file: dict[str, str] = field(default_factory=dict)
    """Band whose folder is there but holds no file of it, for any object -> the band's path."""
    broken_links: list[str] = field(default_factory=list)
    """Broken symbolic links set aside beside another file of the same object's band (no duplicate)."""

    def __len__(self) -> int:
        return int(self.object_ids.size)

    @property
    def n_ignored(self) -> int:
        return sum(count for count, _ in self.ignored.values())

    def ignored_lines(self) -> list[str]:
        """One line per band directory with ignored files: how many, and examples; one for the files
        whose ids are too large to be objects; one per band directory with folders named as band files."""
        lines = [
            f"{count} file(s) in {directory or '.'} match no band, e.g. {', '.join(examples)}"
            for directory, (count, examples) in sorted(self.ignored.items())
        ]
        lines += [  # fresh-user trial: such a folder was an object, unreadable (IsADirectoryError)
            f"{count} folder(s) in {directory or '.'} are named as band files, e.g. {', '.join(examples)}: "
            "not read"
            for directory, (count, examples) in sorted(self.named_folders.items())
        ]
        if broken := self.broken_links:  # trial: beside a good file, one made the object DUPLICATE_ID
            shown = ", ".join(f"{Path(link).name} -> {os.readlink(link)}" for link in broken[:_N_EXAMPLES])
            lines.append(
                f"{len(broken)} broken symbolic link(s) beside another file of the object's band, not read "
                f"(no copy of it: no DUPLICATE_ID), e.g. {shown}"
            )
        count, examples = self.too_large
        if count:
            lines.append(
                f"{count} file(s) name an id beyond {MAX_OBJECT_ID} (the largest object id), e.g. "
                f"{', '.join(examples)}: not read; rename them with the object's id"
            )
        return lines

    def id_width_lines(self) -> list[str]:
        """One warning line when files have ids of another width than the layout's ``id_digits``."""
        digits, count, examples = self.id_width
        if not count:
            return []
        return [
            f"{count} file(s) have an id of other than {digits} digits (the layout's id_digits), e.g. "
            f"{', '.join(examples)}; read as the object of that number (another set's files, or another "
            "layout?)"
        ]

    def unsearched_lines(self, root: str | os.PathLike[str]) -> list[str]:
        """One warning line per band directory that is not there, and per one holding folders.

        Trial: a layout typo (``Public/Band1``) made every object MISSING_FILE in that band, and
        cutouts in a subfolder were MISSING_FILE too, with no word of either; so did a band path that
        matched no file in a folder that is there (one line per such band).
        """
        lines = []
        for directory, (bands, there) in sorted(self.absent.items()):
            lines.append(absent_folder_line(root, directory, bands, there))
        for band, path in self.no_file.items():  # fresh-user trial: '{id}_g*.fits.fz', and not a word
            directory = Path(path).parent.as_posix()
            lines.append(
                f"no file in {'.' if directory == '.' else directory} under {root} matches band {band}'s "
                f"path {path!r}: band(s) {band} are MISSING_FILE for every object; check the source "
                "directory and the layout's paths"
            )
        for directory, (count, examples) in sorted(self.subfolders.items()):
            lines.append(
                f"{count} folder(s) in {directory or '.'} are not searched (a band's files must be directly "
                f"in its folder), e.g. {', '.join(examples)}"
            )
        return lines

    def duplicate_lines(self) -> list[str]:
        """One warning line when an object's band matched several files: which one is read.

        Trial: a ``.fits`` and a different ``.fits.gz`` of one id were flagged DUPLICATE_ID, and
        which of them the object was scored from was said nowhere.
        """
        if not self.duplicates:
            return []
        examples = []
        for (object_id, band), others in sorted(self.duplicates.items())[:_N_EXAMPLES]:
            row = int(np.searchsorted(self.object_ids, object_id))
            one = Path(str(self.paths[band][row])).name
            examples.append(f"id {object_id} {band}: {one} before {', '.join(Path(o).name for o in others)}")
        return [
            f"{len(self.duplicates)} object band(s) matched several files (flagged DUPLICATE_ID); the one "
            "named as the layout writes it is read (its id digits and suffix), else a plain file before "
            "compressed copies, and the next where that one is unreadable, truncated or of another shape "
            f"(a reason below counts those), e.g. {'; '.join(examples)}"
        ]

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


def glob_ignoring_case(root: str | os.PathLike[str], pattern: str) -> list[Path]:
    """Files under ``root`` whose relative path matches the glob ``pattern`` in any letter case.

    As band files are found in any case of their suffix, a layout's ``image_catalog*.csv`` finds
    ``Image_Catalog_Sim.CSV`` (a new-user trial: ``SIM_KEYS.CSV`` was no catalog). Each pattern part
    lists one directory level (``os.scandir``), never a recursive walk; a pattern with ``**`` is
    matched by :meth:`pathlib.Path.glob` instead, in its letter case. The lock files spreadsheets
    keep beside an open file (``~$keys.csv``) and macOS's resource files (``._keys.csv``) are no
    catalogs (review: with them, one open catalog was "several").

    Returns
    -------
    list of Path
        The matching regular files, sorted.
    """
    if "**" in pattern:
        found = [path for path in Path(root).glob(pattern) if path.is_file()]
        return sorted(path for path in found if not path.name.startswith(_NOT_CATALOGS))
    found = [Path(root)]
    parts = Path(pattern).parts
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        matched = []
        for directory in found:
            try:
                with os.scandir(directory) as entries:
                    matched += [
                        Path(entry.path)
                        for entry in entries
                        if fnmatch.fnmatchcase(_nfc(entry.name).lower(), _nfc(part).lower())
                        and not entry.name.startswith(_NOT_CATALOGS)
                        and (entry.is_file() if last else entry.is_dir())
                    ]
            except OSError:  # an unreadable or vanished directory holds no catalog
                continue
        found = matched
    return sorted(found)


def band_file_regex(band: Band) -> re.Pattern[str]:
    """Regular expression of a band's file names (no directory); group 1 is the id
    (:func:`schemas.file_names.band_file_regex`, the rule the layout's own checks use too).

    >>> pattern = band_file_regex(Band(name="VIS", path="a/img-{id}.fits", shape=(2, 2),
    ...                                pixel_scale_arcsec=0.1, group="vis"))
    >>> [pattern.match(name).group(1) for name in ["img-7.fits", "img-7.FITS.gz", "img-7.fits.fz"]]
    ['7', '7', '7']
    """
    return path_file_regex(band.path)


def discover(layout: LayoutArg, root: str | os.PathLike[str], *, only_id: int | None = None) -> Manifest:
    """List the cutouts of ``layout`` under ``root`` (of object ``only_id`` alone, if given: a name
    without its digits is passed over unparsed, so one object's files cost a directory listing; its
    ``ignored``, ``id_width`` and ``subfolders`` then count that object's names only).

    Raises
    ------
    pipeline.errors.SourceNotFoundError
        (a ``FileNotFoundError``) If ``root`` does not exist, or none of the layout's band directories
        exists under it (the message lists what was expected, which catches a wrong ``--layout``).
    NoCutoutsError
        If no file under the band directories matches the layout (the message names the
        expected file names and examples of the files found instead).
    """
    layout = as_layout(layout, "discover")
    root = Path(root)
    if not root.is_dir():
        raise SourceNotFoundError(f"cutout directory {root} does not exist")
    if any(ID_PLACEHOLDER in part for band in layout.bands for part in Path(band.path).parent.parts):
        raise SourceNotFoundError(f"layout {layout.name!r}: the id must be in the file name, not a directory")
    by_directory: dict[str, list[tuple[Band, re.Pattern[str]]]] = {}
    for band in layout.bands:
        by_directory.setdefault(Path(band.path).parent.as_posix(), []).append((band, band_file_regex(band)))
    found: dict[str, dict[int, list[str]]] = {band.name: {} for band in layout.bands}
    needle = None if only_id is None else str(int(only_id))  # in every width it may be written with
    ignored: dict[str, tuple[int, list[str]]] = {}
    n_off_width, off_width_examples = 0, []
    n_too_large, too_large_examples = 0, []
    n_dirs = 0
    absent: dict[str, tuple[list[str], list[str]]] = {}
    subfolders: dict[str, tuple[int, list[str]]] = {}
    named_folders: dict[str, tuple[int, list[str]]] = {}
    for prefix, bands in by_directory.items():
        directory = _directory(root, prefix)
        if directory is None:
            absent[prefix] = ([band.name for band, _ in bands], _folders(root / Path(prefix).parent))
            continue
        n_dirs += 1
        n_ignored, examples = 0, []
        n_folders, folders = 0, []
        n_named, named = 0, []
        with os.scandir(directory) as entries:
            for entry in entries:
                if needle is not None and needle not in entry.name:  # ASCII digits: NFC keeps them
                    continue
                matched = folder = False
                for band, pattern in bands:
                    match = pattern.match(_nfc(entry.name))
                    if match and needle is not None and int(match.group(1)) != only_id:
                        match = None
                    if match and entry.is_dir():  # a folder is no cutout, whatever its name
                        folder, matched, match = True, True, None
                    if match and int(match.group(1)) > MAX_OBJECT_ID:
                        n_too_large, matched, match = n_too_large + 1, True, None
                        if len(too_large_examples) < _N_EXAMPLES:
                            too_large_examples.append(entry.name)
                    if match:
                        found[band.name].setdefault(int(match.group(1)), []).append(entry.path)
                        matched = True
                        if len(match.group(1)) != layout.id_digits:  # trial: said at no point
                            n_off_width += 1
                            if len(off_width_examples) < _N_EXAMPLES:
                                off_width_examples.append(entry.name)
                if folder:
                    n_named += 1
                    if len(named) < _N_EXAMPLES:
                        named.append(entry.name)
                if matched or entry.name.startswith(OWN_FILE_PREFIX):  # lenshunt's own: a work dir here
                    continue
                if _is_label_catalog(layout, prefix, entry.name):  # trial: "ignored" beside the cutouts
                    continue
                if not entry.is_dir():
                    n_ignored += 1
                    if len(examples) < _N_EXAMPLES:
                        examples.append(entry.name)
                elif (Path(prefix) / entry.name).as_posix() not in by_directory and _holds_band_files(
                    entry.path, bands
                ):  # not another band's, and cutouts that are not read (trial: said once they had gone)
                    n_folders += 1
                    if len(folders) < _N_EXAMPLES:
                        folders.append(entry.name)
        if n_ignored:
            ignored["" if prefix == "." else prefix] = (n_ignored, sorted(examples))
        if n_folders:
            subfolders["" if prefix == "." else prefix] = (n_folders, sorted(folders))
        if n_named:
            named_folders["" if prefix == "." else prefix] = (n_named, sorted(named))
    if n_dirs == 0:
        expected = sorted({str(root / Path(band.path).parent) for band in layout.bands})
        hint = band_folders_hint(layout, root)  # trial: the set was one level down, and not said
        hint = hint or other_layout_hint(layout.name, root)  # fresh-user trial: another layout's, unsaid
        files = "; ".join(
            f"{path} is {kind}, not a folder" for path in expected if (kind := not_a_folder(Path(path)))
        )
        raise SourceNotFoundError(
            f"no band directory of layout {layout.name!r} under {root}: expected {expected}"
            + (f" ({files})" if files else "")
            + (hint or ". Check the source directory and --layout.")
        )
    all_ids = sorted(set().union(*(by_id.keys() for by_id in found.values())))
    if not all_ids:
        raise NoCutoutsError(_nothing_matched(layout, root, ignored))
    paths: dict[str, list[str | None]] = {}
    broken_links: list[str] = []
    duplicates: dict[tuple[int, str], list[str]] = {}
    bands = {band.name: band for band in layout.bands}
    for band_name, by_id in found.items():
        column: list[str | None] = []
        for object_id in all_ids:
            matches = by_id.get(object_id, [])
            if len(matches) > 1:  # the sort key costs 20 us a file: only where there is a choice
                named = Path(bands[band_name].path_for(object_id, layout.id_digits)).name
                pattern = band_file_regex(bands[band_name])
                matches = sorted(
                    matches, key=lambda path: _preference(path, named, pattern, layout.id_digits)
                )
                live = [path for path in matches if os.path.exists(path) or not os.path.islink(path)]
                live = live or matches[:1]  # only broken links: the first is read (MISSING_FILE)
                broken_links += [path for path in matches if path not in live]
                matches = live  # a broken link is no copy of a file (trial: DUPLICATE_ID)
            column.append(matches[0] if matches else None)
            if len(matches) > 1:
                duplicates[(object_id, band_name)] = matches[1:]
        paths[band_name] = column
    id_width = (layout.id_digits, n_off_width, sorted(off_width_examples))
    ids, too_large = np.asarray(all_ids, dtype=np.int64), (n_too_large, sorted(too_large_examples))
    in_absent = {name for names, _ in absent.values() for name in names}
    no_file = {
        band.name: band.path
        for band in layout.bands
        if only_id is None and not found[band.name] and band.name not in in_absent
    }
    found_more = (absent, subfolders, too_large, named_folders, no_file, broken_links)
    return Manifest(ids, paths, duplicates, ignored, id_width, *found_more)


def _holds_band_files(folder: str, bands: list[tuple[Band, re.Pattern[str]]]) -> bool:
    """Whether ``folder`` directly holds a file named as a file of one of ``bands`` (not read there)."""
    try:
        with os.scandir(folder) as entries:
            return any(
                not entry.is_dir() and any(pattern.match(_nfc(entry.name)) for _, pattern in bands)
                for entry in entries
            )
    except OSError:  # unreadable: say it, its files are not read either
        return True


def _preference(
    path: str, named: str, pattern: re.Pattern[str], id_digits: int
) -> tuple[bool, bool, bool, str]:
    """Sort key of the files that matched one object's band: the one read comes first.

    The file named exactly as the layout writes it (``named``: the id in ``id_digits`` digits, the
    layout's suffix) first; then files whose id has ``id_digits`` digits (another case or compression
    of the right name) before those of another width; then plain files before compressed ones, then
    by name. Trial: a stray ``imageEUC_VIS-0100013.fits`` (another object's pixels) sorted before the
    right ``imageEUC_VIS-100013.fits`` and was read; and where the right name was there only as
    ``.FITS`` or ``.fits.gz``, the stray one still won.
    """
    name = _nfc(Path(path).name)
    match = pattern.match(name)
    other_width = match is None or len(match.group(1)) != id_digits
    compressed = re.search(r"\.(gz|bz2|xz|fz)$", name, re.IGNORECASE) is not None
    return (name != _nfc(named), other_width, compressed, name)


def _is_label_catalog(layout: Layout, prefix: str, name: str) -> bool:
    """Whether ``name`` in band directory ``prefix`` matches the layout's label-catalog pattern (in
    any letter case, as :func:`pipeline.sources.labels.find_label_catalog` finds it)."""
    if layout.catalog is None:
        return False
    relative = name if prefix in ("", ".") else f"{prefix}/{name}"
    return fnmatch.fnmatchcase(_nfc(relative).lower(), _nfc(layout.catalog.pattern).lower())


def _nothing_matched(layout: Layout, root: Path, ignored: dict[str, tuple[int, list[str]]]) -> str:
    expected = ", ".join(band.path for band in layout.bands)
    if ignored:
        seen = "; ".join(
            f"{directory or '.'}: {count} file(s), e.g. {', '.join(examples)}"
            for directory, (count, examples) in sorted(ignored.items())
        )
        found = f"found instead {seen}"
    else:
        found = "the band directories are empty"
    return (
        f"no cutout of layout {layout.name!r} under {root}: expected files named like {expected} "
        f"(optionally .gz, .bz2, .xz or .fz), {found}. Check the source directory and --layout."
    )
