"""Which objects a bundle learned from: its own split and the bundles it was fine-tuned from.

Every trained bundle keeps ``training/split.json`` (the object ids it trained and validated on) and
``training/config.json`` (whose ``init`` names the bundle it was fine-tuned from, as an absolute
path); a fine-tune also keeps ``training/parent.json`` (:data:`PARENT_FILE`: which model that was).
:mod:`pipeline.models.lineage` reads them (:func:`init_chain`, :func:`learned_ids`, re-exported here);
two checks of training use them: a fine-tune does not validate its starting weights on objects they
learned (:func:`pipeline.training.finetune.fair_start`), and the domain check says when a
"held-out" store holds objects the model learned from (:func:`seen_objects`). Object ids
alone decide: another store whose ids coincide is reported the same way, so the warnings say "if".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.models.lineage import Log, card_sha256, init_chain, learned_ids, plain_id
from pipeline.models.parent import PARENT_FILE

__all__ = [
    "PARENT_FILE",
    "Log",
    "fine_tuned_from",
    "init_chain",
    "learned_from_store",
    "learned_ids",
    "member_dirs",
    "plain_id",
    "save_parent",
    "seen_objects",
]


def save_parent(work: Path, init: str | Path | None, *, kept_start: bool = False) -> None:
    """Write ``work/parent.json`` for a fine-tune from ``init`` (:data:`PARENT_FILE`), or remove an
    earlier run's where ``init`` is None. ``init`` must be a bundle with a readable ``card.json``
    (``--init`` was checked before training started)."""
    path = work / PARENT_FILE
    if init is None:
        path.unlink(missing_ok=True)
        return
    record = {
        "init": str(Path(init).resolve()),
        "model_sha256": card_sha256(Path(init)),
        "training_files": (Path(init) / "training").is_dir(),
        "kept_start": bool(kept_start),
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def fine_tuned_from(bundle: Any) -> list[Path]:
    """The bundles without a ``training/split.json`` that a loaded ``bundle`` (or an ensemble's
    members) was fine-tuned from and that are still there, the model each started from
    (:func:`init_chain`, ``bare``): their cards may name their training store. Those with a split
    are counted by object id (:func:`seen_objects`; review: their card's path could name a store
    since written over by another draw)."""
    chains = [init_chain(path, lambda _: None, bare=True)[1:] for path in member_dirs(bundle)]
    return [
        parent for chain in chains for parent in chain if not (parent / "training" / "split.json").is_file()
    ]


def member_dirs(bundle: Any) -> list[Path]:
    """The directories of a loaded bundle (``[bundle.path]``) or of an ensemble's members."""
    return [Path(member.path) for member in getattr(bundle, "members", [bundle])]


def seen_objects(
    bundles: Sequence[str | Path], object_ids: Iterable[Any], prefix: str
) -> tuple[dict[str, float], list[str]]:
    """Card entries and warnings on how many of ``object_ids`` (a store's) ``bundles`` learned from.

    ``bundles`` are a bundle's directory, or an ensemble's member directories; ``prefix`` the card
    entries' (a domain's name, or ``<domain>_ceiling``). The entries: ``<prefix>_learned_objects``,
    the number of ids among their (or their parents') training or validation objects, where any;
    ``<prefix>_lineage_unchecked`` (1) where :func:`learned_ids` found a problem that may hide some
    (new-user trial: a replaced parent was said in the printed report only). The warnings: a sentence
    with the counts (the store's AUROC is then no held-out measure, if the ids name the same objects)
    and the problems.
    """
    trained, validated, problems = learned_ids(bundles)
    ids = [plain_id(object_id) for object_id in object_ids]
    n_trained = sum(1 for object_id in ids if object_id in trained)
    n_validated = sum(1 for object_id in ids if object_id in validated and object_id not in trained)
    entries = {f"{prefix}_lineage_unchecked": 1.0} if problems else {}
    if not n_trained and not n_validated:
        return entries, problems
    seen = []
    if n_trained:
        seen.append(f"{n_trained} {'is' if n_trained == 1 else 'are'} among the objects it trained on")
    if n_validated:
        seen.append(f"{n_validated} {'is' if n_validated == 1 else 'are'} among those it chose its epoch on")
    sentence = (
        f"of this store's {len(ids)} objects, {' and '.join(seen)} (by object id, from the "
        "training/split.json of the model and the bundles it was fine-tuned from): if they are the same "
        "objects, this AUROC is not a held-out measure; if not, simulate separate sets with ids of their "
        "own (lenshunt simulate --first-id)"
    )
    return {f"{prefix}_learned_objects": float(n_trained + n_validated), **entries}, [sentence, *problems]


def learned_from_store(
    bundle: Any, store: str | Path, object_ids: Iterable[Any], prefix: str
) -> tuple[dict[str, float], list[str]]:
    """:func:`seen_objects` of a loaded ``bundle`` (or ensemble) on ``store``'s ``object_ids``, and where
    its training files count none, whether its card names ``store`` as its training store, by path
    or by the checksum of its ids and labels (``<prefix>_trained_on_store``; new-user trial: a copy
    without training files, checked on its own training store, was reported as held out).

    Returns
    -------
    entries, sentences
        Card entries (``<prefix>_learned_objects``, ``_lineage_unchecked``, ``_trained_on_store``)
        and the warnings that go with them.
    """
    from pipeline.training.ceilings import trained_on_store

    entries, said = seen_objects(member_dirs(bundle), object_ids, prefix)
    if f"{prefix}_learned_objects" not in entries and (
        how := trained_on_store(bundle, store, fine_tuned_from(bundle))
    ):
        entries[f"{prefix}_trained_on_store"] = 1.0
        said.append(f"{how}: no held-out AUROC")
    return entries, said
