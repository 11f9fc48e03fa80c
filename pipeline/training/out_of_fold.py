"""Out-of-fold metrics of a k-fold ensemble: each member's validation scores, pooled.

Every member of ``lenshunt train --folds K`` is validated on its own fold, and the K folds partition
the labelled objects (:func:`~pipeline.training.splits.assign_folds`), so pooling the members'
validation scores gives every object one score from a model that did not learn from it: the
cross-validation estimate of one member's performance on the whole training set (Hastie,
Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed., section 7.10). It is not
the ensemble's: every ensemble member but one learned from each object, so the ensemble itself is
measured on data none of them saw (``python -m pipeline.training.heldout``, the domain check).

Each member writes ``training/validation_scores.npz`` (:func:`write_validation_scores`: object ids,
labels and scores of its validation rows); :func:`out_of_fold_metrics` pools them into card entries
``oof_auroc``, ``oof_tpr0``, ... (session-45 gap: an ensemble's card held per-member metrics only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.evaluation.metrics import evaluate
from pipeline.training.card_entries import card_metrics, entries_text

__all__ = [
    "OOF_PREFIX",
    "VALIDATION_SCORES_FILE",
    "out_of_fold_metrics",
    "out_of_fold_text",
    "record_out_of_fold",
    "write_validation_scores",
]

VALIDATION_SCORES_FILE = "validation_scores.npz"
"""A bundle's ``training/`` file of its validation rows: ``object_id`` (int64), ``label`` (int8),
``score`` (float32, NaN where unscored)."""

OOF_PREFIX = "oof"
"""Card entries ``oof_<metric>`` of a k-fold ensemble."""

OOF_NOTE = (
    "oof_...: the out-of-fold metrics, the folds' validation objects (every labelled object, or the share "
    "--max-val-objects kept: oof_n_pos, oof_n_neg) each scored once by the member that did not train on "
    "it (the cross-validation estimate of one member's performance), not the ensemble's."
)
"""The ensemble card's sentence on its ``oof_`` entries."""

LEARNED_NOTE = (
    "WARNING: oof_learned_objects of them are among the objects --init (or a bundle it came from) "
    "trained or chose its epoch on: the out-of-fold metrics are not held-out ones."
)
"""Added where a fine-tune's ``--init`` learned from objects the folds validated on (trial: said
nothing)."""


def write_validation_scores(
    training: Path, object_ids: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> Path:
    """Write ``training/validation_scores.npz`` of a bundle.

    Parameters
    ----------
    training
        The bundle's ``training/`` directory.
    object_ids, labels, scores
        ``(n_val,)`` arrays of the validation rows: ids, labels (0/1) and the kept epoch's scores
        (probabilities; NaN for an object the model could not score).
    """
    path = Path(training) / VALIDATION_SCORES_FILE
    np.savez(
        path,
        object_id=np.asarray(object_ids, dtype=np.int64),
        label=np.asarray(labels, dtype=np.int8),
        score=np.asarray(scores, dtype=np.float32),
    )
    return path


def out_of_fold_metrics(members: Sequence[str | Path]) -> dict[str, float] | None:
    """The out-of-fold card entries (``oof_auroc``, ``oof_tpr0``, ``oof_tpr10``,
    ``oof_average_precision``, ``oof_n_pos``, ``oof_n_neg``, ``oof_n_unscored``) of k-fold members.

    Parameters
    ----------
    members
        The members' bundle directories, one per fold of one k-fold split.

    Returns
    -------
    dict or None
        None where a member has no ``training/validation_scores.npz`` (trained before 2026-12-06).

    Raises
    ------
    ValueError
        If an object is in two members' validation rows: not the folds of one split.
    """
    parts = []
    for member in members:
        path = Path(member) / "training" / VALIDATION_SCORES_FILE
        if not path.is_file():
            return None
        with np.load(path) as saved:
            parts.append((saved["object_id"], saved["label"], saved["score"]))
    ids = np.concatenate([part[0] for part in parts])
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"object {int(unique[counts > 1][0])} is in the validation rows of two members: they are not "
            "the folds of one k-fold split, so they have no out-of-fold metric"
        )
    labels = np.concatenate([part[1] for part in parts]).astype(np.int64)
    scores = np.concatenate([part[2] for part in parts]).astype(np.float64)
    return card_metrics(evaluate(labels, scores), OOF_PREFIX)


def record_out_of_fold(
    ensemble: str | Path, members: Sequence[str | Path], init: str | Path | None = None
) -> dict[str, float] | None:
    """Record :func:`out_of_fold_metrics` of ``members`` (k-fold members inside ``ensemble``) in the
    ensemble's card with :data:`OOF_NOTE`; returns the entries, None (nothing recorded) where a member
    has no validation scores.

    With ``init`` (the members fine-tuned from that bundle), ``oof_learned_objects`` counts the
    objects scored that it, or a bundle it came from, trained or chose its epoch on
    (:func:`~pipeline.models.lineage.learned_ids`; -1 where that cannot be checked), with
    :data:`LEARNED_NOTE` where not 0.
    """
    from pipeline.models.lineage import learned_ids, plain_id
    from pipeline.training.heldout import record_metrics  # it imports training.run, which imports this

    entries = out_of_fold_metrics(members)
    if entries is None:
        return None
    notes = [OOF_NOTE]
    if init is not None:
        trained, validated, problems = learned_ids([init])
        ids = np.concatenate([_scored_ids(member) for member in members])
        taught = trained | validated
        learned = sum(1 for object_id in ids if plain_id(object_id) in taught)
        entries[f"{OOF_PREFIX}_learned_objects"] = -1 if problems and not learned else learned
        if learned or problems:
            notes.append(LEARNED_NOTE)
    record_metrics(ensemble, entries, notes)
    return entries


def _scored_ids(member: str | Path) -> np.ndarray:
    with np.load(Path(member) / "training" / VALIDATION_SCORES_FILE) as saved:
        return saved["object_id"]


def out_of_fold_text(bundle: str | Path) -> str:
    """The ``oof_`` entries of ``bundle``'s card as a summary line shows them (``oof_auroc 0.9312
    [0.912, 0.948]  oof_n_pos 120 ...``, :func:`~pipeline.training.card_entries.entries_text`); "" for a
    bundle without them."""
    from pipeline.models import load_bundle

    metrics = load_bundle(bundle).card.metrics
    return entries_text(metrics, f"{OOF_PREFIX}_")
