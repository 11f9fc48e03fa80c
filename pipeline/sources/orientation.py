"""Which way a band's pixel grid lies on the sky, and whether an object's bands agree on it.

Ingest stacks an object's bands pixel by pixel, so a band whose WCS turns or mirrors its pixels
against the other bands' (one band's CD matrix rotated by 90 degrees, or its ``CDELT1`` of the other
sign) gives the model a misaligned colour image; its pixel scale and position may be right all the
same (before: such a band passed with flags 0). :func:`grid_orientation` reads the orientation off the
band's pixel matrix (:func:`pipeline.sources.headers.summarise_header` computes it once per distinct
set of WCS cards, :mod:`pipeline.sources.card_memo`), and :func:`orientation_mismatch` finds the
bands of each object that disagree with the others, which ingest flags ORIENTATION_MISMATCH.

The orientation is that of the intermediate world coordinates (FITS Paper I), whose axes point east
and north at the reference point for the standard's default ``LONPOLE`` (Paper II), so it is the
grid's orientation on the sky; a zenithal projection's explicit ``LONPOLE`` turns the sky on that
plane by ``LONPOLE - 180`` degrees, which is taken into account. The bands of one object lie within
arcseconds of each other, where the convergence of the meridians between their reference points is
far below the tolerance. ``tests/test_orientation.py`` holds the answers to astropy's (the world
coordinates of pixel steps through :class:`astropy.wcs.WCS`). astropy is not used here: building a
WCS costs about 20 us (0.7 ms from a header), which for a set whose files each have their own CD
matrix would be paid on every file (the reading of a file costs about 90 us).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.flags import ORIENTATION_TOLERANCE_DEG

ZENITHAL = frozenset(
    {"AZP", "SZP", "TAN", "STG", "SIN", "ARC", "ZPN", "ZEA", "AIR", "TPV", "TPD", "TNX", "ZPX", "NCP"}
)
"""Zenithal projection codes (Paper II, and the TAN-like ones astropy reads): their default
``LONPOLE`` is 180 degrees for a reference point off the celestial pole."""

SKY, MIRRORED = 1, -1
"""Parities: a grid seen as the sky is (north up, east left when unrotated), or mirrored (east right)."""


def grid_orientation(
    matrix: tuple[tuple[float, float], tuple[float, float]] | None,
    *,
    latitude_first: bool = False,
    lonpole_turn_deg: float = 0.0,
) -> tuple[float, int]:
    """The rotation and parity of a pixel grid on the sky, from its pixel matrix.

    Parameters
    ----------
    matrix
        The CD matrix (or ``CDELT`` times ``PC``), rows the world axes in header order, columns the
        pixel axes (``CDi_j``: world axis i, pixel axis j), in any one angular unit; None: unknown.
    latitude_first
        Whether world axis 1 is the latitude (``CTYPE1 = 'DEC--TAN'``): its rows are swapped.
    lonpole_turn_deg
        How far (degrees) an explicit ``LONPOLE`` turns the sky on the projection plane from the
        default (``LONPOLE - 180`` for a zenithal projection; 0 otherwise).

    Returns
    -------
    (float, int)
        The position angle (degrees east of north, in [0, 360)) of the pixel grid's +y axis (the
        image's "up"), for the rotation nearest to the matrix (its polar decomposition, so a
        non-square or sheared pixel changes it no more than its axes' mean turn), and the parity,
        :data:`SKY` or :data:`MIRRORED` (the sign of the determinant, east against north); NaN and 0
        when unknown or singular.

    Examples
    --------
    North up, east left (``CDELT1 < 0``); the same with ``CDELT1`` of the other sign; a CD matrix
    turned by 90 degrees:

    >>> grid_orientation(((-1e-5, 0.0), (0.0, 1e-5)))
    (0.0, 1)
    >>> grid_orientation(((1e-5, 0.0), (0.0, 1e-5)))
    (0.0, -1)
    >>> grid_orientation(((0.0, 1e-5), (1e-5, 0.0)))
    (90.0, 1)
    """
    if matrix is None:
        return math.nan, 0
    (a, b), (c, d) = matrix[::-1] if latitude_first else matrix
    determinant = a * d - b * c
    if not (math.isfinite(determinant) and determinant != 0.0):
        return math.nan, 0
    # east of north of the +y pixel step, for the rotation nearest the matrix: with east mirrored
    # first (a -> -a, b -> -b) where the grid is seen as the sky, so that the matrix is a turn
    if determinant < 0:
        angle, parity = math.atan2(b + c, d - a), SKY
    else:
        angle, parity = math.atan2(b - c, a + d), MIRRORED
    # an explicit LONPOLE turns the sky about the reference point, north on the plane with it
    degrees = (math.degrees(angle) + lonpole_turn_deg) % 360.0
    return (0.0 if degrees >= 360.0 else degrees), parity


def orientation_mismatch(rotation_deg: np.ndarray, parity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bands of each object whose pixel grid lies otherwise than the object's: mirrored, or turned.

    The object's orientation is that of the band with the most bands agreeing with it (the same
    parity, rotations at most :data:`pipeline.flags.ORIENTATION_TOLERANCE_DEG` apart), the first
    such band on a tie: the first band's when two disagree, the others' when one of three or more
    does. Bands of unknown orientation (parity 0) are neither compared nor flagged.

    Parameters
    ----------
    rotation_deg : ndarray of float, shape (n, n_bands)
        :func:`grid_orientation`'s angles, degrees.
    parity : ndarray of int, shape (n, n_bands)
        Its parities; 0 where unknown.

    Returns
    -------
    (ndarray of bool, ndarray of bool), each of shape (n, n_bands)
        Where the band is mirrored against the object's orientation (the other parity), and where it
        is not but turned from it by more than the tolerance.

    >>> rotation, parity = np.array([[0.0, 359.5, 90.0, 0.0]]), np.array([[1, 1, 1, -1]])
    >>> mirrored, turned = orientation_mismatch(rotation, parity)
    >>> mirrored.tolist(), turned.tolist()
    ([[False, False, False, True]], [[False, False, True, False]])
    """
    rotation = np.asarray(rotation_deg, dtype=np.float64)
    parity = np.asarray(parity)
    known = parity != 0
    with np.errstate(invalid="ignore"):
        turn = np.abs((rotation[:, :, None] - rotation[:, None, :] + 180.0) % 360.0 - 180.0)
    same_parity = parity[:, :, None] == parity[:, None, :]
    agree = same_parity & (turn <= ORIENTATION_TOLERANCE_DEG) & known[:, :, None] & known[:, None, :]
    reference = np.argmax(agree.sum(axis=2), axis=1)  # (n,): the first of the most agreed-with bands
    rows = np.arange(rotation.shape[0])
    compared = known & known[rows, reference][:, None]
    mirrored = compared & ~same_parity[rows, reference]
    return mirrored, compared & ~mirrored & ~agree[rows, reference]
