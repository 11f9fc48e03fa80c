"""The sky position a band file's image header gives, whether or not its pixels could be read.

:func:`header_position` is :func:`pipeline.sources.positions.sky_position` for a header of image
dimensions ``dims``: the position cards, else (where the layout's WCS gives a position) the WCS
centre of a 2-D image. Ingest asks it of every file it reads, and of a file TRUNCATED in its data,
whose header is whole: such a file has no pixels but still a position (trial: an object whose only
file was cut at half its data lost its sky position, "no band file with a header"). Where the
position comes from the cards, it also says whether they disagree with the file's own WCS
(:func:`pipeline.sources.card_wcs.card_wcs_disagreement`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pipeline.sources.card_wcs import card_wcs_disagreement
from pipeline.sources.positions import sky_position
from schemas.layout import CoordinateSpec


def header_position(
    header: Mapping,
    dims: tuple[int, ...],
    coordinates: tuple[CoordinateSpec, ...],
    position: bool | Literal["cheap"],
    *,
    wcs: bool = True,
    wcs_defects: list[str] | None = None,
    disagreements: list[str] | None = None,
    unusable_cards: list[str] | None = None,
) -> tuple[float, float, str | None]:
    """(ra, dec) in degrees and None, or NaN, NaN and why there is none.

    Parameters
    ----------
    header
        The image HDU's header (completed by the primary's under ``INHERIT = T``).
    dims
        The image's dimensions (numpy order, degenerate axes dropped); the WCS centre is read only
        for a 2-D image.
    coordinates
        The layout's position cards, in order.
    position
        True, or ``"cheap"``: no astropy WCS (see :func:`pipeline.sources.read_band`).
    wcs
        The layout's ``wcs_position``: False where the WCS is a placeholder.
    wcs_defects
        Filled with why the celestial WCS is unusable, if it is (see ``sky_position``).
    disagreements
        Filled, where given and the layout's WCS gives positions, with why the position cards
        disagree with the WCS's world position of the image centre, if they do (a full WCS read only
        where ``position`` is True).
    unusable_cards
        Filled with which position cards are there but unusable, if some are (see ``sky_position``).

    Examples
    --------
    >>> from schemas.layout import CoordinateSpec
    >>> cards = (CoordinateSpec(ra="RA", dec="DEC", unit="deg"),)
    >>> header_position({"RA": 150.0, "DEC": 2.0}, (101, 101), cards, True)
    (150.0, 2.0, None)
    """
    shape = (int(dims[0]), int(dims[1])) if len(dims) == 2 else None
    ra, dec, problem = sky_position(
        header,
        coordinates,
        shape,
        full_wcs=position is True,
        wcs_defects=wcs_defects,
        wcs=wcs,
        unusable_cards=unusable_cards,
    )
    if disagreements is not None and wcs and shape is not None and problem is None:
        disagreement = card_wcs_disagreement(
            header, coordinates, shape, ra, dec, full_wcs=position is True, wcs_defects=wcs_defects
        )
        if disagreement:
            disagreements.append(disagreement)
    return ra, dec, problem
