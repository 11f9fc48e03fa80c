"""The domain-shift check: one bundle scored on several labelled stores, the in-domain one and shifted ones.

A lens finder that is excellent on its own simulator and at chance on another one is not a lens
finder. This check scores held-out stores made under instrument and population settings that no
training set used (e.g. 3x the noise, 1.5x the PSF, raw counts instead of fluxes, another
simulator) beside the in-domain held-out store, and reports each domain's AUROC, TPR0 and TPR10
with its drop from the reference, each with its 95% interval (a stratified bootstrap;
:mod:`pipeline.training.domain_intervals`), and whether the largest drop's interval lies below the
project's goal of a drop below 0.05 (:mod:`pipeline.training.domain_verdict`). With ``write`` the
numbers go into the bundle's card as ``<domain>_<metric>`` (the intervals as
``<domain>_<metric>_ci_low`` and ``_ci_high``) plus ``max_auroc_drop`` (``max_auroc_drop_ci_low``,
``_ci_high``).
Where a store's truth catalog has the columns ``kind`` and ``n_pix_source``, the report also says
where a drop comes from (:mod:`pipeline.training.domain_breakdown`): the AUROC against each kind
of non-lens, per bin of arc visibility, and with the lenses reweighted to the reference's
visibility (``<domain>_auroc_matched``, ``max_auroc_drop_matched`` in the card).

A drop mixes two things: the model failing to transfer, and the shifted set being harder for any
model. ``ceilings`` separates them where a model trained on the shifted domain itself exists (on
other objects of it, never on the held-out store): that model's AUROC on the store is what the
domain allows at this data size and architecture, and ``ceiling - auroc`` is the *transfer gap*,
what the checked model loses by never having seen the domain (``<domain>_ceiling_auroc``,
``<domain>_transfer_gap``, ``max_transfer_gap`` in the card; none from a ceiling model that learned
from the store's objects, was trained on that store, or whose lineage cannot be checked). The goal
stays on the plain drop.
A ceiling belongs to the held-out set, so ``carried_ceilings`` takes it from an earlier check's card
of the same set (:mod:`pipeline.training.ceilings`; the card's ``<domain>_set_crc32`` of ids,
labels and pixels must match). A check replaces the card's earlier one as a whole
(:mod:`pipeline.training.domain_card`).

A bundle with feature statistics (:mod:`pipeline.models.features`) also says, per domain, how
many objects it flags UNLIKE_TRAINING and the AUROC of the others
(:mod:`pipeline.training.domain_ood`; ``<domain>_unlike_training``,
``<domain>_auroc_like_training`` in the card).

A bundle with regression outputs (e.g. ``theta_e``) is also measured per domain against the
domain's truth catalog (:mod:`pipeline.training.targets`; for ``theta_e`` on the true lenses
only): ``<domain>_<output>_mse``, ``_bias``, ``_scatter`` (standard deviation of pred - true),
``_nmad``, ``_mse_of_mean`` and, for a Gaussian head, ``_within1`` / ``_within2`` (fractions
within 1 and 2 predicted sigma, the ``<output>_err`` column; 0.683 and 0.954 when calibrated)
(:mod:`pipeline.evaluation.regression`). A domain without a usable truth column is skipped
with a warning.

Command line::

    python -m pipeline.training.domains BUNDLE --domain indomain=STORE --domain noise3x=STORE ... \
        [--reference indomain] [--ceiling noise3x=BUNDLE ...] [--ceiling-from noise3x=CARD ...] [--tta] \
        [--dry-run] [--note TEXT]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import BundleError, LenshuntError
from pipeline.evaluation.metrics import Metrics, evaluate
from pipeline.evaluation.regression import RegressionMetrics
from pipeline.models.bundle import load_bundle
from pipeline.models.card import GOAL_AUROC_DROP, REFERENCE_MARK  # as lenshunt info reads the card
from pipeline.models.features import ood_provenance
from pipeline.models.integrity import check_bundle_fits_store
from pipeline.sources.labels import CatalogFormatError
from pipeline.store.zarr_store import read_attributes
from pipeline.training import domain_intervals as intervals
from pipeline.training.ceilings import (
    CHECKSUM_KEY,
    below_the_model,
    carried_ceiling,
    ceiling_table,
    ceiling_warnings,
    checked_ceiling_arguments,
    trained_on_store,
    untrusted_ceiling,
    without_ceiling_sentences,
)
from pipeline.training.declared import regression_on_store
from pipeline.training.domain_breakdown import (
    DomainBreakdown,
    breakdown_card_metrics,
    breakdown_on_store,
    breakdown_tables,
    match_to_reference,
    truth_columns,
)
from pipeline.training.domain_card import check_card_writable, check_domain_names, earlier_check
from pipeline.training.domain_ood import (
    OOD_COLUMN,
    OodSummary,
    ood_card_metrics,
    ood_summary,
    ood_table,
)
from pipeline.training.domain_verdict import copies_of_reference, verdict
from pipeline.training.heldout import (
    record_metrics,
    score_store_in_process,
    store_checksum,
    store_input_warnings,
)
from pipeline.training.lineage import fine_tuned_from, learned_from_store, member_dirs, seen_objects
from pipeline.training.run import card_metrics
from pipeline.training.targets import TargetError


@dataclass(frozen=True)
class DomainReport:
    """Metrics per domain and each domain's AUROC drop from the reference domain."""

    reference: str
    metrics: dict[str, Metrics]
    warnings: dict[str, list[str]] = field(default_factory=dict)
    """Domain -> inputs far outside the model's training range (:mod:`pipeline.preprocess.range_check`)."""
    regression: dict[str, dict[str, RegressionMetrics]] = field(default_factory=dict)
    """Domain -> regression output -> its metrics against the domain's truth."""
    breakdowns: dict[str, DomainBreakdown] = field(default_factory=dict)
    """Domain -> AUROC per non-lens kind and arc visibility (:mod:`pipeline.training.domain_breakdown`)."""
    ceilings: dict[str, float] = field(default_factory=dict)
    """Domain -> AUROC on its store of a model trained on that domain itself (``ceilings`` argument)."""
    ood: dict[str, OodSummary] = field(default_factory=dict)
    """Domain -> objects unlike the training set, for a bundle with feature statistics
    (:mod:`pipeline.training.domain_ood`)."""
    notes: list[str] = field(default_factory=list)
    """Sentences about the check itself (where a carried ceiling came from), also in the card's notes."""
    checksums: dict[str, int] = field(default_factory=dict)
    """Domain -> :func:`~pipeline.training.heldout.store_checksum` of its store (ids, labels, pixels)."""
    learned: dict[str, float] = field(default_factory=dict)
    """Card entries on the objects the model and ceilings learned from (:mod:`pipeline.training.lineage`)."""
    auroc_draws: dict[str, np.ndarray] = field(default_factory=dict)
    """Domain -> its AUROC on each bootstrap resample, for the 95% intervals of the drops
    (:mod:`pipeline.training.domain_intervals`); empty: a report of point values."""

    def transfer_gap(self, domain: str) -> float:
        """The domain's ceiling AUROC minus this model's (positive: lost by not training on it); NaN
        without a ceiling, or with one that is none (its model learned from the set's objects, was trained
        on its store, or could not be checked: :func:`~pipeline.training.ceilings.untrusted_ceiling`)."""
        auroc = self.metrics[domain].auroc
        ceiling = self.ceilings.get(domain, math.nan)
        return math.nan if auroc is None or untrusted_ceiling(self.learned, domain) else ceiling - auroc

    def auroc_drop(self, domain: str) -> float:
        """Reference AUROC minus the domain's (positive: worse than in-domain); NaN if undefined."""
        ref, other = self.metrics[self.reference].auroc, self.metrics[domain].auroc
        return math.nan if ref is None or other is None else ref - other

    def learned_domains(self) -> list[str]:
        """Shifted domains whose objects or store the model learned from: no held-out AUROC, so not in
        :attr:`max_auroc_drop` (trial: a domain of its own training objects set the largest drop)."""
        taught = {name for name in self.metrics if self.learned.get(f"{name}_learned_objects", 0) > 0}
        taught |= {name for name in self.metrics if f"{name}_trained_on_store" in self.learned}
        return [name for name in self.metrics if name in taught and name != self.reference]

    def held_out_drops(self) -> list[str]:
        """The shifted, held-out domains with an AUROC drop: those :attr:`max_auroc_drop` is over (not
        one holding the reference's own objects: :func:`.domain_verdict.copies_of_reference`)."""
        left = (self.reference, *self.learned_domains(), *copies_of_reference(self))
        return [name for name in self.metrics if name not in left and not math.isnan(self.auroc_drop(name))]

    @property
    def max_auroc_drop(self) -> float:
        """The largest drop over the shifted, held-out domains (NaN with none)."""
        drops = [self.auroc_drop(name) for name in self.held_out_drops()]
        return max(drops) if drops else math.nan

    def card_metrics(self) -> dict[str, float]:
        """Card entries: ``<domain>_auroc``, ``_tpr0``, ..., ``max_auroc_drop``, the 95% intervals
        (``<domain>_auroc_ci_low``, ``_ci_high``, ...), ``<domain>_learned_objects``,
        ``_lineage_unchecked`` and their ``<domain>_ceiling_`` ones (:mod:`pipeline.training.lineage`)."""
        values: dict[str, float] = {}
        for name, metrics in self.metrics.items():
            values.update(card_metrics(metrics, name))
        for name, outputs in self.regression.items():
            for output, metrics in outputs.items():
                values.update(metrics.as_dict(f"{name}_{output}_"))
        values[f"{self.reference}{REFERENCE_MARK}"] = 1.0  # trial: listed by lenshunt info as shifted
        if not math.isnan(self.max_auroc_drop):
            values["max_auroc_drop"] = self.max_auroc_drop
        values.update(
            intervals.card_entries(self.metrics, intervals.max_drop_interval(self, self.held_out_drops()))
        )
        left = [*self.learned_domains(), *copies_of_reference(self)]
        values.update(breakdown_card_metrics(self.breakdowns, self.reference, left))
        values.update(ood_card_metrics(self.ood))
        values.update({f"{name}{CHECKSUM_KEY}": float(value) for name, value in self.checksums.items()})
        values.update(self.learned)
        gaps = []
        for name, ceiling in self.ceilings.items():
            if math.isnan(ceiling):  # the store has one class only: no AUROC, nothing to record
                continue
            values[f"{name}_ceiling_auroc"] = ceiling
            if not math.isnan(self.transfer_gap(name)):
                values[f"{name}_transfer_gap"] = self.transfer_gap(name)
                gaps.append(self.transfer_gap(name))
        if gaps:
            values["max_transfer_gap"] = max(gaps)
        return values

    def table(self) -> str:
        """A Markdown table: domain, objects, lenses, AUROC, drop, TPR0, TPR10, AP (with 95% intervals)."""

        def number(value: float | None, interval: tuple[float, float] | None = None) -> str:
            return "-" if value is None or math.isnan(value) else f"{value:.3f}{intervals.bracket(interval)}"

        lines = [
            "| domain | objects | lenses | AUROC | drop | TPR0 | TPR10 | AP |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, m in self.metrics.items():
            drop = "(reference)"
            if name != self.reference:
                drop = number(self.auroc_drop(name), intervals.drop_interval(self, name))
            auroc = number(m.auroc, intervals.auroc_interval(self, name))
            tpr0, tpr10, ap = (
                number(getattr(m, k), intervals.of(m, k)) for k in ("tpr0", "tpr10", "average_precision")
            )
            lines.append(
                f"| {name} | {m.n_pos + m.n_neg} | {m.n_pos} | {auroc} | {drop} | {tpr0} | {tpr10} | {ap} |"
            )
        if any(m.ci95 for m in self.metrics.values()) or self.auroc_draws:
            lines.append(f"\n[ ]: {intervals.INTERVALS_SAID}")
        outputs = sorted({output for per_domain in self.regression.values() for output in per_domain})
        for output in outputs:
            lines += [
                "",
                f"| domain | {output}: objects | MSE | bias | scatter | NMAD | MSE of the mean | "
                "within 1 sigma | within 2 sigma |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for name, per_domain in self.regression.items():
                if output in per_domain:
                    m = per_domain[output]
                    lines.append(
                        f"| {name} | {m.n} | {number(m.mse)} | {number(m.bias)} | {number(m.scatter)} | "
                        f"{number(m.nmad)} | {number(m.mse_of_mean)} | {number(m.within1)} | "
                        f"{number(m.within2)} |"
                    )
        aurocs = {name: m.auroc for name, m in self.metrics.items()}
        lines += breakdown_tables(self.breakdowns, self.reference, aurocs)
        lines += ood_table(self.ood, aurocs)
        if self.ceilings:
            lines += ceiling_table(self)
        lines.extend(f"\n{sentence}" for sentence in self.notes)
        for name, messages in self.warnings.items():
            lines.extend(f"\nWARNING ({name}): {message}" for message in messages)
        for name, m in self.metrics.items():  # trial: each of these was unsaid
            if m.n_pos + m.n_neg == 0:
                lines.append(
                    f"\nWARNING ({name}): no object of its store has a label: ingest it with its catalog"
                )
            elif m.auroc is None:
                lines.append(f"\nWARNING ({name}): its labelled objects are all of one class: no AUROC")
            if name in copies_of_reference(self):
                lines.append(
                    f"\nWARNING ({name}): the same objects, labels and pixels as the reference "
                    f"{self.reference} (their checksums match): its drop says nothing of a shift, and the "
                    "largest drop is not over it"
                )
        lines.append("\n" + self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        """One line: the largest drop and its 95% interval against the goal, or why there is none
        (:func:`pipeline.training.domain_verdict.verdict`)."""
        return verdict(self, GOAL_AUROC_DROP)


def evaluate_domains(
    bundle_path: str | Path,
    stores: Mapping[str, str | Path],
    *,
    reference: str | None = None,
    tta: bool = False,
    write: bool = False,
    note: str | Sequence[str] | None = None,
    batch_size: int = 256,
    ceilings: Mapping[str, str | Path] | None = None,
    carried_ceilings: Mapping[str, str | Path] | None = None,
) -> DomainReport:
    """Score the bundle on every store (in this process) and compare each domain with the reference.

    Parameters
    ----------
    bundle_path
        A bundle or ensemble bundle.
    stores
        Domain name (``[A-Za-z0-9_]+``) -> labelled store; the first is the reference by default.
    reference
        The in-domain store's name.
    tta
        Average over the 8 dihedral transforms.
    write, note
        Record :meth:`DomainReport.card_metrics` (and the note or notes) in the bundle's card;
        earlier ceilings, transfer gaps and out-of-distribution entries in it are removed.
    ceilings
        Domain name -> a bundle trained on that domain (never on its held-out store), scored on
        the domain's store the same way; its AUROC is the domain's ceiling.
    carried_ceilings
        Domain name -> the card (or bundle) of an earlier check of the same held-out store whose
        ``<domain>_ceiling_auroc`` is carried instead of scoring a ceiling model again
        (:mod:`pipeline.training.ceilings`; a :class:`BundleError` where the store differs).

    Raises
    ------
    ValueError
        When a name is no card key or another's (:mod:`~pipeline.training.domain_card`), the
        reference is not among the stores, or a ceiling names no domain.
    BundleError
        With ``write``, for the shipped model; where a model or store does not fit.
    """
    if not stores:
        raise ValueError("give at least one domain store (NAME=STORE)")
    check_domain_names(stores)
    if write:
        check_card_writable(bundle_path)
    reference = reference or next(iter(stores))
    if reference not in stores:
        raise ValueError(f"reference domain {reference!r} is not among {sorted(stores)}")
    ceilings = dict(ceilings or {})
    carried_cards = checked_ceiling_arguments(stores, ceilings, dict(carried_ceilings or {}), bundle_path)
    bundle = load_bundle(bundle_path)
    ceiling_bundles = {name: load_bundle(path) for name, path in ceilings.items()}
    for name, store in stores.items():  # every store readable and fit for the models, before any scoring
        check_bundle_fits_store(bundle, read_attributes(store))
        if name in ceiling_bundles:
            try:
                check_bundle_fits_store(ceiling_bundles[name], read_attributes(store))
            except LenshuntError as exc:
                raise BundleError(f"the ceiling model for {name!r} ({ceilings[name]}): {exc}") from exc
    metrics, warnings, regression, breakdowns, ood, learned = {}, {}, {}, {}, {}, {}
    labels, scores, truths, checksums, draws = {}, {}, {}, {}, {}
    for name, store in stores.items():
        scored = score_store_in_process(bundle, store, batch_size=batch_size, tta=tta)
        metrics[name] = evaluate(scored.label, scored.score)
        draws[name] = intervals.auroc_draws(scored.label, scored.score)
        checksums[name] = store_checksum(store)
        if OOD_COLUMN in scored.outputs:
            quantile = float(ood_provenance(bundle)["ood_quantile"])
            ood[name] = ood_summary(scored.label, scored.score, scored.outputs[OOD_COLUMN], quantile)
        truths[name], unread = truth_columns(store)
        breakdown = breakdown_on_store(scored.label, scored.score, truths[name])
        if breakdown is not None:
            breakdowns[name], labels[name], scores[name] = breakdown, scored.label, scored.score
        messages = store_input_warnings(bundle, store) + ([unread] if unread else [])
        entries, said = learned_from_store(bundle, store, scored.object_id, name)
        learned |= entries
        messages += [f"the model: {sentence}" for sentence in said]
        try:
            per_output = regression_on_store(bundle, store, scored)
        except (TargetError, CatalogFormatError) as exc:
            per_output = {}
            messages.append(f"regression outputs not measured: {exc}")
        if per_output:
            regression[name] = per_output
        if messages:
            warnings[name] = messages
    match_to_reference(breakdowns, reference, labels, scores, truths)
    ceiling_aurocs = {}
    for name, ceiling_bundle in ceiling_bundles.items():
        try:
            scored = score_store_in_process(ceiling_bundle, stores[name], batch_size=batch_size, tta=tta)
        except (LenshuntError, ValueError) as exc:  # e.g. a recipe whose cutout sizes differ
            raise BundleError(f"the ceiling model for {name!r} ({ceilings[name]}): {exc}") from exc
        auroc = evaluate(scored.label, scored.score, resamples=0).auroc
        ceiling_aurocs[name] = math.nan if auroc is None else auroc
        same_store = trained_on_store(ceiling_bundle, stores[name], fine_tuned_from(ceiling_bundle))
        if same_store:
            learned[f"{name}_ceiling_trained_on_store"] = 1.0
        messages = ceiling_warnings(same_store, ceiling_aurocs[name], metrics[name].auroc)
        entries, said = seen_objects(member_dirs(ceiling_bundle), scored.object_id, f"{name}_ceiling")
        learned |= entries
        messages += [f"the ceiling model: {sentence}" for sentence in said]
        if messages:
            warnings.setdefault(name, []).extend(messages)
    sentences = []
    for name, card in carried_cards.items():
        m = metrics[name]
        ceiling_aurocs[name], said = carried_ceiling(card, name, m.n_pos, m.n_neg, checksums[name])
        sentences += said
        warnings.setdefault(name, []).extend(below_the_model(ceiling_aurocs[name], m.auroc))
    warnings = {name: messages for name, messages in warnings.items() if messages}
    report = DomainReport(
        notes=sentences,
        reference=reference,
        metrics=metrics,
        warnings=warnings,
        regression=regression,
        breakdowns=breakdowns,
        ceilings=ceiling_aurocs,
        ood=ood,
        checksums=checksums,
        learned=learned,
        auroc_draws=draws,
    )
    if write:  # this check replaces the card's earlier one as a whole
        domains, stale = earlier_check(bundle.card.metrics)
        notes = [note] if isinstance(note, str) else list(note or [])
        record_metrics(
            bundle_path, report.card_metrics(), notes + sentences, stale, without_ceiling_sentences
        )
        dropped = [name for name in domains if name not in stores]
        if dropped:  # said in the printed report only: the card keeps no trace of them
            report.notes.append(
                f"This check replaces the card's earlier domain check, whose domains {dropped} it does not "
                "score: their entries were removed from the card."
            )
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.training.domains``: the check from the command line (its options:
    :func:`pipeline.training.domains_cli.build_parser`)."""
    from pipeline.compute.quiet import quiet_tensorflow
    from pipeline.training.domains_cli import build_parser, pairs

    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow()
    stores = pairs(parser, args.domain, "--domain", "STORE")
    ceilings = pairs(parser, args.ceiling, "--ceiling", "BUNDLE")
    carried = pairs(parser, args.ceiling_from, "--ceiling-from", "CARD")
    try:
        report = evaluate_domains(
            args.bundle,
            stores,
            reference=args.reference,
            tta=args.tta,
            write=not args.dry_run,
            note=args.note,
            ceilings=ceilings,
            carried_ceilings=carried,
        )
    except (LenshuntError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
