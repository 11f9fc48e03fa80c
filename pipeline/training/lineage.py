"""Which objects a bundle learned from: its own split and the bundles it was fine-tuned from.

Every trained bundle keeps ``training/split.json`` (the object ids it trained and validated on) and
``training/config.json`` (whose ``init`` names the bundle it was fine-tuned from, as an absolute
path). Two checks read them: a fine-tune does not validate its starting weights on objects they
learned (:func:`pipeline.training.finetune.fair_start`), and the domain check says when a
"held-out" store holds objects the model learned from (:func:`seen_objects_warnings`). Object ids
alone decide: another store whose ids coincide is reported the same way, so the warnings say "if".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
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
    and learned what the parent learned). The files hold absolute paths; a parent no longer there,
    or a file that names none readably, is logged. At most ``limit`` bundles (a loop of paths stops
    at its first repeat)."""
    chain = [bundle.resolve()]
    while len(chain) < limit:
        saved = chain[-1] / "training" / "config.json"
        if not saved.is_file():
            break
        try:
            parent = json.loads(saved.read_text()).get("init")
            if parent is not None and not isinstance(parent, str):
                raise TypeError(f"init is {parent!r}, not a path")
        except (OSError, ValueError, TypeError, AttributeError) as exc:  # review: a hand-edited file
            log(
                f"{saved} cannot be read ({exc}): the bundles {chain[-1]} was fine-tuned from are not checked"
            )
            break
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


def learned_ids(bundles: Sequence[str | Path], log: Log) -> tuple[set[Any], set[Any], list[str]]:
    """(training ids, validation ids, unreadable splits) of ``bundles`` (a bundle, or an ensemble's
    members) and of the bundles each was fine-tuned from (:func:`init_chain`).

    A bundle without ``training/split.json`` (the shipped one, a bundle made by ``save_bundle``)
    adds nothing; an unreadable or malformed split is named in the third item, not raised.
    """
    trained: set[Any] = set()
    validated: set[Any] = set()
    unreadable: list[str] = []
    for bundle in bundles:
        for path in init_chain(Path(bundle), log):
            split = path / "training" / "split.json"
            if not split.is_file():
                continue
            try:
                payload = json.loads(split.read_text())
                ids = [payload.get(key, []) for key in ("train_object_ids", "val_object_ids")]
                if not all(isinstance(side, list) for side in ids):
                    raise TypeError("its object ids are not lists")
                trained |= set(ids[0])
                validated |= set(ids[1])
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                unreadable.append(f"{split} ({exc})")
    return trained, validated, unreadable


def seen_objects_warnings(bundles: Sequence[str | Path], object_ids: Iterable[Any]) -> list[str]:
    """Warnings when objects with ``object_ids`` (a store's) are among those ``bundles`` learned from.

    ``bundles`` are a bundle's directory, or an ensemble's member directories. Returns ``[]`` when no
    id is among their (or their parents') training or validation objects and every file was read;
    else a sentence with the counts (then the store's AUROC is no held-out measure, if the ids name
    the same objects), and one for each split or parent that could not be read.
    """
    said: list[str] = []
    trained, validated, unreadable = learned_ids(bundles, said.append)
    said += [f"{split} cannot be read: its objects are not checked" for split in unreadable]
    ids = [plain_id(object_id) for object_id in object_ids]
    n_trained = sum(1 for object_id in ids if object_id in trained)
    n_validated = sum(1 for object_id in ids if object_id in validated and object_id not in trained)
    if not n_trained and not n_validated:
        return said
    seen = []
    if n_trained:
        seen.append(f"{n_trained} {'is' if n_trained == 1 else 'are'} among the objects it trained on")
    if n_validated:
        seen.append(f"{n_validated} among those it chose its epoch on")
    return [
        f"of this store's {len(ids)} objects, {' and '.join(seen)} (by object id, from the "
        "training/split.json of the model and the bundles it was fine-tuned from): if they are the same "
        "objects, this AUROC is not a held-out measure; if not, give a set simulated apart ids of its own "
        "(lenshunt simulate --first-id)",
        *said,
    ]
