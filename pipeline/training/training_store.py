"""Record on an older bundle's card the checksum of the store it was trained on.

``lenshunt train`` records ``training_store_crc32`` (:data:`~pipeline.training.ceilings.TRAINING_STORE_KEY`,
the CRC-32 of the training store's object ids and labels) on every card since 2026-12-02, so that
the domain-shift check and ``python -m pipeline.training.heldout`` know that store, or a copy of
it under any path or name, and warn when a model is scored on its own training objects. Cards
written before only name the store (a path or a ``--store-id``)::

    python -m pipeline.training.training_store BUNDLE STORE

adds the entry to ``BUNDLE/card.json`` from ``STORE`` (the training store, or a set simulated again
with the command the card's ``training_store`` names). ``scripts/train_shipped_model.sh`` does this
for the shipped model before its domain check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import BundleError, LenshuntError
from pipeline.training.ceilings import TRAINING_STORE_KEY, store_set_checksum
from schemas.store import OBJECT_DIM

__all__ = ["record_training_store"]


def record_training_store(bundle: str | Path, store: str | Path) -> str:
    """Add ``store``'s :func:`~pipeline.training.ceilings.store_set_checksum` to ``bundle``'s card.

    Parameters
    ----------
    bundle
        A single-model bundle directory (not the shipped model's: check a copy; not an ensemble:
        record it on each member, which may each have trained on another store).
    store
        The lenshunt store the bundle was trained on.

    Returns
    -------
    str
        What was done, one line.

    Raises
    ------
    BundleError
        An ensemble, the shipped model's directory, or a card that records another checksum, or
        fewer objects in ``store`` than the card validated on (it cannot be the training store).
    pipeline.errors.StoreError
        ``store`` is not a readable lenshunt store.
    """
    from pipeline.models import load_bundle
    from pipeline.models.ensemble import EnsembleBundle
    from pipeline.store import open_store
    from pipeline.training.domain_card import check_card_writable
    from pipeline.training.heldout import record_metrics

    check_card_writable(bundle)
    loaded = load_bundle(bundle)
    if isinstance(loaded, EnsembleBundle):
        raise BundleError(f"{bundle} is an ensemble: record the training store on each member's bundle")
    metrics = loaded.card.metrics
    checksum = float(store_set_checksum(store))
    recorded = metrics.get(TRAINING_STORE_KEY)
    if recorded is not None:
        if recorded == checksum:
            return (
                f"{bundle}: its card already records this training store "
                f"({TRAINING_STORE_KEY} {recorded:.0f})"
            )
        raise BundleError(
            f"{bundle}'s card records another training store ({TRAINING_STORE_KEY} {recorded:.0f}; "
            f"{store} has {checksum:.0f}): its object ids or labels differ from those it was trained on"
        )
    validated = sum(metrics.get(key, 0.0) for key in ("val_n_pos", "val_n_neg", "val_n_unscored"))
    n_objects = open_store(store, chunks=None).sizes[OBJECT_DIM]
    if n_objects < validated:
        raise BundleError(
            f"{store} holds {n_objects} objects, fewer than the {validated:.0f} {bundle} was validated on: "
            "it is not the store the model was trained on"
        )
    record_metrics(bundle, {TRAINING_STORE_KEY: checksum})
    return (
        f"{bundle}: recorded {TRAINING_STORE_KEY} {checksum:.0f} ({n_objects} objects of {store}; the card "
        f"names its training store as {loaded.card.training_store!r})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the bundle directory whose card gets the entry")
    parser.add_argument("store", type=Path, help="the lenshunt store it was trained on")
    args = parser.parse_args(argv)
    try:
        print(record_training_store(args.bundle, args.store))
    except LenshuntError as error:
        print(f"pipeline.training.training_store: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
