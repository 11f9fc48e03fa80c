"""The domain check's breakdown: each domain's AUROC per kind of non-lens, per arc visibility, and matched.

A shifted set can score lower because the model fails on it, or because the set is harder: fainter
arcs, or more non-lenses of the kinds every model confuses with lenses. The domain check
(:mod:`pipeline.training.domains`) therefore also reads each store's truth catalog and, where it
has the columns, reports (:mod:`pipeline.evaluation.breakdown`):

- the lenses against each kind of non-lens (column ``kind``);
- the lenses of each bin of arc visibility (column ``n_pix_source``, the challenges' count of
  lensed-source pixels above the 1-sigma noise) against all non-lenses;
- the *visibility-matched* AUROC: the domain's lenses reweighted to the reference domain's
  distribution over those bins, and its drop from the reference. What remains of a drop after
  matching is not explained by fainter arcs.

The goal of the check (``max_auroc_drop`` < 0.05) stays on the plain AUROC; these numbers say where
a drop comes from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluation.bootstrap import percentile_interval
from pipeline.evaluation.breakdown import (
    VISIBILITY_COLUMN,
    VISIBILITY_EDGES,
    auroc_by_bin,
    auroc_by_kind,
    bin_fractions,
    bin_index,
    matched_auroc,
)
from pipeline.evaluation.matched_draws import MatchSet, matched_drop_draws
from pipeline.sources.labels import CatalogFormatError, find_label_catalog, read_label_catalog
from pipeline.store.zarr_store import open_store, read_attributes, store_layout

KIND_COLUMN = "kind"
"""Key of the kind of scene in :func:`truth_columns`' result."""

KIND_COLUMNS = ("sim_kind", "kind")
"""Truth-catalog columns naming each object's kind of scene, first found wins (our simulator writes
``sim_kind``, bench/othersim ``kind``)."""


@dataclass
class DomainBreakdown:
    """One domain's AUROC per kind of non-lens and per visibility bin, and its matched AUROC."""

    kinds: dict[str, tuple[int, float]] = field(default_factory=dict)
    bins: list[tuple[float, float, int, float]] = field(default_factory=list)
    fractions: np.ndarray | None = None
    """Fraction of the domain's binned lenses per visibility bin (None without the column)."""
    matched: float = math.nan
    covered: float = math.nan
    drop_draws: np.ndarray | None = None
    """Bootstrap draws of the matched drop from the reference (:mod:`pipeline.evaluation.matched_draws`);
    None for the reference and where either set has too few lenses or non-lenses."""
    n_unbinned: int = 0
    """Lenses without a usable visibility (blank, not a number, <= the first edge): not in the bins."""


def truth_columns(store: str | Path) -> tuple[dict, str | None]:
    """The store's kind (:data:`KIND_COLUMNS`) and visibility columns that exist, aligned with its rows.

    Keys :data:`KIND_COLUMN` and :data:`~pipeline.evaluation.breakdown.VISIBILITY_COLUMN`; NaN / None
    for a row the catalog lacks. The second value says why nothing could be read from a catalog
    that is there (None when the set simply has no catalog, as real survey data may not).

    Empty when the store's set has no catalog or it cannot be read (the breakdown is then skipped).
    """
    attributes = read_attributes(store)
    layout = store_layout(attributes)
    if layout.catalog is None or attributes.source is None:
        return {}, None
    try:
        path = find_label_catalog(layout, attributes.source)
        if path is None:
            return {}, None
        table = read_label_catalog(layout, path)
    except CatalogFormatError as exc:
        return {}, f"breakdown by kind and arc visibility not measured: {exc}"
    table = table[~table.index.duplicated(keep="first")]
    ids = open_store(store, chunks=None)["object_id"].values
    found = {}
    kind = next((column for column in KIND_COLUMNS if column in table.columns), None)
    if kind is not None:
        found[KIND_COLUMN] = table[kind].reindex(ids).to_numpy()
    if VISIBILITY_COLUMN in table.columns:
        values = pd.to_numeric(table[VISIBILITY_COLUMN], errors="coerce").reindex(ids)
        found[VISIBILITY_COLUMN] = values.to_numpy(dtype=np.float64)
    return found, None


def breakdown_on_store(labels: np.ndarray, scores: np.ndarray, truth: dict) -> DomainBreakdown | None:
    """The per-kind and per-bin AUROCs of one scored store, or None when its catalog has neither column."""
    if KIND_COLUMN not in truth and VISIBILITY_COLUMN not in truth:
        return None
    result = DomainBreakdown()
    if KIND_COLUMN in truth:
        kinds = np.array(
            ["?" if pd.isna(k) or not str(k).strip() else str(k).strip() for k in truth[KIND_COLUMN]]
        )
        result.kinds = auroc_by_kind(labels, scores, kinds)
    if VISIBILITY_COLUMN in truth:
        values = truth[VISIBILITY_COLUMN]
        result.bins = auroc_by_bin(labels, scores, values)
        result.fractions = bin_fractions(labels, values)
        lens = (np.asarray(labels) == 1) & np.isfinite(np.asarray(scores, dtype=np.float64))
        result.n_unbinned = int(np.count_nonzero(lens & (bin_index(values) < 0)))
    return result


