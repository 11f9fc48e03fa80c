"""Ensemble bundles: K member bundles scored together, the mean as the score and the spread beside it.

An ensemble is a directory holding ``ensemble.json`` and its members, each a complete bundle in a
sub-directory (e.g. the folds of a k-fold training, ``fold-0`` ... ``fold-4``, or models trained
with different seeds). ``ensemble.json`` names the members by relative path with the sha256 of
their ``model.keras``, and carries the ensemble's own card; its sha256 identifies the ensemble.

Every member prepares its own inputs with its own recipe, so members may differ in recipe and
architecture. Scores are the mean over all member predictions (times the 8 dihedral transforms
with test-time augmentation) and ``score_std`` their standard deviation: the spread across
members is the epistemic uncertainty of deep ensembles (Lakshminarayanan et al. 2017,
arXiv:1612.01474), which rises on inputs unlike the training set.

Members must declare identical outputs (:mod:`pipeline.models.outputs`); the ensemble's card
carries them, and every output is combined per its kind (:mod:`pipeline.models.aggregate`).

An ensemble's ``ood_score`` (:mod:`pipeline.models.features`) is the mean of its members'; it
has one only when every member bundle has feature statistics (``features.npz``), which members
keep when an ensemble is saved from them.

Examples
--------
>>> ensemble = save_ensemble("runs/ens", ["runs/ens/fold-0", "runs/ens/fold-1"])  # doctest: +SKIP
>>> load_bundle("runs/ens").predict_groups({"vis": vis, "nir": nir}).shape  # doctest: +SKIP
(2, 1000)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import BundleError
from pipeline.models.bundle import (
    ENSEMBLE_FILE,
    LAYOUT_FILE,
    ModelBundle,
    ModelCard,
    file_sha256,
    load_bundle,
)
from pipeline.models.integrity import recipe_layout_file
from pipeline.models.outputs import OutputSpec
from schemas.path_text import PathText

ENSEMBLE_FORMAT = 1


class EnsembleMember(BaseModel):
    """One member: its directory relative to the ensemble and the sha256 of its model file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: PathText = Field(description="Member bundle directory, relative to the ensemble directory.")
    sha256: str = Field(description="sha256 of the member's model.keras.")


class EnsembleFile(BaseModel):
    """The content of ``ensemble.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ensemble_format: int = ENSEMBLE_FORMAT
    members: tuple[EnsembleMember, ...] = Field(min_length=1)
    card: ModelCard


def mean_and_spread(predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over axis 0 of ``(n_predictions, n)`` scores, as float32 ``(n,)``."""
    predictions = np.asarray(predictions, dtype=np.float32)
    return predictions.mean(axis=0), predictions.std(axis=0)


