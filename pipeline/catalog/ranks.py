"""The ``rank`` column of a catalog: 1 = highest value of the rank column, unscored last.

Examples
--------
>>> assign_ranks(np.array([0.2, np.nan, 0.9, 0.2]), np.array([7, 1, 3, 5])).tolist()
[3, 4, 1, 2]
"""

from __future__ import annotations

import numpy as np

__all__ = ["assign_ranks"]


def assign_ranks(scores: np.ndarray, object_ids: np.ndarray) -> np.ndarray:
    """Rank objects by score: 1 = highest, NaN scores after all others, ties by ascending id.

    Parameters
    ----------
    scores : numpy.ndarray
        Scores, shape (n,); NaN marks an unscored object.
    object_ids : numpy.ndarray
        Integer object ids, shape (n,).

    Returns
    -------
    numpy.ndarray
        int64 ranks 1..n, a permutation, in the order of the input.

    Examples
    --------
    >>> assign_ranks(np.array([0.5, 0.5, 0.7]), np.array([9, 2, 4])).tolist()
    [3, 2, 1]
    """
    scores = np.asarray(scores, dtype=np.float64)
    object_ids = np.asarray(object_ids)
    if scores.shape != object_ids.shape or scores.ndim != 1:
        raise ValueError(
            f"scores {scores.shape} and object_ids {object_ids.shape} must be 1-d arrays of one length"
        )
    unscored = np.isnan(scores)
    descending = -np.where(unscored, 0.0, scores)
    order = np.lexsort((object_ids, descending, unscored))
    ranks = np.empty(scores.size, dtype=np.int64)
    ranks[order] = np.arange(1, scores.size + 1, dtype=np.int64)
    return ranks
