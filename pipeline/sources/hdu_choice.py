"""Which HDU of a FITS file holds a band's image: the one the layout names, else the only one.

A multi-extension cutout often holds the science image beside a weight, variance or mask map
(``SCI``, ``WHT``, ``RMS``, ...) of the same shape. Taking the first image HDU would ingest the
weight map as the science image whenever it comes first (trial: a ``WHT`` extension before ``SCI``
was stored as the VIS image with no flag). So the reader never guesses between images:

- a layout (or one of its bands) names the HDU by ``EXTNAME`` (case and trailing blanks ignored;
  ``PRIMARY`` is the primary HDU when it has no ``EXTNAME``) or by index (0 the primary; a
  tile-compressed image is the HDU of its binary table, as astropy and fitsio count them); a named
  HDU the file has but without pixels is :class:`HduChoiceError`, never another image read instead;
- with none named, or one named that the file lacks (by name or by index: ``hdu: 1`` on a file whose
  one image is its primary), the file's only image HDU with pixels is read: there is nothing to
  choose between (an empty primary HDU before it, a tile-compressed image or a 1 x ny x nx cube are
  read as before), so one layout reads a delivery mixing plain single-image files with
  multi-extension ones (trial: ``hdu: SCI`` made every plain file UNREADABLE); but not where the
  layout names an ``EXTNAME`` and that only image is named as a weight, noise or mask map (a ``WHT``
  map delivered alone is no ``SCI`` image; :data:`NOT_SCIENCE`); a file with two or more is
  :class:`HduChoiceError`, which the
  reader turns into UNREADABLE with a reason naming the HDUs (index and ``EXTNAME``, ``PRIMARY`` for
  an unnamed primary) and what the layout says.

Examples
--------
>>> hdus = [ImageHdu(0, "", False), ImageHdu(1, "WHT", True), ImageHdu(2, "SCI", True)]
>>> plain = [ImageHdu(0, "", True)]
>>> choose_hdu(hdus, "sci"), choose_hdu(hdus, 1), choose_hdu(hdus[:2], None), choose_hdu(plain, "SCI")
(2, 1, 1, 0)
>>> choose_hdu(hdus[:2], "SCI")
Traceback (most recent call last):
...
pipeline.sources.hdu_choice.HduChoiceError: the only image HDU with pixels is 1 'WHT', not 'SCI', which the
layout names: none is guessed
>>> choose_hdu(hdus, None)
Traceback (most recent call last):
...
pipeline.sources.hdu_choice.HduChoiceError: 2 image HDUs with pixels (1 'WHT', 2 'SCI') and the layout
names none: set `hdu` (an EXTNAME or index) in the layout or in the band
>>> choose_hdu(hdus, "RMS")
Traceback (most recent call last):
...
pipeline.sources.hdu_choice.HduChoiceError: no image HDU 'RMS', which the layout names, and 2 image
HDUs with pixels (1 'WHT', 2 'SCI'): none is guessed
>>> choose_hdu(hdus, 0)
Traceback (most recent call last):
...
pipeline.sources.hdu_choice.HduChoiceError: image HDU 0 PRIMARY, which the layout names, has no pixels
"""

from __future__ import annotations

from typing import NamedTuple

NOT_SCIENCE = frozenset(
    {
        *("WHT", "WHT_MAP", "WEIGHT", "WGT", "RMS", "ERR", "ERROR", "VAR", "VARIANCE", "IVAR", "INVVAR"),
        *("NOISE", "SIG", "SIGMA", "MASK", "MSK", "FLAG", "FLAGS", "DQ", "BPM", "PSF", "EXP", "EXPMAP"),
        *("CTX", "CON", "BKG", "BACK", "BACKGROUND", "SKY", "MODEL", "RESID", "SEG", "SEGMAP"),
    }
)
"""Values of ``EXTNAME`` of the maps that come beside a science image (weight, noise, mask, PSF,
exposure, context, background, model, segmentation): a file's only image so named is not read for
a science image the layout names otherwise (a weight map delivered alone is no ``SCI`` image)."""


class ImageHdu(NamedTuple):
    """One image HDU of a file (plain or tile-compressed): its index, ``EXTNAME`` ("" if none) and
    whether it has pixels (every axis longer than 0)."""

    index: int
    name: str
    has_pixels: bool


class HduChoiceError(Exception):
    """The file's image to read is not known: the named HDU is empty, or several could be."""


def choose_hdu(hdus: list[ImageHdu], wanted: int | str | None) -> int | None:
    """Index of the HDU to read among a file's image HDUs, or None when the file has no image.

    Parameters
    ----------
    hdus
        Every image HDU of the file, in file order (tables left out, a tile-compressed image in).
    wanted
        The layout's ``hdu`` for the band: an index, an ``EXTNAME``, or None (the only image with
        pixels). A named HDU that is not an image HDU of the file is as None.

    Returns
    -------
    int or None
        The HDU's index in the file; None when the named HDU is absent (or none is named) and no
        image HDU has pixels.

    Raises
    ------
    HduChoiceError
        If the named HDU has no pixels, or if it is absent (or none is named) and two or more
        image HDUs have pixels (the message lists them, path-free).
    """
    found: list[ImageHdu] = []
    if isinstance(wanted, int):
        found = [hdu for hdu in hdus if hdu.index == wanted]
    elif wanted is not None:
        key = wanted.strip().upper()
        found = [hdu for hdu in hdus if hdu.name.strip().upper() == key]
        if not found and key == "PRIMARY":
            found = [hdu for hdu in hdus if hdu.index == 0 and not hdu.name.strip()]
    if found:
        if not found[0].has_pixels:
            raise HduChoiceError(f"image HDU {_label(found[0])}, which the layout names, has no pixels")
        return found[0].index
    with_pixels = [hdu for hdu in hdus if hdu.has_pixels]
    if (
        len(with_pixels) == 1
        and isinstance(wanted, str)
        and with_pixels[0].name.strip().upper() in NOT_SCIENCE
    ):
        # one image, but a weight (noise, mask, ...) map: delivered alone, no science image (review)
        raise HduChoiceError(
            f"the only image HDU with pixels is {_label(with_pixels[0])}, not {wanted!r}, which the layout "
            "names: none is guessed"
        )
    if len(with_pixels) <= 1:  # nothing to choose between
        return with_pixels[0].index if with_pixels else None
    listed = f"{len(with_pixels)} image HDUs with pixels ({', '.join(map(_label, with_pixels))})"
    if wanted is None:
        raise HduChoiceError(
            f"{listed} and the layout names none: set `hdu` (an EXTNAME or index) in the layout or in "
            "the band"
        )
    raise HduChoiceError(f"no image HDU {wanted!r}, which the layout names, and {listed}: none is guessed")


def _label(hdu: ImageHdu) -> str:
    """The HDU as a reason names it: its index and ``EXTNAME`` (``PRIMARY`` for an unnamed primary).

    >>> _label(ImageHdu(0, "", True)), _label(ImageHdu(2, "SCI ", True)), _label(ImageHdu(3, "", True))
    ('0 PRIMARY', "2 'SCI'", '3')
    """
    name = hdu.name.strip()
    return f"{hdu.index} {name!r}" if name else "0 PRIMARY" if hdu.index == 0 else str(hdu.index)
