"""Score a labelled store with a bundle in this process and record the metrics in the bundle's card.

Used to measure a trained model on a held-out set (a store it never saw, e.g. simulated with
another seed and id range): every usable object is scored with ``bundle.predict`` over the
bundle's own recipe; unusable objects are left unscored (NaN) and counted by
:func:`~pipeline.evaluation.metrics.evaluate`. The card's ``metrics`` gain ``<prefix>_auroc``,
``<prefix>_tpr0``, ``<prefix>_tpr10`` ... and ``card.json`` is rewritten in place; the model and
recipe files are untouched, so their hashes in the card stay valid.

Command line::

    python -m pipeline.training.heldout BUNDLE STORE [--prefix heldout] [--note TEXT]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.compute.quiet import quiet_tensorflow
from pipeline.errors import LenshuntError, StoreError
from pipeline.evaluation.metrics import Metrics, evaluate
from pipeline.models.aggregate import aggregate_outputs, numeric_columns
from pipeline.models.bundle import CARD_FILE, ModelBundle, load_bundle
from pipeline.models.ensemble import EnsembleBundle, update_ensemble_card
from pipeline.preprocess.arrays import blank_band_rows, usable_objects, used_band_indices
from pipeline.preprocess.range_check import INPUT_CHECK_OBJECTS, bundle_input_warnings
from pipeline.store.columns import read_flags
from pipeline.store.zarr_store import open_store
from pipeline.training.card_entries import entry_texts, stale_entries
from pipeline.training.domain_card import check_card_writable, check_heldout_prefix
from pipeline.training.lineage import learned_from_store
from pipeline.training.run import SCORE_OUTPUT, card_metrics


@dataclass(frozen=True)
class StoreScores:
    """Scores of every object of a store (NaN where unusable) with its labels and ids.

    ``outputs`` holds the catalog columns of every declared output (name -> ``(n,)``, e.g.
    ``theta_e``, ``theta_e_err``, ``theta_e_std``; :func:`~pipeline.models.aggregate.aggregate_outputs`;
    ``score`` and ``score_std`` for the default single ``score``), and ``ood_score`` where the
    bundle has feature statistics (:mod:`pipeline.models.features`). ``score`` is NaN everywhere
    for a bundle without a ``score`` output.
    """

    object_id: np.ndarray
    label: np.ndarray
    score: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


def score_store_in_process(
    bundle: ModelBundle | EnsembleBundle, store: str | Path, batch_size: int = 256, *, tta: bool = False
) -> StoreScores:
    """Score every object of ``store`` with ``bundle`` (mean over members and, with ``tta``, transforms).

    Raises
    ------
    StoreError
        If the store cannot be opened, or a chunk of it cannot be read or decoded (named with the
        store and the column; new-user trial: a corrupt ``label`` chunk was a traceback).
    """
    dataset = open_store(store, chunks=None)  # a zarr.json that is no JSON: StoreError (read_attributes)
    try:
        return _score_outputs_in_process(bundle, dataset, store, tuple(bundle.outputs), batch_size, tta)
    except StoreError as exc:
        raise StoreError(f"{store}: {exc}") from exc


def _values(dataset, name: str, rows: slice | np.ndarray = slice(None)) -> np.ndarray:  # type: ignore[no-untyped-def]
    """:func:`pipeline.store.read_column`: a chunk that cannot be read is a StoreError naming the column."""
    from pipeline.store import read_column

    return read_column(dataset, name, rows)


def _score_outputs_in_process(bundle, dataset, store, specs, batch_size: int, tta: bool) -> StoreScores:
    """Every declared output's columns (the default: ``score``, ``score_std``), batch by batch."""
    bundle = bundle.on_store(dataset.attrs["groups"])  # each band by its name, as scoring reads it
    from pipeline.models.features import OOD_COLUMN, has_feature_stats, ood_score_groups

    flags = read_flags(dataset, store=store, bands=bundle.bands)  # the model's bands' flags, as scoring reads
    used = used_band_indices(dataset.attrs["groups"], bundle.groups)
    names = [name for spec in specs for name in numeric_columns(spec)]
    ood = has_feature_stats(bundle)
    columns: dict[str, np.ndarray] = {
        name: np.full(flags.size, np.nan, dtype=np.float32) for name in names + ([OOD_COLUMN] if ood else [])
    }
    for start in range(0, flags.size, batch_size):
        stop = min(start + batch_size, flags.size)
        usable = np.asarray(usable_objects(flags[start:stop]))
        if not usable.any():
            continue
        groups = {group: _values(dataset, group, slice(start, stop)) for group in bundle.groups}
        usable &= ~blank_band_rows(
            groups, used
        )  # pixels lost in the store (a missing chunk), as scoring does
        if not usable.any():
            continue
        groups = {group: images[usable] for group, images in groups.items()}
        predicted = bundle.predict_groups_outputs(groups, batch_size=min(batch_size, 64), tta=tta)
        for name, values in aggregate_outputs(specs, predicted).items():
            columns[name][start:stop][usable] = values
        if ood:
            columns[OOD_COLUMN][start:stop][usable] = ood_score_groups(bundle, groups)
    score = columns.get(SCORE_OUTPUT, np.full(flags.size, np.nan, dtype=np.float32))
    return StoreScores(_values(dataset, "object_id"), _values(dataset, "label"), score, columns)


