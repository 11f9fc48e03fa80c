"""The AUROC breakdown (pipeline.evaluation.breakdown) against hand-computed values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.evaluation.breakdown import (
    VISIBILITY_EDGES,
    auroc_by_bin,
    auroc_by_kind,
    bin_fractions,
    bin_index,
    matched_auroc,
)


def test_auroc_by_kind_pits_all_lenses_against_each_kind():
    labels = np.array([1, 1, 0, 0, 0, 0, -1, 1])
    scores = np.array([0.9, 0.4, 0.5, 0.1, 0.2, 0.3, 0.99, np.nan])  # unknown label, NaN score: left out
    kinds = np.array(["lens", "lens", "elliptical", "spiral", "spiral", "elliptical", "ring", "lens"])
    result = auroc_by_kind(labels, scores, kinds)
    assert list(result) == ["elliptical", "spiral"]
    # ellipticals 0.5, 0.3 against lenses 0.9, 0.4: pairs won 2 + 1 of 4
    assert result["elliptical"] == (2, pytest.approx(0.75))
    assert result["spiral"] == (2, pytest.approx(1.0))


def test_bins_are_left_open_right_closed_from_the_label_rule_up():
    assert bin_index(np.array([20, 20.5, 50, 50.5, 500, 501, np.nan, -3])).tolist() == [
        -1,
        0,
        0,
        1,
        3,
        4,
        -1,
        -1,
    ]
    labels = np.array([1, 1, 1, 1, 0, 0])
    values = np.array([30, 40, 300, np.nan, 0, 0])
    np.testing.assert_allclose(bin_fractions(labels, values), [2 / 3, 0, 0, 1 / 3, 0])


def test_auroc_by_bin_counts_each_bins_lenses_against_every_non_lens():
    labels = np.array([1, 1, 1, 0, 0, 0])
    scores = np.array([0.3, 0.35, 0.9, 0.1, 0.4, 0.2])
    values = np.array([30, 40, 300, 0, 0, 0])
    rows = auroc_by_bin(labels, scores, values)
    assert len(rows) == len(VISIBILITY_EDGES) - 1
    assert rows[0][:3] == (20.0, 50.0, 2)
    assert rows[0][3] == pytest.approx(4 / 6)  # 0.3 and 0.35 each beat 0.1 and 0.2, lose to 0.4
    assert rows[3] == (200.0, 500.0, 1, pytest.approx(1.0))
    assert rows[1][2] == 0 and math.isnan(rows[1][3])


def test_matched_auroc_equals_duplicating_the_lenses_and_undoes_a_visibility_shift():
    rng = np.random.default_rng(0)
    negatives = rng.uniform(0.0, 0.7, 300)
    faint, bright = rng.uniform(0.2, 0.8, 100), rng.uniform(0.5, 1.0, 100)

    def domain(n_faint, n_bright):
        scores = np.concatenate([negatives, faint[:n_faint], bright[:n_bright]])
        labels = np.r_[np.zeros(300), np.ones(n_faint + n_bright)].astype(int)
        values = np.r_[np.zeros(300), np.full(n_faint, 30.0), np.full(n_bright, 300.0)]
        return labels, scores, values

    reference = domain(20, 80)  # mostly bright arcs
    shifted = domain(80, 20)  # mostly faint: same model, same per-bin behaviour, lower AUROC
    plain = roc_auc_score(shifted[0], shifted[1])
    assert plain < roc_auc_score(reference[0], reference[1]) - 0.05
    fractions = bin_fractions(reference[0], reference[2])
    matched, covered = matched_auroc(*shifted, fractions)
    assert covered == 1.0
    # weights 0.25 per faint lens and 4 per bright one, i.e. 1 : 16; the same as repeating each
    # faint lens once and each bright lens 16 times
    lens = shifted[0] == 1
    repeats = np.where(lens & (shifted[2] < 100), 1, np.where(lens, 16, 1))
    expected = roc_auc_score(np.repeat(shifted[0], repeats), np.repeat(shifted[1], repeats))
    assert matched == pytest.approx(expected, rel=1e-12)
    # and it brings the faint-heavy set back near the reference's AUROC (same per-bin scores)
    assert abs(matched - roc_auc_score(reference[0], reference[1])) < 0.03 < abs(plain - matched)


def test_matched_auroc_reports_the_reference_mass_it_cannot_cover():
    labels = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.1, 0.2])
    values = np.array([30.0, 40.0, 0, 0])  # only the faintest bin has lenses here
    matched, covered = matched_auroc(labels, scores, values, np.array([0.25, 0, 0, 0.75, 0]))
    assert matched == pytest.approx(1.0) and covered == pytest.approx(0.25)
    matched, covered = matched_auroc(labels, scores, values, np.array([0, 0, 0, 1.0, 0]))
    assert math.isnan(matched) and covered == 0.0
    with pytest.raises(ValueError, match="aligned 1-D"):
        matched_auroc(labels, scores[:3], values, np.ones(5) / 5)


def test_domain_breakdown_names_blank_kinds_and_counts_lenses_it_cannot_bin():
    from pipeline.training.domain_breakdown import breakdown_on_store, breakdown_tables, match_to_reference

    labels = np.array([1, 1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.75])
    truth = {
        "kind": np.array(["lens", "lens", "lens", "elliptical", None, np.nan], dtype=object),
        "n_pix_source": np.array([30.0, np.nan, -4.0, 0, 0, 0]),
    }
    result = breakdown_on_store(labels, scores, truth)
    assert set(result.kinds) == {"elliptical", "?"} and result.kinds["?"][0] == 2
    assert result.n_unbinned == 2 and result.bins[0][2] == 1
    no_visibility = breakdown_on_store(labels, scores, {"kind": truth["kind"]})
    breakdowns = {"ref": no_visibility, "other": result}
    match_to_reference(breakdowns, "ref", {"other": labels}, {"other": scores}, {"other": truth})
    assert math.isnan(result.matched)  # the reference has no visibility column to match to
    text = "\n".join(breakdown_tables(breakdowns, "ref", {"ref": 0.9, "other": 0.9}))
    assert "No matched AUROC: the reference ref has no lens with a usable n_pix_source" in text
    assert "other: 2 lenses without a usable n_pix_source left out of the bins" in text
    assert breakdown_on_store(labels, scores, {}) is None
