"""Which models scored the two runs of a grading round, and what that means for its comparison.

``lenshunt inspect RUN --compare BEFORE_RUN`` reports how the scores moved between the run that was
graded and the run of the model fine-tuned on those grades. That change is the round's only when
the second model learned from the first: a fine-tune that kept its starting weights (no trained
epoch beat them on validation) is its parent unchanged, an ensemble's graded run compared with one
fine-tuned member measures leaving the ensemble as much as the grades, and a model trained on its
own is no round at all (trial: ``--compare`` said none of this). Each catalog's provenance names the
model (``model_id``, ``model_sha256``) and where it was (``extras["model_path"]``); a fine-tune's
``training/parent.json`` (:data:`pipeline.models.parent.PARENT_FILE`) names the model it
started from and whether it kept it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.catalog import Provenance


@dataclass(frozen=True)
class RoundModel:
    """A run's model as its bundle says: ``members`` are the sha256 of each member's ``model.keras``
    (one for a single bundle), ``parents`` each member's parent record (``{}``: not fine-tuned)."""

    model_id: str
    sha256: str
    path: str
    members: tuple[str, ...]
    parents: tuple[dict[str, Any], ...]
    ancestors: tuple[tuple[str, ...], ...] = ()
    """Per member, the sha256 of the models it descends from, nearest first (:func:`ancestry`)."""

    def summary(self) -> dict[str, Any]:
        """JSON-ready: id, sha256, path, number of members, and which members kept their start."""
        return {
            "model_id": self.model_id,
            "model_sha256": self.sha256,
            "model_path": self.path,
            "n_members": len(self.members),
            "kept_start": [bool(parent.get("kept_start")) for parent in self.parents],
        }


def read_round_model(provenance: Provenance) -> RoundModel | str:
    """The model that scored a catalog, read from the bundle its provenance names; where it cannot
    be read, why not (a catalog written before the path was recorded, a bundle moved or replaced).
    """
    from pipeline.models.parent import parent_record, scoring_bundle

    bundle, why = scoring_bundle(provenance)
    if bundle is None:
        return why
    path = provenance.extras["model_path"]
    members = list(getattr(bundle, "members", [bundle]))
    return RoundModel(
        model_id=bundle.model_id,
        sha256=bundle.sha256,
        path=str(path),
        members=tuple(member.sha256 for member in members),
        parents=tuple(parent_record(member.path) for member in members),
        ancestors=tuple(ancestry(member.path) for member in members),
    )


def ancestry(bundle: Any, limit: int = 20) -> tuple[str, ...]:
    """The sha256 of the models ``bundle`` was fine-tuned from, nearest first, as far as each one's
    ``training/parent.json`` and the bundle it names still tell (at most ``limit``)."""
    from pipeline.models.parent import parent_record

    found: list[str] = []
    record = parent_record(bundle)
    while record.get("model_sha256") and len(found) < limit and record["model_sha256"] not in found:
        found.append(str(record["model_sha256"]))
        record = parent_record(record["init"]) if record.get("init") else {}
    return tuple(found)


def round_model_notes(before: Provenance, after: Provenance) -> tuple[dict[str, Any], list[str]]:
    """The models of the run ``before`` a round and the run ``after`` it, and what about them makes
    the comparison other than the round's effect.

    Parameters
    ----------
    before, after : schemas.catalog.Provenance
        The provenance of the graded run's catalog and of the catalog scored after fine-tuning.

    Returns
    -------
    models : dict
        ``before`` and ``after``: :meth:`RoundModel.summary`, or ``{"unknown": why}``.
    notes : list of str
        One sentence per finding, in words for the user: the same model scored both runs; this run's
        model (or k of its K members) kept its starting weights; the graded run's ensemble against
        one of its members fine-tuned; a model not fine-tuned from the graded run's. ``[]`` when this
        run's model was fine-tuned, with trained weights, from the graded run's model.
    """
    if before.model_sha256 == after.model_sha256:
        same = {"model_id": after.model_id, "model_sha256": after.model_sha256}
        return {"before": same, "after": same}, [
            f"both runs were scored by the same model {after.model_id}: no round of training lies between "
            "them (score this run with the model fine-tuned on the grades)"
        ]
    first, second = read_round_model(before), read_round_model(after)
    models = {
        when: model.summary() if isinstance(model, RoundModel) else {"unknown": model}
        for when, model in (("before", first), ("after", second))
    }
    unknown = [
        (when, model) for when, model in (("before", first), ("after", second)) if isinstance(model, str)
    ]
    if unknown:
        why = "; ".join(f"the run {when}: {model}" for when, model in unknown)
        return models, [f"whether this run's model learned from the grades is not checked ({why})"]
    assert isinstance(first, RoundModel) and isinstance(second, RoundModel)
    return models, _notes(first, second)


def _notes(before: RoundModel, after: RoundModel) -> list[str]:
    notes = []
    kept = [parent for parent in after.parents if parent.get("kept_start")]
    if kept and len(after.members) == 1:
        notes.append(
            f"this run's model {after.model_id} kept its starting weights (no trained epoch beat them on "
            f"validation): it is {kept[0].get('init', 'the model it was fine-tuned from')} unchanged and "
            "learned nothing from the grades; try more epochs, another --learning-rate or more grades"
        )
    elif kept:
        notes.append(
            f"{len(kept)} of the {len(after.members)} members of this run's ensemble {after.model_id} kept "
            "their starting weights (no trained epoch beat them on validation): those learned nothing "
            "from the grades"
        )
    graded = set(before.members) | {before.sha256}
    started = {parent.get("model_sha256") for parent in after.parents}
    this = set(after.members) | {after.sha256}
    if not all(after.parents) or not started <= graded:
        notes.append(_unrelated(before, after, graded, this))
    elif len(before.members) > 1 and len(after.members) == 1:
        notes.append(
            f"the graded run was scored by the ensemble {before.model_id} of {len(before.members)} members "
            f"and this run by one model fine-tuned from one of them: the change mixes the round's with "
            "that of leaving the ensemble (fine-tune with --seeds or --folds to make the round an "
            "ensemble again)"
        )
    return notes


def _unrelated(before: RoundModel, after: RoundModel, graded: set[str], this: set[str]) -> str:
    """What a model not fine-tuned from the graded run's directly is to it (trial: a grandchild and
    runs given the other way round were both "not fine-tuned from")."""
    if after.ancestors and all(graded & set(chain) for chain in after.ancestors):
        rounds = max(min(chain.index(sha) for sha in graded & set(chain)) for chain in after.ancestors) + 1
        return (
            f"this run's model {after.model_id} descends from the model that scored the graded run "
            f"({before.model_id}) over {rounds} rounds of fine-tuning: the change is that of every round "
            "since, not only of these grades"
        )
    if before.ancestors and all(this & set(chain) for chain in before.ancestors):
        return (
            f"the runs are the other way round: the graded run's model {before.model_id} was fine-tuned "
            f"from this run's ({after.model_id}); compare the later run with --compare EARLIER_RUN"
        )
    return (
        f"this run's model {after.model_id} was not fine-tuned from the model that scored the graded "
        f"run ({before.model_id}): the change is that between two models, not only the round's"
    )
