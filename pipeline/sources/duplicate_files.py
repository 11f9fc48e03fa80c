"""Which of an object's several files of one band is read (objects flagged DUPLICATE_ID).

Discovery orders the files of a band that match one id (:func:`pipeline.sources.discover`: the one
named as the layout writes it, else a plain file before compressed copies). The first of them is
read; when it gives no pixels because of the file itself (unreadable, truncated, another shape:
:data:`FILE_FAILURES`), the next file in that order that gives an image is read instead. New-user
trial: a ``.fits`` cut short by an interrupted copy, beside a complete ``.fits.gz`` of the same
cutout, left the object TRUNCATED and unscored although a good copy was there.

A band whose file holds no usable pixels (all NaN, a constant filler) keeps its file: that is what
the survey gave, not a broken file. Ingest (:func:`pipeline.store.reading.read_objects`) and the
naming of a cutout's input file (:func:`pipeline.store.cutout_source.input_files`) share this rule,
so both pick the same file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.flags import Flag
from pipeline.sources.fits_io import BandRead

FILE_FAILURES = int(Flag.MISSING_FILE | Flag.UNREADABLE | Flag.TRUNCATED | Flag.WRONG_SHAPE)
"""Flags of a read that failed because of the file, after which a band's next duplicate is tried."""


@dataclass(frozen=True)
class ChosenRead:
    """The read of the file used: its index in the candidates, its result, and why the preferred
    file (index 0) was passed over (empty when it is the one used)."""

    index: int
    result: BandRead
    passed_over: str = ""


def read_first_usable(paths: Sequence[str], read: Callable[[str], BandRead]) -> ChosenRead:
    """Read ``paths`` in order until one gives an image, as a band with several files is read.

    Parameters
    ----------
    paths
        The band's files of one object, the preferred first (discovery's order); at least one.
    read
        Reads one file (:func:`pipeline.sources.read_band` with the layout's arguments).

    Returns
    -------
    ChosenRead
        The first read with an image, when the preferred file failed with one of
        :data:`FILE_FAILURES`; otherwise the preferred file's read (also when no file gives an image:
        the object keeps the preferred file's flags and reason).
    """
    first = read(paths[0])
    if first.image is not None or not int(first.flags) & FILE_FAILURES:
        return ChosenRead(0, first)
    for index in range(1, len(paths)):
        result = read(paths[index])
        if result.image is not None:
            return ChosenRead(index, result, f"{Path(paths[0]).name}: {first.reason}")
    return ChosenRead(0, first)
