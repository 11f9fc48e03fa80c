"""The matched drop's bootstrap (:mod:`pipeline.evaluation.matched_draws`): each resample's weighted AUROC
is scikit-learn's on the resampled set, and the interval holds the point drop."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation.bootstrap import percentile_interval
from pipeline.evaluation.breakdown import bin_fractions, matched_auroc
from pipeline.evaluation.matched_draws import MatchSet, _Matched, matched_drop_draws


def _set(seed: int, n: int = 400, shift: float = 0.0, faint: float = 0.0) -> MatchSet:
    """Lenses (30%) whose score grows with their arc visibility (``n_pix_source``), non-lenses lower;
    ``shift`` lowers every lens's score, ``faint`` moves visibility to the faint bins."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    values = np.exp(rng.uniform(np.log(25), np.log(3000), n)) * np.exp(-faint * rng.random(n))
    scores = np.where(labels == 1, 0.3 + 0.1 * np.log10(values) - shift, 0.2) + rng.normal(0, 0.15, n)
    return MatchSet(labels, np.round(scores, 2), values)  # rounded: ties among lenses and non-lenses


def test_each_resample_is_scikit_learns_weighted_auroc_of_the_resampled_set():
    data = _set(1)
    order = np.argsort(-data.scores, kind="stable")
    data = MatchSet(data.labels[order], data.scores[order], data.values[order])  # the class's own order
    data = MatchSet(data.labels, data.scores, np.where(data.labels == 1, data.values, np.nan))
    matched = _Matched(data, (20, 50, 100, 200, 500, 1e5))
    lenses, others = np.flatnonzero(data.labels == 1), np.flatnonzero(data.labels == 0)
    rng = np.random.default_rng(3)
    lens_counts, other_counts = rng.integers(0, 3, (6, lenses.size)), rng.integers(0, 3, (6, others.size))
    target = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    ours, shares = matched.of_counts(lens_counts, other_counts, np.tile(target, (6, 1)))
    own, _ = matched.of_counts(lens_counts, other_counts, None)
    for row in range(6):
        counts = np.zeros(data.labels.size, dtype=int)
        counts[lenses], counts[others] = lens_counts[row], other_counts[row]
        labels, scores, values = (np.repeat(a, counts) for a in (data.labels, data.scores, data.values))
        edges = (20, 50, 100, 200, 500, 1e5)
        assert shares[row] == pytest.approx(bin_fractions(labels, values, edges))
        assert ours[row] == pytest.approx(matched_auroc(labels, scores, values, target, edges)[0], abs=1e-12)
        own_shares = bin_fractions(labels, values, edges)
        assert own[row] == pytest.approx(
            matched_auroc(labels, scores, values, own_shares, edges)[0], abs=1e-12
        )


def test_the_drops_interval_holds_its_point_value_and_tells_a_real_drop_from_none():
    reference = _set(1, n=600)
    same, worse = _set(2, n=600, faint=2.0), _set(3, n=600, shift=0.25)
    shares = bin_fractions(reference.labels, reference.values)
    ref_matched = matched_auroc(reference.labels, reference.scores, reference.values, shares)[0]

    def drop(other: MatchSet) -> float:
        return ref_matched - matched_auroc(other.labels, other.scores, other.values, shares)[0]

    for other in (same, worse):
        low, high = percentile_interval(matched_drop_draws(reference, other))
        assert low < drop(other) < high
    assert percentile_interval(matched_drop_draws(reference, same))[0] < 0  # fainter arcs: matched away
    assert percentile_interval(matched_drop_draws(reference, worse))[0] > 0.05  # lower scores: a drop
    again = matched_drop_draws(reference, worse)
    assert np.array_equal(again, matched_drop_draws(reference, worse))  # seeded
    few = MatchSet(reference.labels[:12], reference.scores[:12], reference.values[:12])
    assert matched_drop_draws(reference, few) is None  # fewer than 5 lenses: no interval


def test_the_domain_checks_table_and_card_give_each_matched_drop_its_interval():
    """The largest matched drop (``max_auroc_drop_matched``, 0.109 on the shipped card) had no interval,
    so a reader could not tell it from the sampling noise of 1,000 objects."""
    from pipeline.training.domain_breakdown import (
        MATCHED_DROP_KEYS,
        breakdown_card_metrics,
        breakdown_on_store,
        breakdown_tables,
        match_to_reference,
    )

    sets = {
        "indomain": _set(1, n=600),
        "fainter": _set(2, n=600, faint=2.0),
        "worse": _set(3, n=600, shift=0.25),
    }
    labels = {name: s.labels for name, s in sets.items()}
    scores = {name: s.scores for name, s in sets.items()}
    truth = {name: {"n_pix_source": s.values} for name, s in sets.items()}
    breakdowns = {name: breakdown_on_store(labels[name], scores[name], truth[name]) for name in sets}
    match_to_reference(breakdowns, "indomain", labels, scores, truth)
    assert breakdowns["indomain"].drop_draws is None  # the reference: no drop from itself
    worse = percentile_interval(breakdowns["worse"].drop_draws)
    drop = breakdowns["indomain"].matched - breakdowns["worse"].matched
    text = "\n".join(breakdown_tables(breakdowns, "indomain", {}))
    assert f"| {drop:.3f} [{worse[0]:.3f}, {worse[1]:.3f}] |" in text
    entries = breakdown_card_metrics(breakdowns, "indomain")
    low, high = (entries[key] for key in MATCHED_DROP_KEYS)
    assert entries["max_auroc_drop_matched"] == pytest.approx(drop)
    assert worse[0] <= low < entries["max_auroc_drop_matched"] < high  # per draw the larger of two drops
    learned = breakdown_card_metrics(breakdowns, "indomain", learned=["worse"])  # the model learned from it
    assert learned["max_auroc_drop_matched_ci_high"] < low
