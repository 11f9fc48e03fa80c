"""Header cards whose value astropy cannot parse, kept as their text so the band is still read.

astropy reads a file with a card like ``CDELT1 = 1.2.3E-05`` or ``CDELT2 = 0.1arcsec`` (pixels, other
cards), but raises ``VerifyError: Unparsable card`` when that card's value is asked for. Trial: the
checks of the WCS asked, and the band became UNREADABLE, its object unscored, while
``CDELT1 = 'abc'`` (a string, parsed) was BAD_WCS and scored. :func:`parsable_header` gives each such
card its value text as a string (astropy's own fix), as :func:`parsable_image` does for the cards the
store keeps from a fitsio header (an unparsable ``BUNIT`` kept raw ended a whole ingest);
:func:`with_unparsable` makes an unparsable WCS or scale card an unusable WCS (BAD_WCS, the reason
naming the card), and any other a reason: the band keeps its pixels.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

from pipeline.sources.fast_fits import NotSimpleImageError, RawHeader, card_value
from pipeline.sources.wcs_check import CELESTIAL_WCS_CARD

__all__ = ["fitsio_unparsable", "parsable_header", "parsable_image", "with_unparsable"]


def parsable_header(header):  # type: ignore[no-untyped-def]
    """``header`` with each card whose value astropy cannot parse made a string card of its text.

    Parameters
    ----------
    header : astropy.io.fits.Header

    Returns
    -------
    (astropy.io.fits.Header, tuple of str)
        ``header`` itself when every card parses; else a new header (each such card as astropy's
        ``verify("fix")`` makes it: its value text a string; one it cannot fix left out), and the
        keywords of those cards in card order.

    >>> from astropy.io import fits
    >>> card = fits.Card.fromstring("CDELT1  = 1.2.3E-05".ljust(80))
    >>> fixed, changed = parsable_header(fits.Header([fits.Card("NAXIS", 2), card]))
    >>> fixed["CDELT1"], changed
    ('1.2.3E-05', ('CDELT1',))
    """
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

    changed: list[str] = []
    cards = []
    for card in header.cards:
        try:
            card.value  # noqa: B018 - parses the value, or raises
            cards.append(card)
        except (VerifyError, ValueError):
            changed.append(str(card.keyword))
            with warnings.catch_warnings(), contextlib.suppress(VerifyError, ValueError):
                warnings.simplefilter("ignore")  # astropy's fix: the value text as a string
                cards.append(fits.Card.fromstring(card.image))
    if not changed:
        return header, ()
    return fits.Header(cards), tuple(changed)


@functools.lru_cache(maxsize=4096)
def parsable_image(image: str) -> str:
    """An 80-column card image astropy can read: ``image`` itself, or astropy's fix of it (an
    unparsable value made a string of its text) where it cannot; for the cards a store keeps.

    >>> parsable_image("BUNIT   =                1.2.3".ljust(80)).rstrip()
    "BUNIT   = '1.2.3   '"
    """
    from astropy.io import fits

    try:
        card_value(image)  # a few microseconds for a plain value; astropy's parse for the rest
        return image
    except NotSimpleImageError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.Card.fromstring(image).image


def fitsio_unparsable(header) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """Keywords of a fitsio header's cards that astropy cannot parse (cfitsio reads some, as
    ``RADESYS = ICRS`` unquoted, that the cards kept in the store could then not be read from).

    Parameters
    ----------
    header : fitsio.FITSHDR or another header (then ``()``: astropy's are made parsable by
        :func:`parsable_header`, the fast reader's refuse such cards)

    Raises
    ------
    NotSimpleImageError
        For a :class:`~pipeline.sources.fast_fits.RawHeader` with a card astropy cannot parse (the
        general readers then read the file, and name the card). Its cards are parsed one by one with
        :func:`~pipeline.sources.fast_fits.card_value`, remembered by card image: building its
        ``records()`` cost about 50 of the 135 us of reading a file (2-core machine, 2026-12-05).
    """
    if type(header) is RawHeader:
        for _, card in header.cards():
            if card[8:10] == "= " or card.startswith("HIERARCH"):
                card_value(card)  # raises NotSimpleImageError where astropy cannot parse it either
        return ()
    if not hasattr(header, "records"):
        return ()
    return tuple(
        str(record.get("name") or "")
        for record in header.records()
        if record.get("card_string")
        and parsable_image(str(record["card_string"]).ljust(80)[:80])
        != str(record["card_string"]).ljust(80)[:80]
    )


def with_unparsable(keywords: tuple[str, ...], defects: list[str]) -> tuple[list[str], list[str]]:
    """A band's WCS defects and reasons given its unparsable cards (:func:`parsable_header`).

    Parameters
    ----------
    keywords : tuple of str
        The unparsable cards' keywords.
    defects : list of str
        The WCS defects found otherwise (:func:`pipeline.sources.wcs_check.wcs_defect`).

    Returns
    -------
    (list of str, list of str)
        The defects, an unparsable WCS card (:data:`~pipeline.sources.wcs_check.CELESTIAL_WCS_CARD`)
        first: its WCS cannot be trusted; and the reasons to add (none when ``keywords`` is empty).

    >>> with_unparsable(("CDELT1", "EXPTIME"), ["CDELT1 = '1.2.3E-05' is not a finite number"])[0]
    ['unparsable card CDELT1', "CDELT1 = '1.2.3E-05' is not a finite number"]
    >>> with_unparsable((), [])
    ([], [])
    """
    wcs = [f"unparsable card {key}" for key in keywords if CELESTIAL_WCS_CARD.match(key)]
    notes = [f"unparsable card(s) {', '.join(keywords)} (values read as text; the pixels are kept)"]
    return [*wcs, *defects], notes if keywords else []
