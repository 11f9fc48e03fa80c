"""Remember what a header check found, by the card images it read, across the files of a set.

The cutouts of one set share most of their header cards (CTYPE, CUNIT, CDELT or CD, RADESYS,
BUNIT, zero points); only a few differ per file (CRVAL, RA/DEC, ids). Ingest checks every band of
every object: its WCS (:func:`pipeline.sources.wcs_check.wcs_defect`), its pixel scale and
aspect, unit and zero point (:func:`pipeline.sources.headers.summarise_header`). Worked out afresh
for every file, these checks (and the card parses behind them) took about 45 of the 110 us that
reading one simulated euclid-sglc2 file cost (``read_band``, 2-core machine, 2026-12-05;
bench/RESULTS.md, "Ingest per object and codecs"). Remembered here, they cost a look-up keyed by
the card images they read: an ingest works each of them out once per distinct set of such cards.

Only :class:`~pipeline.sources.fast_fits.RawHeader` headers are remembered: their values are a pure
function of their 80-column card images (the first card of a keyword wins), so a function of some
keywords' values gives the same answer for the same images. Other headers (astropy, fitsio, dicts)
are passed to the function every time. A remembered function must read the header only through
``in``, ``[]`` and ``get`` of the keywords it declares (``tests/test_card_memo.py`` checks this).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from pipeline.sources.fast_fits import RawHeader

T = TypeVar("T")

MEMO_SIZE = 1024
"""Distinct card sets remembered per function; the memory is emptied when full (at most a few MB)."""


def by_cards(keywords: tuple[str, ...]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate ``function(header)`` so that its result for a RawHeader is remembered by the card
    images of ``keywords`` (upper case; an absent keyword counts as absent).

    The decorated function keeps ``keywords`` and the undecorated function (``uncached``).
    Exceptions are not remembered: the function raises again for the next such header.

    Parameters
    ----------
    keywords
        Every keyword the function may read; reading another one is a bug the tests catch.
    """

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        memory: dict[tuple[str | None, ...], T] = {}

        @functools.wraps(function)
        def remembered(header) -> T:  # type: ignore[no-untyped-def]
            if type(header) is not RawHeader:
                return function(header)
            key = header.card_images(keywords)
            try:
                return memory[key]
            except KeyError:
                pass
            result = function(header)
            if len(memory) >= MEMO_SIZE:  # a set with ever new cards: start again (threads: benign)
                memory.clear()
            memory[key] = result
            return result

        remembered.keywords = keywords  # type: ignore[attr-defined]
        remembered.uncached = function  # type: ignore[attr-defined]
        return remembered

    return decorate