def store_checksum(store: str | Path, batch: int = 256) -> int:
    """:func:`~pipeline.training.ceilings.set_checksum` of a labelled store: ids, labels and the pixels
    of every band group (``read_attributes(store).groups``), read ``batch`` objects at a time.

    Reads every pixel once (about 0.2 GB for 1000 euclid-sglc2 objects), so a carried ceiling is
    refused on the same scenes through another instrument, which have the same ids and labels.
    """
    from pipeline.store.zarr_store import read_attributes
    from pipeline.training.ceilings import set_checksum

    dataset = open_store(store, chunks=None)

    def blocks(order: np.ndarray):
        for group in read_attributes(store).groups:
            for start in range(0, order.size, batch):
                rows = order[start : start + batch]
                ascending = np.sort(rows)  # read in store order, then put in id order
                values = _values(dataset, group, ascending)  # review: a corrupt chunk of an unscored group
                yield values[np.searchsorted(ascending, rows)]

    try:
        ids = _values(dataset, "object_id")
        order = np.argsort(ids.astype(str), kind="stable")
        return set_checksum(ids, _values(dataset, "label"), blocks(order))
    except StoreError as exc:
        raise StoreError(f"{store}: {exc}") from exc


def record_metrics(
    bundle_path: str | Path,
    metrics: dict[str, float],
    note: str | Sequence[str] | None = None,
    remove: Sequence[str] = (),
    drop_notes: Callable[[str], str] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> Path:
    """Add ``metrics`` (and each note the notes lack as a whole) to the card at ``bundle_path``.

    ``remove`` names metrics to delete first (measured afresh by the caller, or not at all);
    ``drop_notes`` maps the card's notes to what is kept of them, before the new notes are added;
    ``fields`` sets other card fields (``training_store_crc32``).

    For an ensemble the card inside ``ensemble.json`` is updated; the member bundles are untouched.
    The shipped model's card is refused (:func:`~pipeline.training.domain_card.check_card_writable`).
    """
    check_card_writable(bundle_path)  # review: `python -m pipeline.training.heldout` rewrote it
    bundle = load_bundle(bundle_path)  # validates the bundle and its hashes first
    card = bundle.card
    notes = card.notes if drop_notes is None else drop_notes(card.notes)
    for piece in [note] if isinstance(note, str) else note or []:
        if piece and f" {piece} " not in f" {notes} ":  # a whole note, not a word of another
            notes = f"{notes} {piece}".strip()
    kept = {key: value for key, value in card.metrics.items() if key not in set(remove)}
    updated = card.model_copy(update={"metrics": {**kept, **metrics}, "notes": notes, **(fields or {})})
    if isinstance(bundle, EnsembleBundle):
        path = update_ensemble_card(bundle_path, updated)
    else:
        path = Path(bundle_path) / CARD_FILE
        partial = path.with_name(f".{CARD_FILE}.{os.getpid()}.tmp")
        partial.write_text(updated.card_json())
        partial.replace(path)
    load_bundle(bundle_path)  # the rewritten card still vouches for the files
    return path


def evaluate_on_store(
    bundle_path: str | Path,
    store: str | Path,
    *,
    prefix: str = "heldout",
    note: str | None = None,
    write: bool = True,
    batch_size: int = 256,
) -> Metrics:
    """Metrics of the bundle on a labelled store; with ``write``, recorded in the bundle's card.

    Objects the bundle learned from, or a store its card names as its training store, are warned
    about on stderr and recorded (:func:`~pipeline.training.lineage.learned_from_store`). With
    ``write``, the shipped model and a ``prefix`` that would write other entries are refused before
    any scoring (:mod:`pipeline.training.domain_card`; a :class:`BundleError` or ValueError).
    """
    if write:
        check_card_writable(bundle_path)
    bundle = load_bundle(bundle_path)
    if write:
        check_heldout_prefix(prefix, bundle.card.metrics)
    scored = score_store_in_process(bundle, store, batch_size=batch_size)
    metrics = evaluate(scored.label, scored.score)
    entries, said = learned_from_store(bundle, store, scored.object_id, prefix)  # new-user trial: silent
    for sentence in said:
        print(f"WARNING: the model: {sentence}", file=sys.stderr)
    if write:
        # an earlier measure's value or interval that this one leaves undefined goes with it
        record_metrics(bundle_path, card_metrics(metrics, prefix) | entries, note, stale_entries(prefix))
    return metrics


def store_input_warnings(bundle, store: str | Path) -> list[str]:
    """The score stage's out-of-range warnings for ``store``'s first objects (each member named)."""
    dataset = open_store(store, chunks=None)
    bundle = bundle.on_store(dataset.attrs["groups"])  # each band by its name, as the score stage reads it
    sample = slice(0, min(int(dataset.sizes["object"]), INPUT_CHECK_OBJECTS))
    flags = read_flags(dataset, sample, store=store, bands=bundle.bands)
    return bundle_input_warnings(bundle, lambda group: dataset[group][sample].values, flags)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.training.heldout",
        description="score a labelled store with a bundle in-process and record the metrics in its card",
    )
    parser.add_argument("bundle", type=Path, help="model bundle directory")
    parser.add_argument("store", type=Path, help="labelled lenshunt store the model never saw")
    parser.add_argument("--prefix", default="heldout", help="prefix of the card's metric names")
    parser.add_argument("--note", default=None, help="sentence appended to the card's notes")
    parser.add_argument("--dry-run", action="store_true", help="print the metrics, leave the card alone")
    args = parser.parse_args(argv)
    quiet_tensorflow()  # trial: TensorFlow's absl start-up lines were printed, twice
    try:
        metrics = evaluate_on_store(
            args.bundle, args.store, prefix=args.prefix, note=args.note, write=not args.dry_run
        )
    except (LenshuntError, ValueError) as exc:  # review: the shipped card's refusal was a traceback
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    for text in entry_texts(card_metrics(metrics, args.prefix)):  # trial: counts printed as 22.0000
        print(text)  # each value with its 95% interval where it has one
    return 0


if __name__ == "__main__":
    sys.exit(main())
