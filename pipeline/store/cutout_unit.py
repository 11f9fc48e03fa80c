"""The ``BUNIT`` a cutout carries: the store's, with an older ``lenshunt simulate``'s ``'flux'`` mended.

A cutout gives back the input's ``BUNIT`` card as the store kept it. ``lenshunt simulate`` before
this version wrote ``BUNIT = 'flux'`` (or ``'scaled flux'``), which no unit parser reads: astropy's
``CCDData.read`` refused such a cutout ("BUNIT (flux) cannot be interpreted as valid unit", trial).
Such a card of a simulated input is written as the simulator's unit now (``adu``: data numbers
calibrated by ``MAGZP``, :data:`pipeline.sources.headers.SIMULATED_PIXEL_UNIT`); any other unit is
kept as the input wrote it, readable or not (``e-/s``): the cutout is as readable as its input.

>>> from astropy.io import fits
>>> header = fits.Header({"BUNIT": "flux", "MAGZP": 0.0, "ORIGIN": "lenshunt simulate"})
>>> readable_unit(header), header["BUNIT"]
('simulated flux unit written as adu', 'adu')
>>> header = fits.Header({"BUNIT": "e-/s"})
>>> readable_unit(header), header["BUNIT"]
(None, 'e-/s')
"""

from __future__ import annotations

import textwrap

from pipeline.sources.headers import SIMULATED_PIXEL_UNIT as PIXEL_UNIT

OLD_SIMULATED_UNITS = frozenset({"flux", "scaled flux"})
"""The ``BUNIT`` values ``lenshunt simulate`` wrote before it wrote ``adu``."""
OLD_SIMULATED_COMMENT = "flux-like, AB zero point MAGZP"
"""The comment of their ``BUNIT`` card."""
SIMULATOR_ORIGIN = "lenshunt simulate"


def unit_is_readable(value: str) -> bool:
    """Whether ``value`` parses as a unit in FITS syntax or in astropy's generic one (as
    ``CCDData.read`` parses ``BUNIT``)."""
    import astropy.units as u

    for unit_format in ("fits", None):
        try:
            u.Unit(value, format=unit_format)
        except (ValueError, TypeError):
            continue
        return True
    return False


def readable_unit(header) -> str | None:  # type: ignore[no-untyped-def]
    """Make ``header``'s ``BUNIT`` one a unit reader reads, in place; return what was changed, in
    words, or None where nothing was.

    A simulated input's old ``'flux'`` becomes ``adu`` (its ``MAGZP`` says what a unit is). Any
    other ``BUNIT`` is kept as the input wrote it, readable or not (``e-/s``, ``ELECTRONS/S``): the
    cutout is as readable as its input, and the input's unit is not lost (the first version left such
    a unit out; a data file's own unit string is the user's record of it).
    """
    value = header.get("BUNIT")
    if value is None or (isinstance(value, str) and unit_is_readable(value.strip())):
        return None
    text = str(value).strip()
    simulated = "MAGZP" in header and (  # a store keeps the BUNIT card, its comment too, not ORIGIN
        header.comments["BUNIT"] == OLD_SIMULATED_COMMENT or str(header.get("ORIGIN", "")) == SIMULATOR_ORIGIN
    )
    if not (simulated and text in OLD_SIMULATED_UNITS):
        return None
    header["BUNIT"] = (PIXEL_UNIT, "data numbers: a unit sum is AB mag MAGZP")
    line = (
        f"BUNIT was '{text}' in the input (an older lenshunt simulate), no unit a reader parses; "
        f"written as {PIXEL_UNIT}: data numbers, a pixel sum of 1 is AB magnitude MAGZP."
    )
    for part in textwrap.wrap(line, 72):
        header.add_comment(part)  # whole words a card (astropy cuts a long COMMENT mid-word)
    return f"simulated flux unit written as {PIXEL_UNIT}"
