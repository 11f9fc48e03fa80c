"""Which file names a band's path matches: the rule discovery finds files by, and the layout's check
that no two bands find the same file.

A band's file may be in any form the FITS readers read: the path's ``.fits`` suffix in any case or as
``.fit``/``.fts``, tile-compressed (``.fits.fz``, ``.fz``) and gzip, bzip2 or xz compressed (``.gz``,
``.bz2``, ``.xz`` on any of those); a path of another suffix takes the compressed forms of its name. The
regular expression (:func:`band_file_regex`) and the forms a name is written in
(:func:`_sample_names`) are built from the same suffix lists, so the check sees what discovery sees.

Examples
--------
>>> shared_file([("r", "{id}_r.fits.fz"), ("i", "{id}_r.fits")], id_digits=6)
('r', 'i', '111111_r.fits.fz')
>>> shared_file([("r", "{id}_r.fits"), ("i", "{id}_i.fits")], id_digits=6) is None
True
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import PurePosixPath

ID_PLACEHOLDER = "{id}"
FITS_EXTENSIONS = (".fits", ".fit", ".fts")
"""The suffixes of a FITS file's name (in any letter case)."""
TILE_COMPRESSED = ".fz"
STREAM_COMPRESSED = (".gz", ".bz2", ".xz")

_alternatives = "|".join(re.escape(extension[1:]) for extension in FITS_EXTENSIONS)
_FITS_SUFFIX = re.compile(rf"\.({_alternatives})$", re.IGNORECASE)
_STREAM = "|".join(re.escape(suffix) for suffix in STREAM_COMPRESSED)
_TILE = re.escape(TILE_COMPRESSED)
_FITS_FORMS = rf"(?i:\.(?:{_alternatives})(?:{_TILE})?|{_TILE})(?i:{_STREAM})?"
_COMPRESSION = rf"(?i:{_TILE})?(?i:{_STREAM})?"


def nfc(name: str) -> str:
    """``name`` in Unicode normal form NFC, the form file names are compared in."""
    return unicodedata.normalize("NFC", name)


def band_file_regex(path: str) -> re.Pattern[str]:
    """Regular expression of the file names (no directory) of a band of ``path``; group 1 is the id.

    >>> pattern = band_file_regex("a/img-{id}.fits")
    >>> [pattern.match(name).group(1) for name in ["img-7.fits", "img-7.FITS.gz", "img-7.fits.fz"]]
    ['7', '7', '7']
    """
    before, after = nfc(PurePosixPath(path).name).split(ID_PLACEHOLDER)
    suffix = _FITS_SUFFIX.search(after)
    tail = re.escape(after[: suffix.start()]) + _FITS_FORMS if suffix else re.escape(after) + _COMPRESSION
    # ASCII digits: \d takes any script's (trial: imageEUC_VIS-１００００９.fits was read as 100009)
    return re.compile("^" + re.escape(before) + r"([0-9]+)" + tail + "$")


def _sample_names(path: str, id_digits: int) -> list[str]:
    """A file name of ``path`` in each form the band finds (lower case suffixes, the path's own
    case elsewhere), of the id ``1...1`` in ``id_digits`` digits."""
    name = nfc(PurePosixPath(path).name).replace(ID_PLACEHOLDER, "1" * id_digits)
    suffix = _FITS_SUFFIX.search(name)
    streams = ("", *STREAM_COMPRESSED)
    if suffix is None:
        return [name + tile + stream for tile in ("", TILE_COMPRESSED) for stream in streams]
    stem = name[: suffix.start()]
    forms = [extension + tile for extension in FITS_EXTENSIONS for tile in ("", TILE_COMPRESSED)]
    return [name] + [stem + form + stream for form in (*forms, TILE_COMPRESSED) for stream in streams]


def _directory(path: str) -> str:
    return os.path.normpath(nfc(PurePosixPath(path).parent.as_posix()))


def shared_file(bands: Sequence[tuple[str, str]], id_digits: int) -> tuple[str, str, str] | None:
    """The first two bands (by name) of ``bands`` (name, path) that would find one file, and a name
    of such a file; None where each band finds files of its own.

    Two bands in one directory share a file when a name of one, in any form it is found in (the
    compressed forms), is also a name of the other, e.g. ``{id}_r.fits`` beside ``{id}_r.fits.fz``,
    or ``x{id}.fits`` beside ``x1{id}.fits`` (``x1123456.fits`` is object 1123456 of the first).
    """
    for first, (name_a, path_a) in enumerate(bands):
        for name_b, path_b in bands[first + 1 :]:
            if _directory(path_a) != _directory(path_b):
                continue
            regex_a, regex_b = band_file_regex(path_a), band_file_regex(path_b)
            for sample in _sample_names(path_a, id_digits):
                if regex_b.match(sample):
                    return name_a, name_b, sample
            for sample in _sample_names(path_b, id_digits):
                if regex_a.match(sample):
                    return name_a, name_b, sample
    return None
