"""Which entries of a model card a new domain-shift check replaces.

A domain check (:mod:`pipeline.training.domains`) writes ``<domain>_...`` entries for each domain
it scores and the largest drop and transfer gap over them (``max_auroc_drop``,
``max_transfer_gap``). A later check replaces the earlier one as a whole: entries of domains it
does not score would otherwise stay beside maxima computed without them (a check of two domains
left the shipped card's ``othersim_auroc`` 0.824 beside a ``max_auroc_drop`` of 0.001), and
entries it measures anew (ceilings, feature statistics) would contradict it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.training.ceilings import CEILING_KEYS, CHECKSUM_KEY
from pipeline.training.domain_ood import OOD_CARD_KEYS

CHECK_MAXIMA = ("max_auroc_drop", "max_transfer_gap")
"""Card entries over all of a check's domains."""

NOT_DOMAINS = frozenset({"val", "heldout"})
"""Prefixes of entries that training (``val_``) and ``evaluate_on_store`` (``heldout_``) write."""


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
