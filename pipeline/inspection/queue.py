"""Which candidates an inspector sees, in which order: pure functions of the catalog and the grades.

* ``score``: highest score first (catalog rank);
* ``uncertainty``: the model's least certain first, for active learning: by ``score_std``
  (ensemble and TTA spread) where the run has one (any positive spread), otherwise by the binary
  entropy of the score, ``-p log p - (1 - p) log(1 - p)``, highest at 0.5; ties by rank;
* ``random``: a seeded random permutation of the scored objects, an unbiased sample for
  completeness and purity estimates;
* ``ood``: the score order with the objects unlike the training set (``ood_score`` > 1, flagged
  UNLIKE_TRAINING) set apart after all others, each part by rank, as the model card advises (their
  scores are less certain); only for catalogs with an ``ood_score`` column (a model with feature
  statistics), refused for others (:func:`order_refused`).

Only scored objects are inspected. Objects this inspector already graded are left out unless
``regrade``.

Examples
--------
>>> import pandas as pd
>>> catalog = pd.DataFrame({"object_id": [1, 2, 3], "score": [0.9, 0.5, 0.1],
...                         "score_std": [0.0, 0.0, 0.0], "rank": [1, 2, 3]})
>>> candidate_order(catalog, "uncertainty").tolist()
[2, 1, 3]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from schemas.catalog import OOD_SCORE_COLUMN

ORDERS = ("score", "uncertainty", "random", "ood")
OOD_COLUMN = OOD_SCORE_COLUMN.name
MAX_BATCH = 200
"""The most candidates in one answer of :meth:`~pipeline.inspection.server.InspectSession.candidates`."""


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of a Bernoulli(p): 1 at 0.5, 0 at 0 and 1; NaN stays NaN."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def uncertainty(catalog: pd.DataFrame) -> np.ndarray:
    """Per row: ``score_std`` when any scored object has a positive spread, else binary entropy."""
    std = catalog["score_std"].to_numpy(dtype=np.float64)
    if np.nanmax(std, initial=0.0) > 0:
        return np.nan_to_num(std, nan=-1.0)
    entropy = binary_entropy(catalog["score"].to_numpy(dtype=np.float64))
    return np.nan_to_num(np.round(entropy, 9), nan=-1.0)  # p and 1 - p tie exactly (then by rank)


def candidate_order(
    catalog: pd.DataFrame,
    order: str = "score",
    *,
    seed: int = 0,
    exclude: Iterable[int] = (),
) -> np.ndarray:
    """Object ids of the scored objects in inspection order, without those in ``exclude``.

    Raises
    ------
    ValueError
        For an order not in :data:`ORDERS`, or ``ood`` for a catalog without ``ood_score``
        (:func:`order_refused`).
    """
    if refused := order_refused(catalog, order):
        raise ValueError(refused)
    scored = catalog[np.isfinite(catalog["score"].to_numpy(dtype=np.float64))]
    scored = scored[~scored["object_id"].isin(list(exclude))]
    ranks = scored["rank"].to_numpy()
    if order == "score":
        index = np.argsort(ranks, kind="stable")
    elif order == "uncertainty":
        index = np.lexsort((ranks, -uncertainty(scored)))
    elif order == "ood":  # NaN (no statistics for it) is not unlike: compared, it is not > 1
        index = np.lexsort((ranks, scored[OOD_COLUMN].to_numpy(dtype=np.float64) > 1))
    else:
        keys = np.random.default_rng(seed).permutation(len(scored))
        index = np.argsort(keys[np.argsort(np.argsort(scored["object_id"].to_numpy()))], kind="stable")
    return scored["object_id"].to_numpy(dtype=np.int64)[index]


def order_refused(catalog: pd.DataFrame, order: str) -> str:
    """Why ``catalog``'s candidates cannot be put in ``order``; "" if they can.

    Examples
    --------
    >>> order_refused(pd.DataFrame({"score": [0.5], "ood_score": [0.3]}), "ood")
    ''
    >>> print(order_refused(pd.DataFrame({"score": [0.5]}), "ood").split(":")[0])
    order ood needs the ood_score column, and this run's catalog has none
    """
    if order not in ORDERS:
        return f"order must be one of {', '.join(ORDERS)}, got {order!r}"
    if order == "ood" and OOD_COLUMN not in catalog.columns:
        return (
            f"order ood needs the {OOD_COLUMN} column, and this run's catalog has none: its model had no "
            "feature statistics (features.npz; `lenshunt info MODEL` says), or the catalog was written "
            "before ood_score existed; use order score, uncertainty or random, or score the run again "
            "with a model that has them (the shipped model has)"
        )
    return ""


def range_refused(start: int, n: int, length: int) -> str:
    """Why ``n`` candidates from queue position ``start`` are refused for a queue of ``length``; "" if not.

    ``start`` runs from 0 to ``length`` (the end of the queue, where none are left), ``n`` from 1 to
    :data:`MAX_BATCH`; both are integers (a bool is none).

    Examples
    --------
    >>> range_refused(-5, 20, 10)
    'start must be 0 (the first candidate) to 10 (the end of the queue), not -5'
    >>> range_refused(3, 0, 10), range_refused(10, 20, 10)
    ('n must be 1 to 200 (candidates in one answer), not 0', '')
    """
    if not all(isinstance(value, int | np.integer) and not isinstance(value, bool) for value in (start, n)):
        return "start and n must be integers"
    if not 0 <= start <= length:
        return f"start must be 0 (the first candidate) to {length} (the end of the queue), not {start}"
    if not 1 <= n <= MAX_BATCH:
        return f"n must be 1 to {MAX_BATCH} (candidates in one answer), not {n}"
    return ""


def after_refused(after: int, length: int) -> str:
    """Why moving on from queue position ``after`` is refused for a queue of ``length``; "" if not.

    ``after`` runs from -1 (from the start) to ``length - 1`` (the last candidate) and is an integer
    (a bool is none). Trial: ``after=-5`` answered "passed: 4".

    Examples
    --------
    >>> after_refused(-5, 10)
    'after must be -1 (from the start) to 9 (the last candidate), not -5'
    >>> after_refused(-1, 0), after_refused(9, 10)
    ('', '')
    """
    if not isinstance(after, int | np.integer) or isinstance(after, bool):
        return "after must be an integer"
    if not -1 <= after <= length - 1:
        return f"after must be -1 (from the start) to {length - 1} (the last candidate), not {after}"
    return ""
