"""Which rules of reading files a store's objects were read by, and the note when they are older.

An ingest reads each file once; later ingests re-read an object only when its files change
(:mod:`pipeline.store.repair`). When lenshunt's reading rules change (a new flag, another choice
of file), objects read before keep what the old rules gave. The store records the revision of the
rules its objects were all read by (the ``reader_revision`` attribute): the current one when the
store is made, and again after ``lenshunt ingest --reread`` re-reads every object. An ingest of a
store read by older rules says so and what changed since (review: a store made before the BAD_WCS
and ORIENTATION_MISMATCH checks kept its unflagged objects for good, with no way to re-read them).

Bump :data:`READER_REVISION`, adding to :data:`REVISIONS`, whenever the same file would come out
otherwise (other pixels, flags or header values).
"""

from __future__ import annotations

import os

READER_REVISION = 9
"""The revision of today's rules of reading files."""

REVISIONS: dict[int, str] = {
    1: "stores made before 2026-12-05 recorded no revision; their objects may lack flags added since "
    "they were read (e.g. BAD_WCS for WCS cards that are no finite number, "
    "ORIENTATION_MISMATCH, CONSTANT_IMAGE)",
    2: "a band whose preferred file is unreadable, truncated or of another shape is read from the next "
    "of its duplicates (DUPLICATE_ID) that gives an image (2026-12-05)",
    3: "an RA card beyond a turn ([-360, 360] deg in the layout's unit) is unusable, as a DEC beyond a "
    "pole is (NO_COORDINATES where nothing else gives a position); a file TRUNCATED in its data keeps "
    "its header's position; the shipped sglc1 layouts declare their files' WCS a placeholder "
    "(wcs_position: false), which --reread records in the store (2026-12-05)",
    4: "a band with BSCALE = 0 (every physical value BZERO) is UNREADABLE naming the card, not a blank "
    "image (CONSTANT_IMAGE); a band whose position cards (RA/DEC) are over 2 arcsec from its own WCS's "
    "world position of the image centre is flagged POSITION_MISMATCH (not where the layout's WCS is a "
    "placeholder) (2026-12-06)",
    5: "header cards over the store's room are chosen, not cut in file order: the WCS core, frame, units, "
    "zero point, exposure and position cards first, a distortion (SIP, TPV) whole or left out whole with a "
    "COMMENT; a store made today holds 256 cards a band (64 before), and the PSF and noise cards "
    "(PSF_FWHM, PSF_TYPE, NOISESIG, ...) are kept (2026-12-06)",
    6: "a compressed file (gzip, bzip2, xz, zip) is read to the end of its stream and its CRC checked: one "
    "that fails (a .fits.gz with bytes overwritten or a bit flipped, read before as good data with wrong "
    "pixels) is UNREADABLE, 'corrupt file (its gzip stream fails its CRC check)' (2026-12-07)",
    7: "a file whose image HDU carries DATASUM or CHECKSUM cards that do not match its bytes (data "
    "overwritten after it was written, read before as good data) is UNREADABLE, 'corrupt file (DATASUM "
    "123 does not match its data: 456)'; a .fits.fz whose GZIP tile is corrupt is UNREADABLE, not "
    "TRUNCATED, and keeps its header's position (2026-12-07)",
    8: "the null pixels (BLANK, ZBLANK) of an unsigned integer image (BZERO = 32768, 2**31, ...; read before "
    "as numbers, 65535 or 0, with no flag), of a BITPIX 8 image (BLANK = 0, or BZERO = -128: UNREADABLE "
    "before) and of any integer image with BLANK = 0 are NaN and flagged NULL_PIXELS (2026-12-07)",
    9: "a compressed file cut in its last bytes (gzip's CRC and length, bzip2's or xz's end of stream; read "
    "before with flags 0) is TRUNCATED, 'truncated file (its gzip stream ends early)', as is a cut .fits.xz "
    "(UNREADABLE 'not a FITS file' before) and a file whose whole streams hold a FITS file cut in its data "
    "or cut after a header's END card; an xz file of several streams with stream padding (null bytes) "
    "between them is read whole (UNREADABLE before); a cut compressed file keeps the position of the "
    "header its bytes before the cut hold (2026-12-07)",
}
"""What each revision changed: an object read by revision r lacks the changes of every later one."""


def older_rules_note(revision: int, n_objects: int, left: int = 0) -> str | None:
    """The warning for a store of ``n_objects`` objects read by rules of ``revision``; None when current.

    ``left``: objects a ``--reread`` just left as stored (files gone or failing), why the store keeps
    its revision (trial: the warning came back after a reread without a word of why). A revision
    above today's is a store written by a newer lenshunt.

    Examples
    --------
    >>> older_rules_note(READER_REVISION, 10) is None
    True
    >>> older_rules_note(1, 0) is None  # an empty store has nothing to re-read
    True
    >>> older_rules_note(READER_REVISION + 1, 10).startswith("the store's objects were read by a newer")
    True
    """
    if n_objects == 0 or revision == READER_REVISION:
        return None
    if revision > READER_REVISION:
        return (
            f"the store's objects were read by a newer lenshunt's rules (revision {revision}; this one reads "
            f"by revision {READER_REVISION}): objects this one adds or re-reads may come out otherwise; "
            "upgrade lenshunt"
        )
    changed = "; ".join(f"revision {r}: {REVISIONS[r]}" for r in range(revision + 1, READER_REVISION + 1))
    why = (
        f"; this --reread left {left} object(s) as stored (files gone or failing: the lines above name "
        "them), so the store keeps its revision until they are restored and read again"
        if left
        else ""
    )
    return (
        f"the store's objects were read by older rules (revision {revision}, today's {READER_REVISION}; "
        f"{changed}); `lenshunt ingest --reread` reads every object again with today's rules (those "
        f"that come out otherwise are rewritten, and a score run scores them again){why}"
    )


def record_current_rules(store: str | os.PathLike[str]) -> None:
    """Record that every object of ``store`` is read by today's rules (a new store, a whole re-read)."""
    from pipeline.store.zarr_store import update_attributes

    update_attributes(store, {"reader_revision": READER_REVISION})
