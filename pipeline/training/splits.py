"""Which store objects train and which validate: pure functions of object ids, labels and a seed.

Only *trainable* objects take part: a known label (0 or 1) and no flag in
:data:`~pipeline.flags.UNUSABLE`. Splits are stratified by label and keyed by object id, never by
row: each object gets a pseudo-random key from ``(object_id, seed)`` (a SplitMix64 hash), objects
of each class are ranked by key, and the ranks decide. So a split does not depend on the order
rows were ingested in, is the same on every machine, and an object keeps its key when the store
grows (most objects then stay on their side).

Examples
--------
>>> import numpy as np
>>> ids = np.arange(100, 120)
>>> labels = np.array([0, 1] * 10)
>>> folds = assign_folds(ids, labels, k=4, seed=0)
>>> np.bincount(folds).tolist()
[5, 5, 5, 5]
>>> int(validation_mask(ids, labels, 0.3, seed=0).sum())
6
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.evaluation.metrics import TPR10_FALSE_POSITIVES
from pipeline.flags import UNUSABLE

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def object_keys(object_ids: np.ndarray, seed: int) -> np.ndarray:
    """A pseudo-random uint64 key per object id (SplitMix64 of ``id`` mixed with ``seed``)."""
    ids = np.asarray(object_ids).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = ids + (np.uint64(seed) + np.uint64(1)) * _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX_1
        x = (x ^ (x >> np.uint64(27))) * _MIX_2
        return x ^ (x >> np.uint64(31))


def trainable_mask(labels: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """True where an object has a known label (0 or 1) and no flag in ``UNUSABLE``."""
    labels, flags = np.asarray(labels), np.asarray(flags)
    return np.isin(labels, (0, 1)) & ((flags.astype(np.int64) & int(UNUSABLE)) == 0)


def _class_ranks(
    object_ids: np.ndarray, labels: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per object: its rank by key within its class, its class size, and the objects of earlier classes."""
    keys = object_keys(object_ids, seed)
    ranks = np.empty(len(keys), dtype=np.int64)
    sizes = np.empty(len(keys), dtype=np.int64)
    offsets = np.empty(len(keys), dtype=np.int64)
    n_before = 0
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        order = members[np.lexsort((np.asarray(object_ids)[members], keys[members]))]
        ranks[order] = np.arange(order.size)
        sizes[members] = order.size
        offsets[members] = n_before
        n_before += order.size
    return ranks, sizes, offsets