def save_ensemble(
    path: str | Path,
    members: Sequence[str | Path],
    *,
    model_id: str | None = None,
    metrics: Mapping[str, float] | None = None,
    notes: str = "",
) -> EnsembleBundle:
    """Write ``ensemble.json`` at ``path`` over member bundles that lie inside ``path``.

    Parameters
    ----------
    path
        The ensemble directory (created if needed).
    members
        Member bundle directories; each must be inside ``path`` so that the ensemble moves as
        one directory.
    model_id
        The ensemble's id (default: the first member's id with ``-ensemble<K>``).
    metrics, notes
        Recorded in the ensemble's card. Without ``metrics`` the card records each member's validation
        metrics as ``member_<dir>_val_...`` (:func:`member_metrics`; user trial: ``"metrics": {}``),
        and the notes say they are per member.

    Raises
    ------
    BundleError
        When a member is not a valid bundle, lies outside ``path``, or there is none.
    """
    path = Path(path).resolve()
    if not members:
        raise BundleError("an ensemble needs at least one member bundle")
    opened = []
    for member in members:
        member_path = Path(member).resolve()
        if path not in member_path.parents:
            raise BundleError(
                f"ensemble member {member_path} is not inside the ensemble directory {path}; "
                "copy or train the members into it so that the ensemble moves as one directory"
            )
        opened.append((member_path.relative_to(path).as_posix(), load_bundle(member_path)))
    first = opened[0][1]
    check_same_outputs(path, [(relative, bundle) for relative, bundle in opened])
    architectures = sorted({bundle.card.architecture for _, bundle in opened})
    card = ModelCard(
        model_id=model_id or f"{first.model_id}-ensemble{len(opened)}",
        architecture="ensemble:" + "+".join(architectures),
        build_options={"members": [relative for relative, _ in opened]},
        training_store=first.card.training_store,
        seed=first.card.seed,
        epochs=max(bundle.card.epochs for _, bundle in opened),
        metrics=dict(member_metrics(opened) if metrics is None else metrics),
        notes=notes or _default_notes(len(opened), metrics is None),
        training_store_crc32=_shared_checksum([bundle for _, bundle in opened]),
        keras_version=first.card.keras_version,
        saved_backend=first.card.saved_backend,
        outputs=first.card.outputs,
        rank_by=first.card.rank_by,
    )
    content = EnsembleFile(
        members=tuple(EnsembleMember(path=relative, sha256=bundle.sha256) for relative, bundle in opened),
        card=card,
    )
    path.mkdir(parents=True, exist_ok=True)
    partial = path / f".{ENSEMBLE_FILE}.{os.getpid()}.tmp"
    partial.write_text(_ensemble_json(content))
    partial.replace(path / ENSEMBLE_FILE)
    (path / LAYOUT_FILE).unlink(missing_ok=True)  # the first member's layout file, kept at the top too:
    if (kept := recipe_layout_file(path)) is not None:  # --layout ENSEMBLE reads it as a bundle's
        shutil.copyfile(kept, path / LAYOUT_FILE)
    return load_ensemble(path)


MEMBER_PREFIX = "member"
"""Card entries ``member_<dir>_<entry>`` of an ensemble: a member's own validation entry."""


def member_metrics(opened: Sequence[tuple[str, Any]]) -> dict[str, float]:
    """Each member's validation entries (``val_...``) as ``member_<dir>_val_...`` of the ensemble's card.

    ``opened`` holds (directory relative to the ensemble, loaded member bundle). Each member was
    validated on its own split, on objects other members may have trained on (seeds share one split;
    a fold's validation objects are the other folds' training objects), so no ensemble-level metric
    is made from them: the ensemble is measured on held-out data (``python -m pipeline.training.heldout``).
    ``lenshunt train --folds`` adds the members' pooled out-of-fold entries (``oof_...``,
    :mod:`pipeline.training.out_of_fold`), a cross-validation estimate of one member's performance.
    """
    return {
        f"{MEMBER_PREFIX}_{relative}_{key}": value
        for relative, bundle in opened
        for key, value in bundle.card.metrics.items()
        if key.startswith("val_")
    }


def _default_notes(n_members: int, per_member: bool) -> str:
    notes = f"mean and spread of {n_members} members"
    if per_member:
        notes += (
            f"; the metrics are per member ({MEMBER_PREFIX}_<dir>_val_...: each member's validation on its "
            "own validation split), not the ensemble's, which no data the members all left out has measured"
        )
    return notes + "."


def _shared_checksum(members: Sequence[Any]) -> int | None:
    """The members' training store checksum where all record the same one, else None."""
    values = {bundle.card.training_store_crc32 for bundle in members}
    return values.pop() if len(values) == 1 else None


def _ensemble_json(content: EnsembleFile) -> str:
    """``ensemble.json`` text (the card's unset optional fields left out, as before they existed)."""
    unset = content.card.unset_optional()
    exclude = {"card": unset} if unset else None
    return content.model_dump_json(indent=2, exclude=exclude) + "\n"


def update_ensemble_card(path: str | Path, card: ModelCard) -> Path:
    """Replace the card inside ``ensemble.json`` at ``path`` (members untouched); returns the file."""
    path = Path(path)
    content = EnsembleFile.model_validate_json((path / ENSEMBLE_FILE).read_bytes())
    updated = content.model_copy(update={"card": card.model_copy(update={"sha256": ""})})
    partial = path / f".{ENSEMBLE_FILE}.{os.getpid()}.tmp"
    partial.write_text(_ensemble_json(updated))
    partial.replace(path / ENSEMBLE_FILE)
    return path / ENSEMBLE_FILE


