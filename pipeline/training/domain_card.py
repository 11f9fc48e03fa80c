"""Which entries of a model card a new domain-shift check replaces.

A domain check (:mod:`pipeline.training.domains`) writes ``<domain>_...`` entries for each domain
it scores and the largest drop and transfer gap over them (``max_auroc_drop``,
``max_transfer_gap``). A later check replaces the earlier one as a whole: entries of domains it
does not score would otherwise stay beside maxima computed without them (a check of two domains
left the shipped card's ``othersim_auroc`` 0.824 beside a ``max_auroc_drop`` of 0.001), and
entries it measures anew (ceilings, feature statistics) would contradict it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.errors import BundleError
from pipeline.paths import shipped_model
from pipeline.training.ceilings import CEILING_KEYS, CHECKSUM_KEY
from pipeline.training.domain_breakdown import MATCHED_DROP_KEYS
from pipeline.training.domain_intervals import MAX_DROP_KEYS
from pipeline.training.domain_ood import OOD_CARD_KEYS

CHECK_MAXIMA = (
    *("max_auroc_drop", "max_transfer_gap", "max_auroc_drop_matched"),
    *(*MAX_DROP_KEYS, *MATCHED_DROP_KEYS),
)
"""Card entries over all of a check's domains."""

NOT_DOMAINS = frozenset({"val", "heldout", "training", "member"})
"""Prefixes of entries that training (``val_``; ``training_store_crc32`` on older cards),
``evaluate_on_store`` (``heldout_``) and an ensemble (``member_<dir>_val_...``) write."""


def check_domain_names(names: Iterable[str]) -> None:
    """Refuse domain names that cannot be card keys, or whose entries would be another's.

    Raises
    ------
    ValueError
        For a name of other characters than letters, digits and ``_``, or one whose ``<name>_...``
        entries are, or begin like, those of training (``val``, ``val_...``, ``training``,
        ``training_...``: its validation and ``training_store_crc32``), of ``evaluate_on_store``
        (``heldout``, ``heldout_...``), of an ensemble's members (``member``, ``member_...``), of
        the check's maxima (``max``, ``max_...``) or of a domain's ceiling (``<domain>_ceiling``): a
        later check removes every ``<name>_...`` entry (new-user trial: a domain named ``val``
        replaced the card's validation metrics; review: ``val_theta`` would have its next check
        remove ``val_theta_e_mse``).
    """
    names = list(names)
    bad = [name for name in names if not name.replace("_", "").isalnum()]
    if bad:
        raise ValueError(f"domain names must be letters, digits and _ (card keys), got {bad}")
    others = NOT_DOMAINS | {"max"}
    prefixes = tuple(f"{other}_" for other in others)
    taken = [
        name for name in names if name in others or name.startswith(prefixes) or name.endswith("_ceiling")
    ]
    if taken:
        raise ValueError(
            f"domain names {taken} would write or remove card entries of training's validation or training "
            "store (val_..., training_...), of a held-out evaluation (heldout_...), of an ensemble's members "
            "(member_...), of the check's maxima "
            "(max_...) or of a domain's ceiling (<domain>_ceiling_...): name the domains otherwise"
        )


def check_heldout_prefix(prefix: str, metrics: Mapping[str, float]) -> None:
    """Refuse a ``python -m pipeline.training.heldout --prefix`` whose entries would be another's.

    Raises
    ------
    ValueError
        For a prefix that is no card key, that :func:`check_domain_names` refuses (but
        ``heldout`` and ``heldout_...``, the tool's own), or that names a domain of the card's
        domain check (``<prefix>_set_crc32``; new-user trial: ``--prefix val`` replaced the
        validation metrics, ``--prefix <domain>_ceiling`` a ceiling that was then carried).
    """
    if prefix == "heldout" or prefix.startswith("heldout_"):
        return
    check_domain_names([prefix])
    if f"{prefix}{CHECKSUM_KEY}" in metrics:
        raise ValueError(f"--prefix {prefix} is a domain of the card's domain check: give another prefix")


def check_card_writable(bundle: str | Path) -> None:
    """Refuse to record a check in the shipped model's card (new-user trial: a check of it rewrote
    the release's record, and the ceilings that ``--ceiling-from`` carries from it, in the package).

    Raises
    ------
    BundleError
        Where ``bundle`` is the shipped model's directory (:func:`pipeline.paths.shipped_model`).
    """
    if Path(bundle).resolve() == shipped_model().resolve():
        raise BundleError(
            "the shipped model's card is the release's record of its checks (and of the ceilings that "
            "--ceiling-from carries): check a copy of the bundle (cp -r), or give --dry-run"
        )


def earlier_check(metrics: Mapping[str, float]) -> tuple[list[str], list[str]]:
    """The domains of the card's earlier domain check and the card entries a new check removes.

    Parameters
    ----------
    metrics
        The card's metrics.

    Returns
    -------
    domains, keys
        Sorted domain names: those with a ``<domain>_set_crc32`` entry, which only domain checks
        write; on a card from before those entries (2026-12-01), those with ``<domain>_auroc`` and
        ``<domain>_n_pos`` other than ``val`` and ``heldout``, where the card has a
        ``max_auroc_drop``. The keys: every ``<domain>_...`` entry of those domains, the maxima,
        and any ceiling, feature-statistics or checksum entry.
    """
    domains = {key.removesuffix(CHECKSUM_KEY) for key in metrics if key.endswith(CHECKSUM_KEY)}
    if not domains and "max_auroc_drop" in metrics:
        counted = {key.removesuffix("_n_pos") for key in metrics if key.endswith("_n_pos")}
        domains = {name for name in counted if f"{name}_auroc" in metrics} - NOT_DOMAINS
    prefixes = tuple(f"{name}_" for name in domains)
    ends = (*CEILING_KEYS, *OOD_CARD_KEYS, CHECKSUM_KEY)
    keys = [key for key in metrics if key in CHECK_MAXIMA or key.startswith(prefixes) or key.endswith(ends)]
    return sorted(domains), keys
