"""Which objects a bundle learned from: its own split, the bundles it was fine-tuned from, its members.

Every trained bundle keeps ``training/split.json`` (the object ids it trained and validated on) and
``training/config.json`` (whose ``init`` names the bundle it was fine-tuned from, as an absolute
path). Two checks read them: a fine-tune does not validate its starting weights on objects they
learned (:func:`pipeline.training.finetune.fair_start`), and the domain check says when a
"held-out" store holds objects the model trained on (:func:`seen_objects_warning`). Object ids
alone decide: another store whose ids coincide is reported the same way, so the warnings say "if".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

Log = Callable[[str], None]


def plain_id(object_id: Any) -> Any:
    """An object id as ``split.json`` holds it (a NumPy scalar as its Python value)."""
    return object_id.item() if isinstance(object_id, np.generic) else object_id


def init_chain(bundle: Path, log: Log, limit: int = 20) -> list[Path]:
    """``bundle`` and the bundles it was fine-tuned from, as far as their ``training/config.json``
    name one that still exists (review: a fine-tune that kept its start has its parent's weights,
    and learned what the parent learned). The files hold absolute paths; one that names a parent
    no longer there is logged. At most ``limit`` bundles (a loop of paths stops at its first repeat)."""
    chain = [bundle.resolve()]
    while len(chain) < limit:
        saved = chain[-1] / "training" / "config.json"
        try:
            parent = json.loads(saved.read_text()).get("init") if saved.is_file() else None
        except (OSError, ValueError):
            parent = None
        if not parent or Path(parent).resolve() in chain:
            break
        if not Path(parent).is_dir():
            log(
                f"{chain[-1]} was fine-tuned from {parent}, which is not found: its training objects "
                "are not checked"
            )
            break
        chain.append(Path(parent).resolve())
    return chain


def member_paths(bundle: Path) -> list[Path]:
    """An ensemble's member directories (from its ``ensemble.json``), or ``[bundle]`` for a bundle."""
    listing = bundle / "ensemble.json"
    if not listing.is_file():
        return [bundle]
    try:
        members = json.loads(listing.read_text()).get("members", [])
        return [bundle / member["path"] for member in members]
    except (OSError, ValueError, TypeError, KeyError):
        return [bundle]


def learned_ids(bundle: str | Path, log: Log) -> tuple[set[Any], set[Any], list[str]]:
    """(training ids, validation ids, unreadable files) over ``bundle``'s members and their chains.

    A bundle without ``training/split.json`` (the shipped one, a bundle made by ``save_bundle``)
    adds nothing; an unreadable or malformed split is named in the third item, not raised.
    """
    trained: set[Any] = set()
    validated: set[Any] = set()
    unreadable: list[str] = []
    for member in member_paths(Path(bundle)):
        for path in init_chain(member, log):
            split = path / "training" / "split.json"
            if not split.is_file():
                continue
            try:
                payload = json.loads(split.read_text())
                trained |= set(payload.get("train_object_ids", []))
                validated |= set(payload.get("val_object_ids", []))
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                unreadable.append(f"{split} ({exc})")
    return trained, validated, unreadable


def seen_objects_warning(bundle: str | Path, object_ids: Iterable[Any], log: Log = print) -> str | None:
    """A warning when objects with ``object_ids`` (a store's) are among those ``bundle`` learned from.

    Returns None when no id is among the bundle's (or its members' and parents') training or
    validation objects, else one sentence with the counts: then the store's AUROC is no held-out
    measure, if the ids name the same objects.
    """
    trained, validated, unreadable = learned_ids(bundle, log)
    ids = [plain_id(object_id) for object_id in object_ids]
    n_trained = sum(1 for object_id in ids if object_id in trained)
    n_validated = sum(1 for object_id in ids if object_id in validated and object_id not in trained)
    said = [f"training/split.json not read: {', '.join(unreadable)}"] if unreadable else []
    if not n_trained and not n_validated:
        return "; ".join(said) or None
    seen = []
    if n_trained:
        seen.append(f"{n_trained} are among the objects it trained on")
    if n_validated:
        seen.append(f"{n_validated} among those it chose its epoch on")
    return "; ".join(
        [
            f"of this store's {len(ids)} objects, {' and '.join(seen)} (by object id, from the "
            "training/split.json of the model, its members and the bundles it was fine-tuned from): if "
            "they are the same objects, this AUROC is not a held-out measure",
            *said,
        ]
    )