def ensemble_holding(member: str | Path) -> Path | None:
    """The ensemble folder whose ``ensemble.json`` lists the bundle ``member`` (looked for in its parent
    folder, where ``lenshunt train --folds/--seeds`` puts it); None where none does (or the file
    cannot be read).

    Fresh-user trial: ``lenshunt score --model ENS/fold-1`` scored with the one member, unsaid.
    """
    member = Path(member).resolve()
    ensemble = member.parent
    try:
        content = EnsembleFile.model_validate_json((ensemble / ENSEMBLE_FILE).read_bytes())
    except (OSError, ValidationError):
        return None
    listed = {(ensemble / entry.path).resolve() for entry in content.members}
    return ensemble if member in listed else None


def member_note(bundle: str | Path) -> str:
    """One line where ``bundle`` is a member of an ensemble (:func:`ensemble_holding`); else ``""``."""
    ensemble = ensemble_holding(bundle)
    if ensemble is None or Path(bundle).resolve() == ensemble:
        return ""
    return (
        f"{bundle} is a member of the ensemble at {ensemble} (its {ENSEMBLE_FILE} lists it): this scored "
        f"with that one member; to score with the whole ensemble (mean score and score_std over its "
        f"members), give --model {ensemble}"
    )


def load_ensemble(path: str | Path, *, features: bool = True) -> EnsembleBundle:
    """Open the ensemble at ``path`` and every member bundle, checking the members' hashes.

    ``features``: check each member's ``features.npz`` (:func:`~pipeline.models.bundle.load_bundle`).

    Raises
    ------
    BundleError
        When ``ensemble.json`` is unreadable or invalid, a member is missing or invalid, or a
        member's model differs from the one the ensemble was made with.
    """
    path = Path(path)
    try:
        content = EnsembleFile.model_validate_json((path / ENSEMBLE_FILE).read_bytes())
    except (OSError, ValidationError) as exc:
        raise BundleError(
            f"ensemble {path}: {ENSEMBLE_FILE} is unreadable or invalid ({exc}); re-create it with "
            "pipeline.models.ensemble.save_ensemble"
        ) from exc
    members = []
    for member in content.members:
        bundle = load_bundle(path / member.path, features=features)
        if not isinstance(bundle, ModelBundle):
            raise BundleError(f"ensemble {path}: member {member.path} is itself an ensemble; nest none")
        if bundle.sha256 != member.sha256:
            raise BundleError(
                f"ensemble {path}: member {member.path} has model sha256 {bundle.sha256[:12]}..., the "
                f"ensemble was made with {member.sha256[:12]}...: re-create the ensemble"
            )
        members.append(bundle)
    check_same_outputs(path, list(zip([member.path for member in content.members], members, strict=True)))
    if content.card.output_specs != members[0].outputs:
        raise BundleError(
            f"ensemble {path}: its card declares outputs {[s.name for s in content.card.output_specs]}, "
            f"its members {[s.name for s in members[0].outputs]}: re-create the ensemble"
        )
    card = content.card.model_copy(update={"sha256": file_sha256(path / ENSEMBLE_FILE)})
    return EnsembleBundle(path, members, card)


def check_same_outputs(path: Path, members: Sequence[tuple[str, ModelBundle]]) -> None:
    """Raise :class:`BundleError` unless every member declares the same outputs (and ``rank_by``)."""
    first_path, first = members[0]
    for member_path, bundle in members[1:]:
        if bundle.outputs != first.outputs or bundle.card.rank_by != first.card.rank_by:
            theirs = [f"{spec.name}:{spec.kind}" for spec in bundle.outputs]
            raise BundleError(
                f"ensemble {path}: member {member_path} declares outputs {theirs} "
                f"(rank_by {bundle.card.rank_by}), "
                f"member {first_path} {[spec.name + ':' + spec.kind for spec in first.outputs]} "
                f"(rank_by {first.card.rank_by}); members of an ensemble must declare identical outputs "
                "(name, kind, unit, UCD, description, classes): retrain or re-save them alike"
            )


