"""Which HDU of a FITS file holds a band's image: the one the layout names, else the only one.

A multi-extension cutout often holds the science image beside a weight, variance or mask map
(``SCI``, ``WHT``, ``RMS``, ...) of the same shape. Taking the first image HDU would ingest the
weight map as the science image whenever it comes first (trial: a ``WHT`` extension before ``SCI``
was stored as the VIS image with no flag). So the reader never guesses between images:

- a layout (or one of its bands) names the HDU by ``EXTNAME`` (case and trailing blanks ignored;
  ``PRIMARY`` is the primary HDU when it has no ``EXTNAME``) or by index (0 the primary; a
  tile-compressed image is the HDU of its binary table, as astropy and fitsio count them);
- with none named, the file's only image HDU with pixels is read (an empty primary HDU before
  it, a tile-compressed image or a 1 x ny x nx cube are read as before); a file with two or more is
  :class:`HduChoiceError`, which the reader turns into UNREADABLE with a reason naming the HDUs and
  the layout key to set.

Examples
--------
>>> hdus = [ImageHdu(0, "", False), ImageHdu(1, "WHT", True), ImageHdu(2, "SCI", True)]
>>> choose_hdu(hdus, "sci"), choose_hdu(hdus, 1), choose_hdu(hdus[:2], None)
(2, 1, 1)
>>> choose_hdu(hdus, None)
Traceback (most recent call last):
...
pipeline.sources.hdu_choice.HduChoiceError: 2 image HDUs with pixels (1 'WHT', 2 'SCI') and the layout
names none: set `hdu` (an EXTNAME or index) in the layout or in the band
"""

from __future__ import annotations

from typing import NamedTuple


class ImageHdu(NamedTuple):
    """One image HDU of a file (plain or tile-compressed): its index, ``EXTNAME`` ("" if none) and
    whether it has pixels (every axis longer than 0)."""

    index: int
    name: str
    has_pixels: bool


class HduChoiceError(Exception):
    """The file's image to read is not known: the named HDU is absent or empty, or several could be."""


def choose_hdu(hdus: list[ImageHdu], wanted: int | str | None) -> int | None:
    """Index of the HDU to read among a file's image HDUs, or None when the file has no image.

    Parameters
    ----------
    hdus
        Every image HDU of the file, in file order (tables left out, a tile-compressed image in).
    wanted
        The layout's ``hdu`` for the band: an index, an ``EXTNAME``, or None (the only image with
        pixels).

    Returns
    -------
    int or None
        The HDU's index in the file; None when ``wanted`` is None and no image HDU has pixels.

    Raises
    ------
    HduChoiceError
        If the named HDU is not an image HDU of the file or has no pixels, or if none is named and
        two or more image HDUs have pixels (the message lists them, path-free).
    """
    if wanted is None:
        with_pixels = [hdu for hdu in hdus if hdu.has_pixels]
        if len(with_pixels) > 1:
            raise HduChoiceError(
                f"{len(with_pixels)} image HDUs with pixels ({_listed(with_pixels)}) and the layout names "
                "none: set `hdu` (an EXTNAME or index) in the layout or in the band"
            )
        return with_pixels[0].index if with_pixels else None
    if isinstance(wanted, int):
        found = [hdu for hdu in hdus if hdu.index == wanted]
    else:
        key = wanted.strip().upper()
        found = [hdu for hdu in hdus if hdu.name.strip().upper() == key]
        if not found and key == "PRIMARY":
            found = [hdu for hdu in hdus if hdu.index == 0 and not hdu.name.strip()]
    if not found:
        return_list = _listed(hdus) or "none"
        raise HduChoiceError(f"no image HDU {wanted!r}, which the layout names (image HDUs: {return_list})")
    if not found[0].has_pixels:
        raise HduChoiceError(f"image HDU {wanted!r}, which the layout names, has no pixels")
    return found[0].index


def _listed(hdus: list[ImageHdu]) -> str:
    return ", ".join(f"{h.index} {h.name.strip()!r}" if h.name.strip() else str(h.index) for h in hdus)
