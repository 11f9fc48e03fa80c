"""Which labelled objects of a run the model that scored it trained or validated on.

Metrics on objects a model learned from are no held-out measure (new-user trial: a model trained on
a labelled set and run on that set reported its AUROC, TPR0 and TPR10 with no word of it). Each
catalog's provenance names the scoring bundle (``extras["model_path"]``, with ``model_sha256``);
that bundle's ``training/split.json``, its ensemble members' and those of the bundles they were
fine-tuned from (:func:`pipeline.models.lineage.learned_ids`) name the object ids it learned from.
Object ids alone decide: another store whose ids coincide is reported the same way, so the note
says "if". A catalog written before the path was recorded is not checked, and says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluation.metrics import Metrics
from schemas.catalog import Provenance


@dataclass(frozen=True)
class LearnedObjects:
    """The catalog rows whose ids the scoring model learned from, and what to say of them.

    ``learned`` marks every such row (labelled or not); ``n_trained`` and ``n_validated`` count the
    labelled ones (validated: chosen its epoch on, not trained on); ``notes`` are sentences for the
    user (the counts, and what kept the check from being complete). ``checked`` is False where the
    bundle could not be read: the counts are then unknown, not 0.
    """

    learned: np.ndarray
    n_trained: int = 0
    n_validated: int = 0
    notes: tuple[str, ...] = ()
    checked: bool = False


def learned_objects(catalog: pd.DataFrame, provenance: Provenance) -> LearnedObjects:
    """The rows of ``catalog`` (``object_id``, ``label``) that the model its ``provenance`` names
    trained or validated on.

    The bundle at ``extras["model_path"]`` is read only where it still is the model that scored the
    catalog (same sha256); where it is not (moved, replaced, retrained in place), a note says the
    check was not made. A catalog without the path (scored before it was recorded) and one scored
    by the shipped model are not checked, and get no note.

    Returns
    -------
    LearnedObjects
        ``checked`` where the bundle was read; its ``notes`` are then what :func:`learned_ids
        <pipeline.models.lineage.learned_ids>` could not check (a split unreadable, a parent gone).
    """
    from pipeline import paths
    from pipeline.models.lineage import learned_ids, plain_id
    from pipeline.models.parent import scoring_bundle

    none = np.zeros(len(catalog), dtype=bool)
    path = provenance.extras.get("model_path")
    if not path or Path(str(path)).resolve() == paths.shipped_model().resolve():
        return LearnedObjects(none)
    bundle, why = scoring_bundle(provenance)
    if bundle is None:
        return LearnedObjects(
            none,
            notes=(
                f"whether the labelled objects are ones the model {provenance.model_id} trained or "
                f"validated on is not checked: {why}",
            ),
        )
    members = [Path(member.path) for member in getattr(bundle, "members", [bundle])]
    trained, validated, problems = learned_ids(members)
    ids = [plain_id(object_id) for object_id in catalog["object_id"].to_numpy()]
    in_train = np.array([object_id in trained for object_id in ids], dtype=bool)
    in_val = np.array([object_id in validated for object_id in ids], dtype=bool) & ~in_train
    labelled = catalog["label"].to_numpy() >= 0 if "label" in catalog else none
    n_trained, n_validated = int((in_train & labelled).sum()), int((in_val & labelled).sum())
    return LearnedObjects(
        in_train | in_val,
        n_trained=n_trained,
        n_validated=n_validated,
        notes=tuple(problems),
        checked=True,
    )


def learned_note(seen: LearnedObjects, model_id: str, n_labelled: int, held_out: str) -> str | None:
    """The sentence on labelled objects the model learned from, ending in ``held_out`` (what the
    metrics on the others are, or why there are none); None where there are no such objects.

    Examples
    --------
    >>> seen = LearnedObjects(np.ones(60, bool), n_trained=48, n_validated=12, checked=True)
    >>> learned_note(seen, "g1", 60, "no labelled object is one it never learned from")  # doctest: +ELLIPSIS
    '48 of the 60 labelled objects have the ids of objects the model g1 trained on, and 12 others it...'
    """
    if not seen.n_trained and not seen.n_validated:
        return None
    if seen.n_trained:
        counts = f"{seen.n_trained} of the {n_labelled} labelled objects have the ids of objects the model "
        counts += f"{model_id} trained on"
        counts += f", and {seen.n_validated} others it validated on" if seen.n_validated else ""
    else:
        counts = f"{seen.n_validated} of the {n_labelled} labelled objects have the ids of objects the model "
        counts += f"{model_id} validated on"
    return (
        f"{counts}, by object id in the training/split.json of the model, of its members or of the bundles "
        f"it was fine-tuned from: if they are the same objects, these metrics are not held-out; {held_out}; "
        "evaluate on objects it never saw (a labelled set with ids of its own: lenshunt simulate --first-id)"
    )


def with_learned(
    metrics: Metrics, catalog: pd.DataFrame, provenance: Provenance, *, threshold: float, beta: float
) -> tuple[Metrics, tuple[str, ...]]:
    """``metrics`` of ``catalog`` (``object_id``, ``label``, ``score``) with what the scoring model
    learned of its labelled objects (:func:`learned_objects`), and the warnings to say.

    Sets ``n_learned_trained`` and ``n_learned_validated`` where the bundle was read, and
    ``held_out``, the same metrics on the objects it never learned from, where it learned from some
    and the scored labelled others hold both lenses and non-lenses. The warnings (the counts, and
    what kept the check from being complete) are not yet in ``metrics.notes``: the caller puts them
    there.

    Returns
    -------
    metrics : pipeline.evaluation.metrics.Metrics
        ``metrics`` with ``n_learned_trained``, ``n_learned_validated`` (None: not checked) and
        ``held_out`` set.
    warnings : tuple of str
        The sentence with the counts (:func:`learned_note`) first, then the check's problems.
    """
    from pipeline.evaluation.metrics import evaluate

    seen = learned_objects(catalog, provenance)
    if not seen.checked:
        return metrics, seen.notes
    labels = catalog["label"].to_numpy()
    scores = catalog["score"].to_numpy(dtype=np.float64)
    update: dict[str, object] = {"n_learned_trained": seen.n_trained, "n_learned_validated": seen.n_validated}
    if not seen.n_trained and not seen.n_validated:
        return metrics.model_copy(update=update), seen.notes
    others = ~seen.learned
    used = others & (labels >= 0) & ~np.isnan(scores)
    classes = set(labels[used].tolist())
    if classes >= {0, 1}:
        held = update["held_out"] = evaluate(labels[others], scores[others], threshold=threshold, beta=beta)
        tail = (
            f"its metrics on the {held.n_pos + held.n_neg} scored labelled objects it never learned from "
            "are under held_out in metrics.json and in the report's column 'Never learned from'"
        )
    elif classes:
        kind = "lenses" if 1 in classes else "non-lenses"
        tail = f"the {int(used.sum())} scored labelled objects it never learned from are all {kind}"
        tail += ": no held-out metrics"
    else:
        tail = "every scored labelled object is one it learned from"
    model = f"{provenance.model_id} ({provenance.extras['model_path']})"
    note = learned_note(seen, model, int((labels >= 0).sum()), tail)
    return metrics.model_copy(update=update), (*([note] if note else []), *seen.notes)