class EnsembleBundle:
    """An opened ensemble: the interface of :class:`~pipeline.models.bundle.ModelBundle` for K members.

    ``sha256`` is the hash of ``ensemble.json`` (which holds the members' hashes); ``recipe`` is
    the first member's (all members read the same layout).
    """

    def __init__(self, path: Path, members: list[ModelBundle], card: ModelCard) -> None:
        self.path = path
        self.members = members
        self.card = card

    def __repr__(self) -> str:
        return f"EnsembleBundle({str(self.path)!r}, model_id={self.model_id!r}, members={len(self.members)})"

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def sha256(self) -> str:
        return self.card.sha256

    @property
    def recipe(self):
        """The first member's recipe (for the layout and input checks of callers)."""
        return self.members[0].recipe

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        """The outputs every member declares."""
        return self.members[0].outputs

    @property
    def model(self) -> list[Any]:
        """Every member's Keras model (loaded on first use)."""
        return [member.model for member in self.members]

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Store group -> bands read by any member (store order of the first member that reads it)."""
        groups: dict[str, tuple[str, ...]] = {}
        for member in self.members:
            for group, bands in member.groups.items():
                merged = list(groups.get(group, ()))
                merged += [band for band in bands if band not in merged]
                groups[group] = tuple(merged)
        return groups

    @property
    def bands(self) -> tuple[str, ...]:
        """Every band any member reads, groups in order: only these decide whether an object is scored."""
        return tuple(band for bands in self.groups.values() for band in bands)

    def predict_groups(
        self, groups: Mapping[str, Any], *, batch_size: int = 256, tta: bool = False
    ) -> np.ndarray:
        """Every member's predictions stacked: ``(K, n)``, or ``(8 K, n)`` with ``tta``."""
        return np.concatenate(
            [member.predict_groups(groups, batch_size=batch_size, tta=tta) for member in self.members]
        )

    def predict_groups_outputs(
        self, groups: Mapping[str, Any], *, batch_size: int = 256, tta: bool = False
    ) -> dict[str, np.ndarray]:
        """Every member's predictions per output: name -> ``(K, n, width)``, or ``(8 K, n, width)``."""
        predicted = [
            member.predict_groups_outputs(groups, batch_size=batch_size, tta=tta) for member in self.members
        ]
        return {spec.name: np.concatenate([p[spec.name] for p in predicted]) for spec in self.outputs}

    def predict(
        self, inputs: Mapping[str, Any], batch_size: int = 256, pad_batches: bool = True
    ) -> np.ndarray:
        """Mean score of prepared inputs (members must share one recipe; else use :meth:`predict_groups`)."""
        recipes = {member.recipe.model_dump_json() for member in self.members}
        if len(recipes) > 1:
            raise BundleError(
                f"ensemble {self.path}: members use different recipes, so prepared inputs fit only some; "
                "score store images with predict_groups"
            )
        stacked = np.stack([member.predict(inputs, batch_size, pad_batches) for member in self.members])
        return stacked.mean(axis=0)

    def on_store(self, groups: Mapping[str, Sequence[str]]) -> EnsembleBundle:
        """This ensemble reading a store whose groups hold ``groups``: each member's
        :meth:`~pipeline.models.bundle.ModelBundle.on_store`."""
        members = [member.on_store(groups) for member in self.members]  # each memoised by its member
        if all(new is old for new, old in zip(members, self.members, strict=True)):
            return self
        return EnsembleBundle(self.path, members, self.card)

    def prepare(self, groups: Mapping[str, Any], flags: Any = None) -> dict[str, Any]:
        """Inputs by the first member's recipe (see :meth:`predict`)."""
        return self.members[0].prepare(groups, flags)

    @property
    def has_feature_stats(self) -> bool:
        """Whether every member has feature statistics (then the ensemble has an ``ood_score``)."""
        from pipeline.models.features import has_feature_stats

        return has_feature_stats(self)

    def ood_score_groups(self, groups: Mapping[str, Any]) -> np.ndarray:
        """Mean of the members' ``ood_score`` of store images: (n,) float32 (see pipeline.models.features)."""
        from pipeline.models.features import ood_score_groups

        return ood_score_groups(self, groups)
