"""Ceilings of the domain-shift check: warnings about a ceiling model, and ceilings carried from a card.

A domain's ceiling (:mod:`pipeline.training.domains`) is the AUROC, on the domain's held-out store,
of a model trained on that domain itself. It belongs to the store and to the ceiling model, not to
the model being checked: when only the checked model changes and the held-out store is drawn
again by the same command (the same objects), an earlier check's ceiling still holds, and the
ceiling model need not be trained again (for the shipped model's two independent simulators that
is about an hour of CPU: ``scripts/train_ceiling_model.sh``). :func:`carried_ceiling` reads it from
that check's card and refuses it where the card counted other numbers of lenses and non-lenses on
the domain (another store).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import BundleError, LenshuntError

if TYPE_CHECKING:
    from pipeline.training.domains import DomainReport

CEILING_KEYS = ("_ceiling_auroc", "_transfer_gap")
"""Endings of the card keys a ceiling writes (``max_transfer_gap`` ends in the second)."""

CHECKSUM_KEY = "_set_crc32"
"""Ending of the card key with a domain's held-out set checksum (:func:`set_checksum`)."""


def set_checksum(object_id: np.ndarray, label: np.ndarray, pixels: Iterable[np.ndarray] = ()) -> int:
    """CRC-32 of a held-out set's objects, labels and pixels: the same set gives the same number.

    Parameters
    ----------
    object_id, label
        ``(n,)`` object ids and labels of the set's objects, in any order.
    pixels
        Blocks of the objects' pixels in sorted id order (``str`` order of the ids), each an array
        whose first axis is objects; every band group's objects in turn
        (:func:`pipeline.training.heldout.store_checksum` reads them from a store).

    Returns
    -------
    int
        In [0, 2**32): zlib's CRC-32 of the ``"<id>\\t<label>\\n"`` lines (label written ``1``,
        ``0`` or ``nan``) in sorted id order, continued over the pixel blocks' bytes. Sets with the
        same numbers of lenses and non-lenses but other objects (another draw), labels, or the same
        scenes through another instrument (``--noise-scale 3 3`` of the same seed) differ, except by
        a 1 in 2**32 chance.
    """
    ids = np.asarray(object_id).astype(str)
    labels = np.asarray(label, dtype=float)  # 1, 0 or nan whatever the store's dtype
    order = np.argsort(ids, kind="stable")
    crc = zlib.crc32("".join(f"{ids[i]}\t{labels[i]:g}\n" for i in order).encode())
    for block in pixels:
        crc = zlib.crc32(np.ascontiguousarray(block).tobytes(), crc)
    return crc


TRAINING_STORE_KEY = "training_store_crc32"
"""Card field of ``lenshunt train`` (in ``metrics`` on cards before 2026-12-06): :func:`set_checksum`
of its training store's ids and labels (no pixels), so :func:`trained_on_store` knows that store
wherever it lies, under whatever name. Not ending in ``CHECKSUM_KEY``: a domain check takes those
for its own domains' entries and removes them."""


def store_set_checksum(store: str | Path) -> int:
    """:func:`set_checksum` of every object id and label of ``store`` (no pixels: reads two columns).

    Any store of the same ids and labels gives the same number: a copy (``cp -r``), or another draw
    with the same seed, first id and size whose labels agree. Every id is then shared, which the
    lineage check (:mod:`pipeline.training.lineage`) flags too where training files are kept. The
    same scenes through another instrument (``--noise-scale 3 3``) usually differ in a few labels
    (the challenge's label rule counts source pixels against the noise) and are not matched.

    Raises
    ------
    pipeline.errors.LenshuntError
        If ``store`` is not a lenshunt store; a StoreError naming it and the column where its ids or
        labels cannot be read (:func:`pipeline.store.read_column`; review: a zstd traceback).
    """
    from pipeline.store import open_store, read_column

    dataset = open_store(store, chunks=None)
    return set_checksum(*(read_column(dataset, name, store=store) for name in ("object_id", "label")))