def assign_folds(object_ids: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of each object: stratified by label, sizes differing by at most one per class.

    The k folds partition the objects: each object is in exactly one, so training on the others
    and validating on fold ``i`` for every ``i`` covers every object once.
    """
    if k < 2:
        raise ValueError(f"k-fold splits need k >= 2, got {k}")
    ranks, _, offsets = _class_ranks(object_ids, np.asarray(labels), seed)
    # continuing the count across classes keeps the fold totals within one of each other too
    return ((ranks + offsets) % k).astype(np.int64)


def validation_mask(object_ids: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """True for validation objects: the ``val_fraction`` of each class with the lowest keys.

    Each class with at least two objects keeps at least one object on each side.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    ranks, sizes, _ = _class_ranks(object_ids, np.asarray(labels), seed)
    n_val = np.rint(sizes * val_fraction).astype(np.int64)
    n_val = np.where(sizes >= 2, np.clip(n_val, 1, sizes - 1), 0)
    return ranks < n_val


def subsample_stratified(object_ids: np.ndarray, labels: np.ndarray, n_max: int, seed: int) -> np.ndarray:
    """Boolean mask keeping at most ``n_max`` objects, each class in proportion (lowest keys first)."""
    n = len(object_ids)
    if n <= n_max:
        return np.ones(n, dtype=bool)
    return validation_mask(object_ids, labels, n_max / n, seed + 1)


@dataclass(frozen=True)
class Split:
    """Store rows that train and validate, and how many objects were left out and why."""

    train_rows: np.ndarray
    val_rows: np.ndarray
    n_objects: int
    n_unlabelled: int
    n_unusable: int
    description: str
    n_grouped: int = 0
    """Trainable objects that share a sky position with another trainable one, each group kept on one
    side (:func:`keep_groups_together`)."""

    def summary(self) -> str:
        """One line for logs."""
        grouped = (
            f"; {self.n_grouped} objects at shared sky positions, each kept on one side with its duplicates"
            if self.n_grouped
            else ""
        )
        return (
            f"split {self.description}: {self.train_rows.size} training, {self.val_rows.size} "
            f"validation objects of {self.n_objects} (left out: {self.n_unlabelled} unlabelled, "
            f"{self.n_unusable} unusable{grouped})"
        )


def keep_groups_together(
    is_val: np.ndarray, groups: np.ndarray, object_ids: np.ndarray
) -> tuple[np.ndarray, int]:
    """``is_val`` with every group's members on the side of its leader, and how many objects are in
    groups of two or more.

    The leader is the member with the lowest object id: like the split, the result does not depend
    on the row order (review: the first row led), and the leader's side is drawn as any object's
    (review: the member with the lowest split key, which validates first, put a pair in validation
    with probability 1 - (1 - f)^2 instead of f).

    Parameters
    ----------
    is_val : ndarray of bool, shape (n,)
        The side of each object (True: validation).
    groups : ndarray of int, shape (n,)
        Group of each object, -1 for none (as :func:`pipeline.catalog.duplicate_groups`: one galaxy
        cut out twice under two ids, whose two rows would otherwise train on one side and validate
        on the other, so that validation sees the pixels training saw). A group of one (its other
        members are not among these objects) changes nothing.
    object_ids : ndarray of int, shape (n,)

    >>> ids = np.array([11, 10, 12, 13])
    >>> keep_groups_together(np.array([True, False, False, True]), np.array([5, 5, -1, 7]), ids)[0].tolist()
    [False, False, False, True]
    """
    is_val, groups = np.asarray(is_val, dtype=bool).copy(), np.asarray(groups)
    grouped = np.flatnonzero(groups >= 0)
    if not grouped.size:
        return is_val, 0
    order = grouped[np.argsort(np.asarray(object_ids)[grouped], kind="stable")]
    _, leader_of, inverse, counts = np.unique(
        groups[order], return_index=True, return_inverse=True, return_counts=True
    )
    is_val[order] = is_val[order[leader_of]][inverse]
    return is_val, int(counts[counts > 1].sum())


def make_split(
    object_ids: np.ndarray,
    labels: np.ndarray,
    flags: np.ndarray,
    *,
    seed: int,
    val_fraction: float = 0.2,
    k_folds: int | None = None,
    fold: int = 0,
    max_val_objects: int | None = None,
    description: str = "",
    groups: np.ndarray | None = None,
) -> Split:
    """Training and validation rows of a store from its ``object_id``, ``label`` and ``flags`` columns.

    Parameters
    ----------
    object_ids, labels, flags
        The store's per-object columns (row order).
    seed
        Keys the split (see module docstring).
    val_fraction
        Share of each class that validates when ``k_folds`` is None.
    k_folds, fold
        With ``k_folds``, validate on fold ``fold`` and train on the others.
    max_val_objects
        Validate on a stratified sample of at most this many of the validation objects (the others
        are not used for training either).
    groups
        Per row, the group of objects at one sky position (-1: none; :func:`keep_groups_together`):
        each group's trainable members go to the side of its lowest id, so one galaxy under two ids
        never trains and validates at once.
    """
    object_ids, labels, flags = np.asarray(object_ids), np.asarray(labels), np.asarray(flags)
    usable = trainable_mask(labels, flags)
    known = np.isin(labels, (0, 1))
    rows = np.flatnonzero(usable)
    ids, y = object_ids[rows], labels[rows]
    if k_folds is not None:
        if not 0 <= fold < k_folds:
            raise ValueError(f"fold must be in 0..{k_folds - 1}, got {fold}")
        is_val = assign_folds(ids, y, k_folds, seed) == fold
    else:
        is_val = validation_mask(ids, y, val_fraction, seed)
    n_grouped = 0
    if groups is not None:
        is_val, n_grouped = keep_groups_together(is_val, np.asarray(groups)[rows], ids)
    val_rows = rows[is_val]
    if max_val_objects is not None:
        val_rows = val_rows[
            subsample_stratified(object_ids[val_rows], labels[val_rows], max_val_objects, seed)
        ]
    return Split(
        train_rows=rows[~is_val],
        val_rows=val_rows,
        n_objects=int(labels.size),
        n_unlabelled=int(np.count_nonzero(~known)),
        n_unusable=int(np.count_nonzero(known & ~usable)),
        description=description,
        n_grouped=n_grouped,
    )


MIN_VALIDATION_CLASS = 10
"""Fewer validation lenses or non-lenses than this get a warning: an AUROC over a handful of
pairs moves in steps too large to choose an epoch by."""


def small_validation_warning(labels: np.ndarray, *, keeps_start: bool = False) -> str | None:
    """A warning line when the validation ``labels`` (1 lens, 0 non-lens) hold fewer than
    :data:`MIN_VALIDATION_CLASS` of either class; None otherwise. ``keeps_start``: a fine-tune that
    keeps its starting weights unless a trained epoch beats their AUROC; the line then says how to
    keep a trained epoch (user trial: 25 grades gave AUROC 1.0 at epoch 0, which nothing could beat)."""
    n_lenses = int(np.count_nonzero(labels == 1))
    n_others = int(np.count_nonzero(labels == 0))
    if min(n_lenses, n_others) >= MIN_VALIDATION_CLASS:
        return None
    return (
        (
            f"WARNING: the validation set holds {n_lenses} lens{'es' * (n_lenses != 1)} and {n_others} "
            f"non-lens{'es' * (n_others != 1)}: its AUROC is "
            f"too coarse to choose an epoch (at least {MIN_VALIDATION_CLASS} of each are needed); label more "
            "objects, or check the model on held-out objects (python -m pipeline.training.domains)"
        )
        + (TPR_ADVICE.format(n=n_others) if n_others <= TPR10_FALSE_POSITIVES else "")
        + (KEEP_START_ADVICE if keeps_start else "")
    )


def small_training_warning(labels: np.ndarray) -> str | None:
    """A warning line when the training ``labels`` (1 lens, 0 non-lens) hold fewer than
    :data:`MIN_VALIDATION_CLASS` of either class; None otherwise (trial: a run trained on 1 lens
    without a word, and only its AUROC at chance said something was wrong, after training)."""
    n_lenses = int(np.count_nonzero(labels == 1))
    n_others = int(np.count_nonzero(labels == 0))
    if min(n_lenses, n_others) >= MIN_VALIDATION_CLASS:
        return None
    kind = "lens" if n_lenses <= n_others else "non-lens"
    return (
        f"WARNING: the training set holds {n_lenses} lens{'es' * (n_lenses != 1)} and {n_others} "
        f"non-lens{'es' * (n_others != 1)}: too few {kind}es to learn from (at least "
        f"{MIN_VALIDATION_CLASS} of each are needed); give more {kind}es (a larger store or simulation)"
    )


TPR_ADVICE = (
    "; with {n} non-lenses TPR10 is 1.0 by construction (fewer than ten false positives at every threshold: "
    "it is left undefined) and TPR0 rests on {n}, so neither says how pure the candidates will be"
)
"""What :func:`small_validation_warning` adds with fewer than ten validation non-lenses (trial: TPR10
read 1.0 on 6 of them)."""


KEEP_START_ADVICE = (
    "; this fine-tune keeps its starting weights unless a trained epoch beats their validation AUROC, "
    "which so few objects may never show (an AUROC of 1.0 at epoch 0 cannot be beaten): --no-keep-start "
    "keeps the best trained epoch instead (the score's epoch is chosen by AUROC, not val_loss; --monitor "
    "only chooses which output decides)"
)
"""What :func:`small_validation_warning` adds for a fine-tune that keeps its starting weights."""


def one_class_fix(n_lenses: int, n_others: int, *, graded: bool, folds: bool) -> str:
    """What to do when a side of the split lacks a class; ``n_lenses`` / ``n_others`` count the
    usable labelled objects of both sides, ``graded`` when they are labelled by grades alone
    (``--grades-only``), ``folds`` when the split is a k-fold one.

    Trial: 9 graded objects (1 X) were told "use fewer folds / a larger --val-fraction", with no fold
    in use and one non-lens that no fraction can put on both sides.
    """
    kinds = ("lenses (A or B)", "non-lenses (X)") if graded else ("lenses", "non-lenses")
    few = [kind for kind, n in zip(kinds, (n_lenses, n_others), strict=True) if n < 2]
    split_fix = "use fewer folds (--folds)" if folds else "use a larger --val-fraction"
    if graded:
        counts = (
            f"the grades (--grades-only) label {n_lenses} lens{'es' * (n_lenses != 1)} and {n_others} "
            f"non-lens{'es' * (n_others != 1)}"
        )
        if few:  # one object of a class can validate or train, not both
            return (
                f"{counts}; each side needs both: grade more {' and '.join(few)} (lenshunt inspect RUN_DIR)"
            )
        return f"{counts}: {split_fix}"
    if n_lenses == 0 or n_others == 0:  # trial: "use fewer folds" to a store without a lens at all
        return "ingest labelled lenses and non-lenses (a catalog with labels, or `lenshunt simulate`)"
    if few:
        counts = f"the store has {n_lenses} usable lens{'es' * (n_lenses != 1)} and {n_others} non-lenses"
        return f"{counts}; each side needs both: label more {' and '.join(few)}"
    return split_fix


def write_split(path: Path, split: Split, object_ids: np.ndarray) -> None:
    """Save ``split`` as ``training/split.json``: its description, counts and the object ids of each side."""
    payload = {
        "description": split.description,
        "train_object_ids": object_ids[split.train_rows].tolist(),
        "val_object_ids": object_ids[split.val_rows].tolist(),
        "n_unlabelled": split.n_unlabelled,
        "n_unusable": split.n_unusable,
        "n_grouped": split.n_grouped,
    }
    path.write_text(json.dumps(payload) + "\n")
