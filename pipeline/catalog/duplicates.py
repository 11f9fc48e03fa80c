"""Objects of one catalog at the same sky position: one galaxy cut out twice under two ids.

Survey cutouts are made per tile, and tiles overlap: a galaxy in the overlap is catalogued, cut
out and scored once per tile, under two ids. Its two rows then look like two candidates to rank,
inspect and count. The catalog keeps both (every input object appears exactly once) and flags
each object that has another within :data:`DUPLICATE_RADIUS_ARCSEC` ``DUPLICATE_POSITION``.

The search is astropy's (:meth:`astropy.coordinates.SkyCoord.search_around_sky`, a k-d tree of
unit vectors); objects without a position never match.

Examples
--------
>>> ra = np.array([150.0, 150.0 + 0.2 / 3600, 151.0, np.nan])
>>> dec = np.array([2.0, 2.0, 2.0, np.nan])
>>> groups = duplicate_groups(ra, dec)
>>> groups.tolist()
[0, 0, -1, -1]
>>> duplicate_groups(np.array([1.0, 1.0]), np.array([95.0, 95.0])).tolist()  # off the sphere
[-1, -1]
"""

from __future__ import annotations

import numpy as np

__all__ = ["DUPLICATE_RADIUS_ARCSEC", "describe_duplicates", "duplicate_groups", "same_position_ids"]

DUPLICATE_RADIUS_ARCSEC = 0.5
"""Largest separation (arcsec) of two objects counted as one: well inside a galaxy's core (five VIS
pixels), while two galaxies this close are one blend whose cutouts show the same scene. Random
positions of 10^5 objects on 16 deg^2 (the simulator's field) put about 40 of them (0.04 %) this
close to another by chance."""


def duplicate_groups(
    ra: np.ndarray, dec: np.ndarray, radius_arcsec: float = DUPLICATE_RADIUS_ARCSEC
) -> np.ndarray:
    """Each object's group of objects within ``radius_arcsec`` of one another (friends of friends).

    Parameters
    ----------
    ra, dec : ndarray of float, shape (n,)
        ICRS degrees; NaN where an object has no position.
    radius_arcsec : float
        Linking length.

    Returns
    -------
    ndarray of int64, shape (n,)
        The smallest row index of the object's group, or -1 where no other object lies within
        ``radius_arcsec`` (and where the object has no position).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ra, dec = np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)
    groups = np.full(ra.size, -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):  # a position off the sphere (a damaged store) matches nothing
        rows = np.flatnonzero(np.isfinite(ra) & (np.abs(dec) <= 90))
    if rows.size < 2:
        return groups
    coords = SkyCoord(ra[rows] * u.deg, dec[rows] * u.deg)
    first, second, _, _ = coords.search_around_sky(coords, radius_arcsec * u.arcsec)
    other = first != second
    if not other.any():
        return groups
    graph = coo_matrix((np.ones(int(other.sum())), (first[other], second[other])), shape=(rows.size,) * 2)
    _, component = connected_components(graph, directed=False)
    linked = np.zeros(rows.size, dtype=bool)
    linked[first[other]] = True
    smallest = np.full(rows.size, rows.size, dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(rows.size))
    groups[rows[linked]] = rows[smallest[component[linked]]]
    return groups


def describe_duplicates(
    groups: np.ndarray,
    object_ids: np.ndarray,
    limit: int = 5,
    radius_arcsec: float = DUPLICATE_RADIUS_ARCSEC,
) -> str:
    """One line naming the objects of :func:`duplicate_groups` groups: ``"" `` where there are none.

    >>> describe_duplicates(np.array([0, 0, -1, 3, 3, 3]), np.array([11, 12, 13, 14, 15, 16]))
    '5 objects in 2 groups within 0.5" of one another (DUPLICATE_POSITION): 11 = 12; 14 = 15 = 16'
    """
    groups = np.asarray(groups)
    linked = groups >= 0
    if not linked.any():
        return ""
    heads = np.unique(groups[linked])
    shown = "; ".join(
        " = ".join(str(int(i)) for i in np.asarray(object_ids)[groups == head]) for head in heads[:limit]
    )
    more = f"; and {heads.size - limit} more groups" if heads.size > limit else ""
    return (
        f"{int(linked.sum())} objects in {heads.size} group{'s' if heads.size > 1 else ''} within "
        f'{radius_arcsec:g}" of one '
        f"another (DUPLICATE_POSITION): {shown}{more}"
    )


def same_position_ids(
    ra: np.ndarray, dec: np.ndarray, object_ids: np.ndarray, wanted: np.ndarray
) -> dict[int, list[int]]:
    """For each object of ``wanted`` at another's position, the ids of those others (its group in
    :func:`duplicate_groups`), ascending; objects alone are left out.

    A gallery page names them (trial: the page of a DUPLICATE_POSITION object did not say which
    object shares its position, the console of the score run did).

    Parameters
    ----------
    ra, dec, object_ids : ndarray, shape (n,)
        The whole catalog's positions (ICRS degrees, NaN where none) and ids.
    wanted : ndarray of int
        The ids asked about (e.g. the gallery's).

    >>> same_position_ids(np.array([150.0, 150.0, 151.0]), np.array([2.0, 2.0, 2.0]),
    ...                   np.array([7, 5, 9]), np.array([7, 9]))
    {7: [5]}
    """
    groups = duplicate_groups(ra, dec)
    object_ids = np.asarray(object_ids, dtype=np.int64)
    wanted_rows = np.flatnonzero(np.isin(object_ids, np.asarray(wanted, dtype=np.int64)) & (groups >= 0))
    found = {}
    for row in wanted_rows:
        group = object_ids[groups == groups[row]]
        found[int(object_ids[row])] = sorted(int(i) for i in group if i != object_ids[row])
    return found