def training_set_entry(store: str | Path) -> dict[str, int]:
    """``{TRAINING_STORE_KEY: checksum}`` of a training store: the card's field of that name, an integer
    (user trial: it was a float among the validation metrics)."""
    return {TRAINING_STORE_KEY: store_set_checksum(store)}


def recorded_checksum(card: Any) -> int | None:
    """The training store checksum a card records: a :class:`~pipeline.models.card.ModelCard` or the
    JSON of one, where older cards hold it in ``metrics`` (as a float); None where none is recorded."""
    if isinstance(card, Mapping):
        value = card.get(TRAINING_STORE_KEY)
        metrics = card.get("metrics")
    else:
        value = getattr(card, TRAINING_STORE_KEY, None)
        metrics = getattr(card, "metrics", None)
    if value is None and isinstance(metrics, Mapping):
        value = metrics.get(TRAINING_STORE_KEY)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


UNTRUSTED_CEILING = {
    "learned_objects": "its ceiling model learned from objects of the set",
    "trained_on_store": "its ceiling model was trained on the store it was scored on",
    "lineage_unchecked": "what its ceiling model learned from could not be checked",
}
"""Card entry ``<domain>_ceiling_<key>`` -> why that domain's ceiling is no ceiling (no transfer gap
from it, and it does not carry): :mod:`pipeline.training.lineage` writes the first and the last,
:func:`trained_on_store` decides the second."""


def untrusted_ceiling(metrics: Mapping[str, Any], domain: str) -> str | None:
    """Why the ceiling of ``domain`` is no ceiling by card entries, or None.

    Parameters
    ----------
    metrics
        A card's metrics (or a check's entries): ``<domain>_ceiling_<key>`` for the keys of
        :data:`UNTRUSTED_CEILING`.

    Returns
    -------
    str or None
        The reason of the first such entry that is set (non-zero), or None: none is.
    """
    return next(
        (why for key, why in UNTRUSTED_CEILING.items() if metrics.get(f"{domain}_ceiling_{key}")), None
    )


def trained_on_store(bundle: Any, store: str | Path, parents: Iterable[Path] = ()) -> str | None:
    """How the card of ``bundle`` (or of any member of an ensemble, or of a bundle it was fine-tuned
    from: ``parents``) names ``store`` as its training store, or None where none does.

    Parameters
    ----------
    bundle
        A loaded model bundle or ensemble (``card.training_store``; an ensemble's ``members``).
    store
        The store it is scored on.
    parents
        Directories of the bundles it was fine-tuned from (:func:`pipeline.training.lineage.fine_tuned_from`;
        new-user trial: a fine-tune of a bundle without training files, scored on that bundle's
        training store, was not warned about). An unreadable ``card.json`` there is skipped.

    Returns
    -------
    str or None
        A clause for a warning where a card's ``training_store`` is an existing path to the same
        directory ("its card names this very store (...) as its training store"), or its
        ``TRAINING_STORE_KEY`` entry is the :func:`store_set_checksum` of ``store`` ("the training
        store in its card (...) has this store's object ids and labels"): a copy of the training store,
        or a model trained with ``--store-id`` (its card holds the id, not a path), is found too
        (last note's known problem). lenshunt train records the path resolved; a relative path in
        an older card is resolved from the current working directory (it may then miss, or name
        another store there). A name no file system takes (too long, a NUL) is no path (review: it
        raised), and a store that cannot be read has no checksum: None. Cards written before the
        checksum entry are known by path only (the lineage check, :mod:`pipeline.training.lineage`,
        still finds their objects through their training files).
    """
    cards = [
        ("its card", member.card.training_store, recorded_checksum(member.card))
        for member in getattr(bundle, "members", None) or [bundle]
    ]  # every member (review: the first was)
    for parent in parents:
        try:
            card = json.loads((Path(parent) / "card.json").read_text())
            whose = f"the card of {parent} (a bundle it was fine-tuned from)"
            cards.append((whose, str(card["training_store"]), recorded_checksum(card)))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
    target = Path(store).resolve()
    for whose, name, _ in cards:
        try:
            trained_on = Path(str(name))
            if trained_on.exists() and trained_on.resolve() == target:
                return f"{whose} names this very store ({store}) as its training store"
        except (OSError, ValueError):
            continue
    recorded = [(whose, name, value) for whose, name, value in cards if value is not None]
    if not recorded:
        return None
    try:
        checksum = store_set_checksum(store)
    except (LenshuntError, OSError, ValueError, RuntimeError, KeyError):  # review: an unreadable store raised
        return None
    for whose, name, value in recorded:
        if value == checksum:
            ids = f"this store's object ids and labels ({TRAINING_STORE_KEY})"
            return f"the training store in {whose} ({name}) has {ids}"
    return None


