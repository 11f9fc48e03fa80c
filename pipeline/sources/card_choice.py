"""Which kept header cards a store's fixed room per band holds when they do not all fit.

A store holds a fixed number of 80-column cards per object and band (:data:`STORE_CARDS` in a store
made today; 64 in a store made before 2026-12-06). Most headers fit whole, and are stored whole, in
file order. A header whose kept cards do not fit is chosen from, never cut in file order (trial: the
TAN-SIP order-4 terms of a 74-card header crowded out ``RADESYS``, ``EQUINOX``, ``BUNIT``, ``MAGZP``,
``EXPTIME``, ``GAIN``, ``RA`` and ``DEC``, and the cutout had a WCS missing its last SIP terms):

1. the cards that define the data come first: the WCS core (``CTYPE``, ``CRVAL``, ``CRPIX``, ``CD``
   or ``CDELT``/``PC``/``CROTA``, ``CUNIT``, ``LONPOLE``/``LATPOLE``, projection ``PV`` parameters),
   its frame (``RADESYS``, ``EQUINOX``, dates), units, zero points, exposure, gain and the position
   cards;
2. then the distortion (SIP ``A_*``/``B_*``/``AP_*``/``BP_*``, the ``PV`` polynomial of a ``TPV``
   projection), all of it or none: a partial distortion is a wrong WCS. Left out, the ``CTYPE`` cards
   lose their distortion (``RA---TAN-SIP`` becomes ``RA---TAN``, ``RA---TPV`` becomes ``RA---TAN``)
   and a COMMENT card (:data:`DISTORTION_DROPPED`) says what was left out, as an ingest warning does;
3. then the cards that describe the image (``FILTER``, ``TELESCOP``, ``INSTRUME``, the PSF and noise
   cards, the challenge's field cards), as many as fit.

The cards chosen keep their file order.

Examples
--------
>>> from astropy.io import fits
>>> core = [fits.Card(k, v).image for k, v in [("CTYPE1", "RA---TAN-SIP"), ("CTYPE2", "DEC--TAN-SIP")]]
>>> sip = [fits.Card("A_ORDER", 2).image, fits.Card("A_2_0", 1e-6).image, fits.Card("B_ORDER", 2).image]
>>> chosen, note = choose_cards(core + sip + [fits.Card("BUNIT", "e-/s").image], 4)
>>> [card[:8].decode().strip() for card in _images(chosen)], chosen[:80].decode().split("'")[1]
(['CTYPE1', 'CTYPE2', 'BUNIT', 'COMMENT'], 'RA---TAN')
>>> note.split(" left out")[0]
"header cards over the store's 4 per band: its SIP distortion (3 cards)"
"""

from __future__ import annotations

import re

CARD_LENGTH = 80
STORE_CARDS = 256
"""Cards a store made today holds per object and band (20,480 bytes, zero padded): a TPV WCS (up to
80 ``PV`` cards) or a SIP WCS of order 8 with its inverse (178 cards) and 78 more cards fit."""
DISTORTION_DROPPED = "lenshunt: distortion left out"
"""How the COMMENT card of a header whose distortion did not fit the store begins."""

_SIP = re.compile(r"^(A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_DMAX|B_DMAX|(A|B|AP|BP)_\d+_\d+)$")
_PV = re.compile(r"^(PV|PS)\d+_\d+$")
_DESCRIBING = re.compile(
    r"^(FILTER|TELESCOP|INSTRUME|NX|NY|RANGE X|"
    r"PSF_FWHM|PSF_TYPE|PSF_BETA|PSFFWHM|SEEING|FWHM|NOISESIG|SKYSIG|RDNOISE)$"
)
"""Cards that describe the image (instrument, PSF, noise, the challenge's field), kept after the others."""
_CTYPE = re.compile(r"^CTYPE\d$")


def _images(cards: bytes) -> list[bytes]:
    return [cards[i : i + CARD_LENGTH] for i in range(0, len(cards), CARD_LENGTH)]


def _keyword(image: str) -> str:
    """The keyword of a card image, upper-cased (``HIERARCH range x`` reads as ``RANGE X``)."""
    if image.upper().startswith("HIERARCH "):
        return image[9:].split("=")[0].strip().upper()
    return image[:8].strip().upper()


def _ctype_value(image: str) -> str:
    from astropy.io import fits

    return str(fits.Card.fromstring(image).value).strip().upper()


def choose_cards(images: list[str] | bytes, room: int) -> tuple[bytes, str | None]:
    """The cards of ``images`` (80-column card images, or their bytes joined) that fit ``room`` cards.

    Returns the chosen cards joined as ASCII bytes, in file order, and None when all fit, else what
    was left out (an ingest reason; a distortion left out also has a COMMENT card among the cards).
    """
    if isinstance(images, bytes):
        if len(images) <= room * CARD_LENGTH:  # most headers: as they are (ingest reads thousands a second)
            return images, None
        images = [image.decode("ascii", errors="replace") for image in _images(images)]
    if len(images) <= room:
        return "".join(images).encode("ascii", errors="replace"), None
    keys = [_keyword(image) for image in images]
    ctypes = [_ctype_value(image) for image, key in zip(images, keys, strict=True) if _CTYPE.match(key)]
    tpv = any(value.endswith("-TPV") for value in ctypes)
    distortion = [i for i, key in enumerate(keys) if _SIP.match(key) or (tpv and _PV.match(key))]
    describing = [i for i, key in enumerate(keys) if _DESCRIBING.match(key)]
    optional = set(distortion) | set(describing)
    core = [i for i in range(len(images)) if i not in optional]
    chosen, dropped = core[:room], False
    if distortion and len(chosen) + len(distortion) <= room:
        chosen += distortion
    elif distortion:  # all or none: a partial distortion is a wrong WCS
        dropped, chosen = True, chosen[: room - 1]
        images = [_undistorted(image) if _CTYPE.match(key) else image for image, key in zip(images, keys)]
    chosen += describing[: max(room - len(chosen) - dropped, 0)]
    left_out = sorted(set(range(len(images))) - set(chosen) - (set(distortion) if dropped else set()))
    notes = []
    kind = "TPV" if tpv else "SIP"
    if dropped:
        notes.append(
            f"its {kind} distortion ({len(distortion)} cards) left out whole: the WCS stored and written "
            "by `lenshunt cutout` is the undistorted projection (a COMMENT card says so)"
        )
    if left_out:
        names = sorted({keys[i] for i in left_out})
        notes.append(
            f"{len(left_out)} other card(s) left out ({', '.join(names[:6])}{', ...' * (len(names) > 6)})"
        )
    text = "".join(images[i] for i in sorted(chosen))
    if dropped:
        text += _comment(f"{DISTORTION_DROPPED} ({kind}, {len(distortion)} cards): over the store's room")
    note = f"header cards over the store's {room} per band: " + "; ".join(notes)
    return text.encode("ascii", errors="replace"), note


def _undistorted(image: str) -> str:
    """A CTYPE card image without its distortion code (``RA---TAN-SIP`` -> ``RA---TAN``)."""
    from astropy.io import fits

    card = fits.Card.fromstring(image)
    value = str(card.value).strip()
    base = value[:8] if len(value) > 8 and value[8] == "-" else value
    if base.upper().endswith("-TPV"):
        base = base[:-3] + "TAN"
    return fits.Card(card.keyword, base, card.comment).image


def _comment(text: str) -> str:
    from astropy.io import fits

    return fits.Card("COMMENT", text[:72]).image
