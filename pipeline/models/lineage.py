"""Which objects a bundle learned from: its own split and the bundles it was fine-tuned from.

Every trained bundle keeps ``training/split.json`` (the object ids it trained and validated on) and
``training/config.json`` (whose ``init`` names the bundle it was fine-tuned from, as an absolute
path); a fine-tune also keeps ``training/parent.json`` (:data:`~pipeline.models.parent.PARENT_FILE`:
which model that was). Reading them needs nothing of training, so it lives here, below the stages
that ask: training's checks (:mod:`pipeline.training.lineage`: a fine-tune's fair start, the domain
check) and the evaluation of a run (:mod:`pipeline.evaluation.learned`: metrics on objects the
scoring model learned from). Object ids alone decide: another store whose ids coincide is reported
the same way, so the warnings say "if".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.integrity import MODEL_FILE, file_sha256
from pipeline.models.parent import PARENT_FILE

Log = Callable[[str], None]


def plain_id(object_id: Any) -> Any:
    """An object id as ``split.json`` holds it (a NumPy scalar as its Python value)."""
    return object_id.item() if isinstance(object_id, np.generic) else object_id


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


def card_sha256(bundle: Path) -> str | None:
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
    try:
        return card_sha256(bundle), file_sha256(bundle / MODEL_FILE)
    except OSError:
        return (card_sha256(bundle),)


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
