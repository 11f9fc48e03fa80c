"""Which objects a bundle learned from: its own split and the bundles it was fine-tuned from.

Every trained bundle keeps ``training/split.json`` (the object ids it trained and validated on) and
``training/config.json`` (whose ``init`` names the bundle it was fine-tuned from, as an absolute
path); a fine-tune also keeps ``training/parent.json`` (:data:`PARENT_FILE`: which model that was).
Two checks read them: a fine-tune does not validate its starting weights on objects they
learned (:func:`pipeline.training.finetune.fair_start`), and the domain check says when a
"held-out" store holds objects the model learned from (:func:`seen_objects`). Object ids
alone decide: another store whose ids coincide is reported the same way, so the warnings say "if".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.parent import PARENT_FILE

Log = Callable[[str], None]


def plain_id(object_id: Any) -> Any:
    """An object id as ``split.json`` holds it (a NumPy scalar as its Python value)."""
    return object_id.item() if isinstance(object_id, np.generic) else object_id


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
        "model_sha256": _card_sha256(Path(init)),
        "training_files": (Path(init) / "training").is_dir(),
        "kept_start": bool(kept_start),
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def init_chain(bundle: Path, log: Log, limit: int = 20, *, bare: bool = False) -> list[Path]:
    """``bundle`` and the bundles it was fine-tuned from, as far as their ``training/config.json``
    name one that still exists (review: a fine-tune that kept its start has its parent's weights,
    and learned what the parent learned). The files hold absolute paths.

    A parent no longer there, a file that names none readably, or a bundle at the parent's path
    that is not the model the fine-tune started from (its ``training/parent.json`` has that model's
    sha256; new-user trial: a parent retrained in place hid what the child had learned) is logged,
    and ends the chain. A fine-tune started from a bundle without training files (the shipped
    model) ends it silently, moved or replaced: there was nothing to check (review: a moved clone
    gave false alarms); with ``bare``, such a parent that is still there and the model started from
    ends it as its last bundle (its card may name a training store: :func:`fine_tuned_from`). A
    parent that had training files when the fine-tune started and has none now is logged too
    (new-user trial: its objects were silently not checked). At most ``limit`` bundles (a loop of
    paths stops at its first repeat).
    """
    chain = [bundle.resolve()]
    while len(chain) < limit:
        saved = chain[-1] / "training" / "config.json"
        if not saved.is_file():
            break
        try:
            parent = json.loads(saved.read_text()).get("init")
            if parent is not None and not isinstance(parent, str):
                raise TypeError(f"init is {parent!r}, not a path")
            record = (
                json.loads(recorded.read_text()) if (recorded := saved.parent / PARENT_FILE).is_file() else {}
            )
            if not isinstance(record, dict):
                raise TypeError(f"{PARENT_FILE} is not a mapping")
        except (OSError, ValueError, TypeError, AttributeError) as exc:  # review: a hand-edited file
            log(
                f"{saved} (or {PARENT_FILE} beside it) cannot be read ({exc}): the bundles {chain[-1]} came "
                "from are not checked"
            )
            break
        if not parent or Path(parent).resolve() in chain:
            break
        if record.get("training_files") is False and not bare:
            break
        if not Path(parent).is_dir():
            log(
                f"{chain[-1]} was fine-tuned from {parent}, which is not found: its training objects "
                "are not checked"
            )
            break
        started = record.get("model_sha256")
        now = next((sha for sha in _model_sha256s(Path(parent)) if sha != started), started)
        if started and started != now:
            log(
                f"{chain[-1]} was fine-tuned from model sha256 {str(started)[:16]}, but the bundle now at "
                f"{parent} is {str(now)[:16]}: the objects its parent learned from are not checked"
            )
            break
        chain.append(Path(parent).resolve())
        if record.get("training_files") is False:
            break
        if record.get("training_files") and not (Path(parent) / "training").is_dir():
            log(
                f"{chain[-2]} was fine-tuned from {parent}, which had training files then and has none now: "
                "the objects it learned from are not checked"
            )
            break
    return chain


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


def _card_sha256(bundle: Path) -> str | None:
    """The model sha256 in ``bundle``'s card; None where the card is missing or unreadable."""
    try:
        return str(json.loads((bundle / "card.json").read_text())["sha256"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _model_sha256s(bundle: Path) -> tuple[str | None, ...]:
    """The model sha256 in ``bundle``'s card (None where the card is unreadable) and, where it has
    one, its ``model.keras``'s own: a parent is the model a fine-tune started from only where both
    are that model's (last note's known problem: a ``model.keras`` replaced alone, the card left, was
    taken for it; the card's alone was compared). An ensemble's directory has no such file."""
    from pipeline.models.integrity import MODEL_FILE, file_sha256

    try:
        return _card_sha256(bundle), file_sha256(bundle / MODEL_FILE)
    except OSError:
        return (_card_sha256(bundle),)


def member_dirs(bundle: Any) -> list[Path]:
    """The directories of a loaded bundle (``[bundle.path]``) or of an ensemble's members."""
    return [Path(member.path) for member in getattr(bundle, "members", [bundle])]


def learned_ids(bundles: Sequence[str | Path]) -> tuple[set[Any], set[Any], list[str]]:
    """(training ids, validation ids, problems) of ``bundles`` (a bundle, or an ensemble's members)
    and of the bundles each was fine-tuned from (:func:`init_chain`).

    A bundle without a ``training`` directory (the shipped one, a bundle made by ``save_bundle``)
    adds nothing. What hides objects a bundle may have learned from is a problem, named in the third
    item, not raised: an unreadable or malformed ``split.json``, one missing beside a
    ``training/config.json`` (new-user trial: a deleted split was taken for no training at all),
    and what :func:`init_chain` logs.
    """
    trained: set[Any] = set()
    validated: set[Any] = set()
    problems: list[str] = []
    for bundle in bundles:
        for path in init_chain(Path(bundle), problems.append):
            split = path / "training" / "split.json"
            if not split.is_file():
                if (path / "training" / "config.json").is_file():
                    problems.append(f"{split} is missing: the objects {path} learned from are not checked")
                continue
            try:
                payload = json.loads(split.read_text())
                ids = [payload.get(key, []) for key in ("train_object_ids", "val_object_ids")]
                if not all(isinstance(side, list) for side in ids):
                    raise TypeError("its object ids are not lists")
                trained |= set(ids[0])
                validated |= set(ids[1])
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                problems.append(f"{split} cannot be read ({exc}): its objects are not checked")
    return trained, validated, problems


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
