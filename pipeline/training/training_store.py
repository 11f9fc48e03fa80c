"""Record on an older bundle's card the checksum of the store it was trained on.

``lenshunt train`` records ``training_store_crc32`` (:data:`~pipeline.training.ceilings.TRAINING_STORE_KEY`,
the CRC-32 of the training store's object ids and labels) on every card since 2026-12-02, so that
the domain-shift check and ``python -m pipeline.training.heldout`` know that store, or a copy of
it under any path or name, and warn when a model is scored on its own training objects. Cards
written before only name the store (a path or a ``--store-id``)::

    python -m pipeline.training.training_store BUNDLE STORE

adds the entry to ``BUNDLE/card.json`` from ``STORE`` (the training store, or a set simulated again
with the command the card's ``training_store`` names). ``scripts/train_shipped_model.sh`` does this
for the shipped model before its domain check. A wrong entry would mark held-out sets as training
data, or hide a copy of the training store, so ``STORE`` is checked against what the card says
(:func:`record_training_store`); ``--replace`` replaces an entry recorded from another store.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from pipeline.errors import BundleError, LenshuntError
from pipeline.training.ceilings import TRAINING_STORE_KEY, store_set_checksum

__all__ = ["named_ids", "record_training_store"]

VALIDATION_KEYS = ("val_n_pos", "val_n_neg", "val_n_unscored")
"""Card entries that count the objects a bundle was validated on (a part of its training store)."""


def named_ids(training_store: str) -> range | None:
    """The object ids a card's ``training_store`` names where it is a simulator's command with
    ``--n N`` and ``--first-id I`` (``lenshunt simulate`` defaults ``I`` to its own first id, 100000):
    ``range(I, I + N)``; None for any other name (a path, a free ``--store-id``).

    Examples
    --------
    >>> named_ids("lenshunt simulate --layout euclid-sglc2 --n 16000 --seed 2027 --first-id 200000")
    range(200000, 216000)
    >>> named_ids("runs/train.zarr") is None
    True
    """
    from pipeline.simulate.runner import DEFAULT_FIRST_ID

    try:
        words = shlex.split(training_store)
    except ValueError:
        return None

    def option(name: str, default: int | None = None) -> int | None:
        if name not in words:
            return default
        index = words.index(name) + 1
        return int(words[index]) if index < len(words) and words[index].isdigit() else None

    n = option("--n")
    first = option("--first-id", DEFAULT_FIRST_ID if words[:2] == ["lenshunt", "simulate"] else None)
    return None if n is None or first is None else range(first, first + n)


def _split_ids(bundle: Path) -> np.ndarray | None:
    """The object ids ``bundle/training/split.json`` lists (trained and validated on), or None."""
    import json

    path = bundle / "training" / "split.json"
    if not path.is_file():
        return None
    try:
        split = json.loads(path.read_text())
        return np.asarray([*split["train_object_ids"], *split["val_object_ids"]], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path} cannot be read ({exc!r}): cannot check the store against it") from exc


def _checked_against_card(bundle: Path, card, store: str | Path, checksum: int) -> str:  # type: ignore[no-untyped-def]
    """How ``store`` was found to be the training store ``card`` names; BundleError where it is not."""
    from pipeline.store import open_store, read_column

    ids = read_column(open_store(store, chunks=None), "object_id", store=store)
    listed = _split_ids(bundle)
    validated = [card.metrics.get(key) for key in VALIDATION_KEYS[:2]]
    if listed is None and any(not isinstance(count, int | float) for count in validated):
        raise BundleError(
            f"its card has no validation counts ({', '.join(VALIDATION_KEYS[:2])}) and it kept no "
            f"training/split.json: nothing to check {store} against"
        )
    if listed is not None:
        missing = np.setdiff1d(listed, ids).size
        if missing:
            raise BundleError(
                f"{store} lacks {missing} of the {len(listed)} objects the model trained and validated on "
                f"(its {bundle / 'training' / 'split.json'}): another store"
            )
    total = sum(card.metrics.get(key, 0.0) for key in VALIDATION_KEYS)
    if ids.size < total:
        raise BundleError(
            f"{store} holds {ids.size} objects, fewer than the {total:.0f} the model was validated on: it "
            "is not the store the model was trained on"
        )
    name = card.training_store
    wanted = named_ids(name)
    if wanted is not None:
        if ids.size != len(wanted) or not np.array_equal(np.sort(ids), np.arange(wanted.start, wanted.stop)):
            raise BundleError(
                f"the card's training store is {name!r}: objects {wanted.start} to {wanted.stop - 1}; "
                f"{store} holds {ids.size} objects (ids {ids.min()} to {ids.max()}): another set"
            )
        return (
            f"its object ids are those the card's training store names ({wanted.start} to {wanted.stop - 1})"
        )
    named = Path(name)
    try:
        exists = (named / "zarr.json").is_file()  # review: a --store-id naming a folder that is no store
    except (OSError, ValueError):  # a name no file system takes
        exists = False
    if exists:
        if named.resolve() == Path(store).resolve():
            return "it is the store the card names"
        if store_set_checksum(named) != checksum:
            raise BundleError(
                f"the card names {name} as its training store, whose object ids or labels differ from "
                f"{store}'s: record it from {name}"
            )
        return f"it has the object ids and labels of {name}, the store the card names"
    return (
        f"only checked: it holds at least the {total:.0f} objects the model was validated on (the card "
        f"names its training store {name!r}, neither a store here nor a simulator command)"
    )


def record_training_store(bundle: str | Path, store: str | Path, *, replace: bool = False) -> str:
    """Add ``store``'s :func:`~pipeline.training.ceilings.store_set_checksum` to ``bundle``'s card.

    ``store`` must be the training store the card names, as far as the bundle tells: holding
    every object its ``training/split.json`` lists, where it kept one; the store at
    the path the card names (or one with the same ids and labels), or the ids ``I .. I + N - 1`` of
    the simulator command it names (``--n N --first-id I``: :func:`named_ids`); and at least as many
    objects as it validated on.

    Parameters
    ----------
    bundle
        A single-model bundle directory (not the shipped model's: record on a copy; not an
        ensemble: record it on each member, which may each have trained on another store).
    store
        The lenshunt store the bundle was trained on.
    replace
        Replace a checksum recorded from another store (a wrong entry; review).

    Returns
    -------
    str
        What was done and how ``store`` was checked, one line.

    Raises
    ------
    BundleError
        An ensemble, the shipped model's directory, a card without validation counts, a card that
        records another checksum (without ``replace``), or a ``store`` that is not the one the
        bundle names (other ids, fewer objects than it validated on).
    pipeline.errors.StoreError
        ``store`` (or the store the card names) is not a readable lenshunt store.
    """
    from pipeline.models import load_bundle
    from pipeline.models.ensemble import EnsembleBundle
    from pipeline.paths import shipped_model
    from pipeline.training.heldout import record_metrics

    if Path(bundle).resolve() == shipped_model().resolve():
        raise BundleError(
            "the shipped model's card is the release's record: record on a copy of the bundle (cp -r); "
            "scripts/train_shipped_model.sh records it on the shipped model"
        )
    loaded = load_bundle(bundle)
    if isinstance(loaded, EnsembleBundle):
        raise BundleError(f"{bundle} is an ensemble: record the training store on each member's bundle")
    checksum = store_set_checksum(store)
    recorded = loaded.card.training_store_crc32  # an older card's metrics entry is read here too
    if recorded is not None and recorded == checksum:
        return f"{bundle}: its card already records this training store ({TRAINING_STORE_KEY} {recorded})"
    if recorded is not None and not replace:
        raise BundleError(
            f"{bundle}'s card records another training store ({TRAINING_STORE_KEY} {recorded}; "
            f"{store} has {checksum}): its object ids or labels differ from those it was trained on "
            "(--replace replaces a wrong entry)"
        )
    how = _checked_against_card(Path(bundle), loaded.card, store, checksum)
    record_metrics(bundle, {}, fields={TRAINING_STORE_KEY: checksum})
    done = "replaced" if recorded is not None else "recorded"
    return f"{bundle}: {done} {TRAINING_STORE_KEY} {checksum} from {store}; {how}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the bundle directory whose card gets the entry")
    parser.add_argument("store", type=Path, help="the lenshunt store it was trained on")
    parser.add_argument(
        "--replace", action="store_true", help="replace a checksum the card recorded from another store"
    )
    args = parser.parse_args(argv)
    if (
        args.bundle / "zarr.json"
    ).is_file():  # new-user trial: it said the bundle was "unfinished or foreign"
        parser.error(
            f"{args.bundle} is a store, not a bundle: give the bundle first, then its training store"
        )
    try:
        print(record_training_store(args.bundle, args.store, replace=args.replace))
    except LenshuntError as error:
        print(f"pipeline.training.training_store: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