def match_to_reference(
    breakdowns: dict[str, DomainBreakdown], reference: str, labels: dict, scores: dict, truth: dict
) -> None:
    """Fill each domain's matched AUROC (lenses reweighted to the reference's visibility bins)."""
    ref = breakdowns.get(reference)
    if ref is None or ref.fractions is None or not ref.fractions.sum():
        return

    def matching(name: str) -> MatchSet:
        return MatchSet(labels[name], scores[name], truth[name][VISIBILITY_COLUMN])

    for name, breakdown in breakdowns.items():
        if breakdown.fractions is None:
            continue
        breakdown.matched, breakdown.covered = matched_auroc(
            labels[name], scores[name], truth[name][VISIBILITY_COLUMN], ref.fractions
        )
        if name != reference:  # one seed: each domain meets the same reference resamples
            breakdown.drop_draws = matched_drop_draws(matching(reference), matching(name))


def breakdown_tables(breakdowns: dict[str, DomainBreakdown], reference: str, aurocs: dict) -> list[str]:
    """Markdown lines: visibility bins with the matched AUROC and drop, then AUROC per non-lens kind."""

    def number(value: float | None) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"

    lines: list[str] = []
    binned = {name: b for name, b in breakdowns.items() if b.bins}
    if binned:
        edges = VISIBILITY_EDGES
        heads = [f"({edges[i]:g}, {edges[i + 1]:g}]" for i in range(len(edges) - 1)]
        lines += [
            "",
            f"AUROC of the lenses in each bin of arc visibility ({VISIBILITY_COLUMN}: lensed-source pixels "
            "above 1 sigma) against all non-lenses; share of the lenses in brackets. Matched: the lenses "
            f"reweighted to {reference}'s shares (what is left of a drop is not from fainter arcs); a "
            "matched drop's 95% interval resamples both sets (pipeline.evaluation.matched_draws).",
            "",
            "| domain | " + " | ".join(heads) + " | matched AUROC | matched drop |",
            "|---|" + "---|" * (len(heads) + 2),
        ]
        if (
            reference not in binned
            or binned[reference].fractions is None
            or not binned[reference].fractions.sum()
        ):
            lines.append(
                f"(No matched AUROC: the reference {reference} has no lens with a usable "
                f"{VISIBILITY_COLUMN}.)"
            )
            lines.append("")
        ref_matched = binned[reference].matched if reference in binned else math.nan
        for name, b in binned.items():
            cells = [
                f"{number(value)} ({share:.2f})" if n else "-"
                for (_, _, n, value), share in zip(b.bins, b.fractions, strict=True)
            ]
            drop = "(reference)" if name == reference else number(ref_matched - b.matched) + _bracket(b)
            cover = "" if math.isnan(b.covered) or b.covered >= 0.999 else f" ({b.covered:.0%} covered)"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {number(b.matched)}{cover} | {drop} |")
        lines += [
            f"({name}: {b.n_unbinned} lenses without a usable {VISIBILITY_COLUMN} left out of the bins.)"
            for name, b in binned.items()
            if b.n_unbinned
        ]
    kinded = {name: b for name, b in breakdowns.items() if b.kinds}
    if kinded:
        title = (
            "AUROC of all lenses against each kind of non-lens (number of those non-lenses; a kind "
            "named lens or weak_lens here is a lens system whose arcs fail the label rule):"
        )
        lines += ["", title, ""]
        lines += ["| domain | AUROC " + ("(all) | by kind |" if aurocs else "by kind |"), "|---|---|---|"]
        for name, b in kinded.items():
            parts = "; ".join(f"{kind} ({n}): {number(value)}" for kind, (n, value) in b.kinds.items())
            lines.append(f"| {name} | {number(aurocs.get(name))} | {parts} |")
    return lines


MATCHED_DROP_KEYS = ("max_auroc_drop_matched_ci_low", "max_auroc_drop_matched_ci_high")
"""The largest matched drop's 95% interval in the card (per draw the largest of the domains' drops)."""


def breakdown_card_metrics(
    breakdowns: dict[str, DomainBreakdown], reference: str, learned: Sequence[str] = ()
) -> dict[str, float]:
    """Card entries ``<domain>_auroc_matched`` and ``max_auroc_drop_matched`` with its 95% interval
    (:data:`MATCHED_DROP_KEYS`; where defined; not over the ``learned`` domains, whose objects the model
    learned from)."""
    values = {
        f"{name}_auroc_matched": b.matched for name, b in breakdowns.items() if not math.isnan(b.matched)
    }
    ref = values.get(f"{reference}_auroc_matched")
    if ref is not None:
        skip = {f"{name}_auroc_matched" for name in (reference, *learned)}
        drops = [ref - value for key, value in values.items() if key not in skip]
        if drops:
            values["max_auroc_drop_matched"] = max(drops)
        keys = set(values) - skip
        draws = [b.drop_draws for name, b in breakdowns.items() if f"{name}_auroc_matched" in keys]
        interval = None
        if draws and all(d is not None for d in draws):  # per draw the largest drop, as for the plain one
            interval = percentile_interval(np.max(np.stack(draws), axis=0))
        if interval is not None:
            values.update(zip(MATCHED_DROP_KEYS, interval, strict=True))
    return values


def _bracket(breakdown: DomainBreakdown) -> str:
    """`` [low, high]``, the matched drop's 95% interval (3 decimals); ``""`` without one."""
    draws = breakdown.drop_draws
    interval = None if draws is None else percentile_interval(draws)
    return "" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]"