def ceiling_warnings(trained_on: str | None, ceiling: float, auroc: float | None) -> list[str]:
    """Why a ceiling model may be no ceiling: trained on the store it is scored on (``trained_on``,
    how :func:`trained_on_store` found it; None: not), or scoring lower."""
    messages = []
    if trained_on is not None:
        messages.append(
            f"the ceiling model was trained on this very store: {trained_on}; its AUROC is not a ceiling; "
            "train it on other objects of the domain"
        )
    return messages + below_the_model(ceiling, auroc)


def below_the_model(ceiling: float, auroc: float | None) -> list[str]:
    """A warning where the ceiling AUROC is below the checked model's (then it is no ceiling)."""
    if auroc is None or not ceiling < auroc:
        return []
    return [
        f"the ceiling model scores {ceiling:.3f}, below this model's {auroc:.3f}: it is no ceiling "
        "(too little training data or too few epochs?)"
    ]


def read_card_metrics(path: str | Path) -> tuple[dict[str, Any], str, str]:
    """The metrics, model id and notes of the card at ``path``.

    ``path`` is a ``card.json``, an ensemble's ``ensemble.json`` (its card inside), or a bundle or
    ensemble directory.

    Raises
    ------
    BundleError
        If there is no readable card with a ``metrics`` mapping.
    """
    path = Path(path)
    card = path
    if path.is_dir():
        card = path / "ensemble.json" if (path / "ensemble.json").exists() else path / "card.json"
    try:
        data = json.loads(card.read_text())
        data = data["card"] if isinstance(data, dict) and "metrics" not in data and "card" in data else data
        metrics = data["metrics"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{card}: not a readable model card with metrics ({exc})") from exc
    if not isinstance(metrics, dict):
        raise BundleError(f"{card}: its metrics are not a mapping")
    return metrics, str(data.get("model_id", "unknown model")), str(data.get("notes") or "")


def checked_ceiling_arguments(
    stores: Mapping[str, Any],
    ceilings: Mapping[str, Any],
    carried: Mapping[str, str | Path],
    checked: str | Path,
) -> dict[str, tuple[dict[str, Any], str, str]]:
    """Each carried domain's card, read and checked before any scoring.

    Raises
    ------
    ValueError
        When a ceiling or carried ceiling names no domain, or a domain has both.
    BundleError
        When a card is unreadable, is the card of the bundle being checked (``checked``), or holds
        no ceiling AUROC in [0, 1] for the domain.
    """
    unknown = sorted((set(ceilings) | set(carried)) - set(stores))
    if unknown:
        raise ValueError(f"ceilings for {unknown}, which are not among the domains {sorted(stores)}")
    if set(ceilings) & set(carried):
        raise ValueError(
            f"both a ceiling model and a carried ceiling for {sorted(set(ceilings) & set(carried))}"
        )
    own = {Path(checked, name).resolve() for name in ("card.json", "ensemble.json")} | {
        Path(checked).resolve()
    }
    cards = {}
    for domain, path in carried.items():
        if Path(path).resolve() in own:
            raise BundleError(
                f"--ceiling-from {domain}={path} is the card of the bundle being checked: carry the ceiling "
                "from the earlier check's card (e.g. the previous shipped model's)"
            )
        cards[domain] = read_card_metrics(path)
        _ceiling_value(cards[domain], domain)
    return cards


def _ceiling_value(card: tuple[dict[str, Any], str, str], domain: str) -> float:
    """The card's ``<domain>_ceiling_auroc``; a :class:`BundleError` unless it is an AUROC in [0, 1] of a
    ceiling its check trusted (:func:`untrusted_ceiling`; checked before any scoring, review)."""
    metrics, model_id, _ = card
    value = metrics.get(f"{domain}_ceiling_auroc")
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise BundleError(
            f"the card of {model_id} records no ceiling AUROC in [0, 1] for {domain!r} "
            f"({domain}_ceiling_auroc: {value!r}); carry one from a check that measured it, or give the "
            "ceiling model (--ceiling)"
        )
    learned = metrics.get(f"{domain}_ceiling_learned_objects")
    if learned:  # review: a ceiling model trained on the held-out set was carried on as a ceiling
        raise BundleError(
            f"the ceiling model of {model_id}'s check of {domain!r} had trained or chosen its epoch on "
            f"{learned:g} of the set's objects: its AUROC is no ceiling, so it does not carry (give a "
            "ceiling model trained on other objects of the domain: --ceiling)"
        )
    if metrics.get(f"{domain}_ceiling_lineage_unchecked"):
        raise BundleError(
            f"what the ceiling model of {model_id}'s check of {domain!r} learned from could not be checked "
            "(that check's warnings say why): its AUROC is not known to be a ceiling, so it does not carry "
            "(give the ceiling model: --ceiling)"
        )
    if (why := untrusted_ceiling(metrics, domain)) is not None:  # review: a copy without training files
        raise BundleError(
            f"in {model_id}'s check of {domain!r}, {why}: its AUROC is no ceiling, so it does not carry "
            "(give a ceiling model trained on other objects of the domain: --ceiling)"
        )
    return float(value)


def carried_ceiling(
    card: tuple[dict[str, Any], str, str], domain: str, n_pos: int, n_neg: int, checksum: int | None = None
) -> tuple[float, list[str]]:
    """The ceiling AUROC of ``domain`` recorded in a card, and sentences saying where it came from.

    The sentences are one saying it was carried from that card, then the card's own sentences about
    how the ceiling model was made (those starting ``"Ceiling on <domain>:"``, the shipped-model
    script's), so that a ceiling carried again and again still says what model it was.

    Parameters
    ----------
    card
        The earlier domain check's card: metrics, model id and notes (:func:`read_card_metrics`).
    domain
        The domain's name, the same in both checks.
    n_pos, n_neg
        Lenses and non-lenses of the domain's store in this check.
    checksum
        :func:`set_checksum` of the domain's store in this check; compared with the card's
        ``<domain>_set_crc32`` where both have one.

    Raises
    ------
    BundleError
        If the card has no ``<domain>_ceiling_auroc`` in [0, 1], or counted other numbers of lenses or
        non-lenses on ``domain`` (``<domain>_n_pos``, ``<domain>_n_neg``), or recorded another
        checksum of its objects, labels and pixels: another store; or its ceiling model learned from
        objects of the set (``<domain>_ceiling_learned_objects``), was trained on that very store
        (``<domain>_ceiling_trained_on_store``) or what it learned from could not be checked
        (``<domain>_ceiling_lineage_unchecked``).
    """
    metrics, model_id, notes = card
    value = _ceiling_value(card, domain)
    counted = (metrics.get(f"{domain}_n_pos"), metrics.get(f"{domain}_n_neg"))
    if counted != (n_pos, n_neg):
        shown = [f"{count:g}" if isinstance(count, int | float) else "unknown" for count in counted]
        raise BundleError(
            f"the ceiling for {domain!r} in the card of {model_id} was measured on {shown[0]} lenses "
            f"and {shown[1]} non-lenses, this store has {n_pos} and {n_neg}: another store, so its "
            "ceiling does not carry (give the ceiling model: --ceiling)"
        )
    recorded = metrics.get(f"{domain}{CHECKSUM_KEY}")
    if checksum is not None and recorded is not None and int(recorded) != checksum:
        raise BundleError(
            f"the ceiling for {domain!r} in the card of {model_id} was measured on other objects, labels "
            f"or pixels than this store's (checksum {int(recorded)}, here {checksum}), though as many "
            "lenses and non-lenses: another store, so its ceiling does not carry (give the ceiling "
            "model: --ceiling)"
        )
    how = "" if checksum is not None and recorded is not None else "; counts checked, not the objects"
    made = re.findall(rf"Ceiling on {re.escape(domain)}: {_SENTENCE}", notes)
    # the description of how the ceiling model was made speaks of "the same" recipe: that of the model
    # whose check trained the ceiling, which the card names where it carried the ceiling itself: in its
    # own "written for" clause where it was carried more than once (a third check named the second)
    origins = [m.group(1) for s in made if (m := re.search(rf"{_WRITTEN_FOR}(\S+)'s check", s))]
    origins += [m.group(1) for s in made if (m := re.search(rf"{_CARRIED}(\S+) ", s))]
    origin = origins[0] if origins else model_id
    described = [sentence for sentence in made if _CARRIED not in sentence]
    written = f" ({_WRITTEN_FOR}{origin}'s check)" if described else ""
    carried = (
        f"Ceiling on {domain}: {float(value):.4f}, carried from the domain check of {model_id} on the "
        f"same held-out set ({n_pos} lenses, {n_neg} non-lenses{how}); its ceiling model was not scored "
        f"again{written}."
    )
    return float(value), [carried, *described]


_CARRIED = ", carried from the domain check of "
_WRITTEN_FOR = "its description below was written for "
_SENTENCE = r".*?(?<!\be\.g)(?<!\bi\.e)\.(?= [A-Z]|$)"
"""The rest of a sentence: to a full stop (not of "e.g." or "i.e.") before a capital or the end."""


def without_ceiling_sentences(notes: str) -> str:
    """``notes`` without the sentences about ceilings (``"Ceiling on <domain>: ..."``), which each
    domain check writes anew with its ceilings."""
    return re.sub(rf" ?Ceiling on \w+: {_SENTENCE}", "", notes).strip()


def ceiling_table(report: DomainReport) -> list[str]:
    """Markdown lines comparing each domain's AUROC with its ceiling in ``report`` (a blank line first).

    Returns
    -------
    list of str
        An explanation; the table of domain, this model's AUROC, the ceiling model's, the transfer gap
        and the AUROC drop (the ceiling model's AUROC is shown even where it is no ceiling, its gap is
        then ``-``: :func:`untrusted_ceiling`); a line for each domain whose ceiling is none, saying why.
    """

    def number(value: float | None) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.3f}"

    lines = [
        "",
        "AUROC of a model trained on the domain itself (other objects of it; the ceiling at this "
        "data size and architecture) against this model's: the transfer gap is what this model "
        "loses by never having seen the domain, the rest of its drop is the set being harder.",
        "",
        "| domain | this model | trained on the domain | transfer gap | drop |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {number(report.metrics[name].auroc)} | {number(ceiling)} | "
        f"{number(report.transfer_gap(name))} | {number(report.auroc_drop(name))} |"
        for name, ceiling in report.ceilings.items()
    ]
    whys = {name: untrusted_ceiling(report.learned, name) for name in report.ceilings}
    lines += [
        f"\nNo transfer gap for {name}: {why} (the warnings below say more)."
        for name, why in whys.items()
        if why is not None
    ]
    return lines
