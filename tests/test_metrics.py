"""Metrics against brute-force references and hand-computed cases, ties included."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from pipeline.evaluation import metrics as m


def brute_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a lens > score of a non-lens) + half P(tie), over all pairs: O(n^2)."""
    wins = 0.0
    positives, negatives = scores[labels == 1], scores[labels == 0]
    for positive in positives:
        for negative in negatives:
            wins += 1.0 if positive > negative else 0.5 if positive == negative else 0.0
    return wins / (positives.size * negatives.size)


def brute_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean over lenses of the precision of selecting every object scored >= that lens: O(n^2)."""
    precisions = []
    for score in scores[labels == 1]:
        selected = scores >= score
        precisions.append(np.sum(selected & (labels == 1)) / np.sum(selected))
    return float(np.mean(precisions))


def brute_tpr(labels: np.ndarray, scores: np.ndarray, max_fp: int) -> float:
    """Best TPR over thresholds, each threshold selecting everything scored >= it: O(n^2)."""
    best = 0.0
    for threshold in np.unique(scores):
        selected = scores >= threshold
        if np.sum(selected & (labels == 0)) <= max_fp:
            best = max(best, np.sum(selected & (labels == 1)) / np.sum(labels == 1))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [1, 2, 8])
def test_matches_brute_force_with_and_without_ties(seed: int, decimals: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 120))
    labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
    labels[:2] = [0, 1]
    scores = np.round(np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1), decimals)
    assert m.auroc(labels, scores) == pytest.approx(brute_auroc(labels, scores), abs=1e-12)
    assert m.average_precision(labels, scores) == pytest.approx(
        brute_average_precision(labels, scores), abs=1e-12
    )
    assert m.tpr0(labels, scores) == pytest.approx(brute_tpr(labels, scores, 0))
    assert m.tpr10(labels, scores) == pytest.approx(brute_tpr(labels, scores, 9))


def test_auroc_hand_cases() -> None:
    assert m.auroc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == 0.75
    assert m.auroc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert m.auroc(np.array([0, 1]), np.array([0.2, 0.1])) == 0.0
    assert math.isnan(m.auroc(np.array([1, 1]), np.array([0.2, 0.1])))


def test_average_precision_hand_case() -> None:
    # ranking: P N P N -> precision 1 at the first lens, 2/3 at the second: AP = (1 + 2/3) / 2
    assert m.average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)
    # a lens tied with a non-lens at the top: precision 1/2 for it
    assert m.average_precision(np.array([1, 0, 1]), np.array([0.9, 0.9, 0.1])) == pytest.approx(
        (0.5 + 2 / 3) / 2
    )
    assert math.isnan(m.average_precision(np.array([0, 0]), np.array([0.1, 0.2])))


@pytest.mark.parametrize(("n_lenses", "n_others"), [(9, 2), (20, 1), (25, 3)])
def test_average_precision_of_a_perfect_ranking_is_1_not_more(n_lenses: int, n_others: int) -> None:
    """Trial: sklearn's sum gave 1.0000000000000002, shown so in the summary, report and metrics.json."""
    from pipeline.evaluation.formats import format_metric

    labels = np.r_[np.ones(n_lenses, dtype=np.int8), np.zeros(n_others, dtype=np.int8)]
    scores = np.r_[np.linspace(1.0, 0.6, n_lenses), np.linspace(0.5, 0.0, n_others)]
    assert m.average_precision(labels, scores) == 1.0
    assert m.evaluate(labels, scores).average_precision == 1.0
    assert format_metric(m.evaluate(labels, scores).average_precision) == "1"


def test_tpr0_hand_cases() -> None:
    labels, scores = np.array([1, 1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    assert m.tpr0(labels, scores) == pytest.approx(2 / 3)
    # the second lens ties with the first non-lens: they are selected together, so only one lens counts
    assert m.tpr0(np.array([1, 1, 0, 1]), np.array([0.9, 0.8, 0.8, 0.7])) == pytest.approx(1 / 3)
    # a non-lens tied with the best lens: nothing is found before the first false positive
    assert m.tpr0(np.array([1, 0, 1]), np.array([0.9, 0.9, 0.5])) == 0.0
    assert m.tpr0(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0


def test_tpr10_counts_fewer_than_ten_false_positives() -> None:
    # lens, 9 non-lenses, lens, non-lens (the 10th), lens
    labels = np.array([1] + [0] * 9 + [1, 0, 1])
    scores = np.linspace(1.0, 0.0, labels.size)
    assert m.tpr10(labels, scores) == pytest.approx(2 / 3)
    # the second lens now ties with the 10th non-lens: selecting it takes 10 false positives
    tied = scores.copy()
    tied[11] = tied[10]
    assert m.tpr10(labels, tied) == pytest.approx(1 / 3)
    assert m.tpr_at_false_positives(labels, scores, 10) == 1.0


def test_roc_curve_shape() -> None:
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.5, 0.5, 0.2, 0.1])
    fpr, tpr, thresholds = m.roc_curve(labels, scores)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1, 1])
    assert thresholds[0] == np.inf
    np.testing.assert_allclose(thresholds[1:], [0.9, 0.5, 0.2, 0.1])
    with pytest.raises(ValueError, match="lenses and non-lenses"):
        m.roc_curve(np.array([1, 1]), np.array([0.3, 0.2]))


def test_precision_recall_curve_and_point() -> None:
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    precision, recall, thresholds = m.precision_recall_curve(labels, scores)
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [0.9, 0.8, 0.7, 0.1])
    assert m.precision_recall_at(labels, scores, 0.75) == (0.5, 0.5)
    assert m.precision_recall_at(labels, scores, 0.7) == (2 / 3, 1.0)
    precision_none, recall_none = m.precision_recall_at(labels, scores, 0.95)
    assert math.isnan(precision_none)
    assert recall_none == 0.0


def test_f_beta() -> None:
    assert m.f_beta(0.5, 1.0) == pytest.approx(2 / 3)
    assert m.f_beta(0.5, 1.0, beta=2.0) == pytest.approx(5 * 0.5 / (4 * 0.5 + 1))
    assert m.f_beta(0.0, 0.0) == 0.0
    assert math.isnan(m.f_beta(math.nan, 1.0))
    with pytest.raises(ValueError, match="beta must be positive"):
        m.f_beta(0.5, 0.5, beta=0)
    for beta in (1e200, math.inf):  # fresh-user trial: scikit-learn's OverflowError squaring 1e200
        with pytest.raises(ValueError, match=r"beta must be positive and at most 1e\+150, got"):
            m.f_beta(0.5, 0.5, beta=beta)
        with pytest.raises(ValueError, match="at most 1e"):
            m.precision_recall_f_at(np.array([1, 0]), np.array([0.9, 0.1]), 0.5, beta=beta)
    assert m.f_beta(0.5, 1.0, beta=1e150) == pytest.approx(1.0)  # recall alone, as beta grows


def test_clean_inputs_are_required() -> None:
    with pytest.raises(ValueError, match="unknown"):
        m.auroc(np.array([1, -1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="finite"):
        m.auroc(np.array([1, 0]), np.array([0.1, np.nan]))


def test_evaluate_leaves_out_and_counts_unknown_and_unscored() -> None:
    labels = np.array([1, 0, 1, 0, -1, -1, 1, 0], dtype=np.int8)
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.99, np.nan, np.nan, np.nan], dtype=np.float32)
    metrics = m.evaluate(labels, scores, threshold=0.75, beta=1.0)
    assert metrics.auroc == 0.75  # AUROC and AP rank the scored objects
    assert metrics.average_precision == pytest.approx(5 / 6)
    # trial: recall, TPR0 and TPR10 said 1 with 2 of 7 lenses unscored; the unscored lens is missed
    assert (metrics.precision, metrics.recall) == (0.5, pytest.approx(1 / 3))
    assert metrics.f_beta == pytest.approx(0.4)
    assert (metrics.tpr0, metrics.tpr10) == (pytest.approx(1 / 3), None)  # 2 non-lenses: TPR10 undefined
    assert (metrics.n_pos, metrics.n_neg, metrics.n_unscored, metrics.n_unlabelled) == (2, 2, 3, 2)
    assert metrics.n_objects == 8
    assert metrics.n_pos_unscored == 1
    assert (
        "1 of 3 lenses was not scored (flagged): recall, F-beta, TPR0 and TPR10 count it as missed; "
        "AUROC and AP rank the scored objects"
    ) in metrics.notes


def test_unscored_lenses_count_as_missed_as_in_the_challenges() -> None:
    """A challenge counts a lens its submission misses as not found: the same metrics as ranking every
    unscored object last (tied), from the catalog's own rows, as an astronomer would compute them."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        labels = rng.integers(0, 2, 40)
        scores = np.round(rng.random(40), 1)  # ties
        scores[rng.random(40) < 0.2] = np.nan
        ranked = np.where(np.isnan(scores), -1.0, scores)  # unscored: last, tied with each other
        metrics = m.evaluate(labels, scores, threshold=0.5)
        lenses = labels == 1
        if not lenses.any() or not (labels == 0).any():
            continue
        assert metrics.recall == pytest.approx(np.mean(ranked[lenses] >= 0.5))
        for name, fp in (("tpr0", 0), ("tpr10", 9)):
            if name == "tpr10" and metrics.n_neg < 10:  # undefined there (1.0 by construction)
                assert metrics.tpr10 is None
                continue
            tied_last = m.tpr_at_false_positives(labels, ranked, fp)
            if np.isnan(scores[labels == 0]).any() or not np.isnan(scores[lenses]).any():
                assert getattr(metrics, name) == pytest.approx(tied_last), name
            else:  # no unscored non-lens: ranked last, the unscored lenses would count as found
                assert getattr(metrics, name) <= tied_last
    only_unscored = m.evaluate(np.array([1, 1, 0, 0]), np.array([np.nan, np.nan, 0.2, 0.7]))
    assert (only_unscored.recall, only_unscored.tpr0, only_unscored.tpr10) == (0.0, 0.0, None)
    assert (
        only_unscored.auroc is None and "no scored lenses: AUROC and AP are undefined" in only_unscored.notes
    )


def test_evaluate_one_class_is_undefined_not_a_crash() -> None:
    only_lenses = m.evaluate(np.array([1, 1, -1]), np.array([0.9, 0.2, 0.5]))
    assert only_lenses.auroc is None
    assert only_lenses.tpr0 is None
    # trial: AP read 1 without a word; 1 whatever the scores there (precision 1 at every threshold)
    assert only_lenses.average_precision is None
    assert math.isnan(m.average_precision(np.ones(20, np.int8), np.linspace(1.0, 0.6, 20)))
    assert any(
        "no scored non-lenses: AUROC, AP, TPR0 and TPR10 are undefined" in note for note in only_lenses.notes
    )
    only_negatives = m.evaluate(np.array([0, 0]), np.array([0.9, 0.2]))
    assert only_negatives.auroc is None
    assert only_negatives.recall is None
    assert only_negatives.precision == 0.0
    nothing = m.evaluate(np.array([-1, -1]), np.array([np.nan, 0.3]))
    assert nothing.n_pos == nothing.n_neg == 0
    assert nothing.precision is None


def test_evaluate_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="labels must be"):
        m.evaluate(np.array([2]), np.array([0.5]))
    with pytest.raises(ValueError, match="finite or NaN"):
        m.evaluate(np.array([1]), np.array([np.inf]))
    with pytest.raises(ValueError, match="one length"):
        m.evaluate(np.array([1, 0]), np.array([0.5]))


def test_write_and_read_metrics(tmp_path) -> None:
    metrics = m.evaluate(np.array([1, 1]), np.array([0.9, 0.2]))
    path = m.write_metrics(metrics, tmp_path / "run" / "metrics.json")
    data = json.loads(path.read_text())
    assert data["auroc"] is None
    assert data["recall"] == 0.5
    assert m.read_metrics(path) == metrics
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize("seed", range(4))
def test_sklearn_f_beta_agrees_with_the_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(80) < 0.3).astype(np.int64)
    scores = np.round(rng.random(80), 1)
    for threshold in (0.0, 0.35, 0.9, 1.0):
        for beta in (0.5, 1.0, 2.0):
            precision, recall, f_score = m.precision_recall_f_at(labels, scores, threshold, beta)
            assert (precision, recall) == pytest.approx(m.precision_recall_at(labels, scores, threshold))
            selected = scores >= threshold
            assert recall == pytest.approx(np.sum(selected & (labels == 1)) / labels.sum())
            assert f_score == pytest.approx(m.f_beta(precision, recall, beta), nan_ok=True)


def test_single_class_and_empty_inputs_stay_undefined_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's UndefinedMetricWarning would fail here
        only_negatives = m.evaluate(np.array([0, 0, 0]), np.array([0.9, 0.2, 0.1]), threshold=0.95)
        assert only_negatives.precision is None and only_negatives.recall is None
        assert only_negatives.f_beta is None and only_negatives.auroc is None
        precision, recall, f_score = m.precision_recall_f_at(np.array([1, 0]), np.array([0.1, 0.2]), 0.15)
        assert (precision, recall) == (0.0, 0.0) and f_score == 0.0
        assert all(math.isnan(v) for v in m.precision_recall_f_at(np.array([]), np.array([]), 0.5))
        with pytest.raises(ValueError, match="at least one lens"):
            m.precision_recall_curve(np.array([0, 0]), np.array([0.1, 0.2]))
        with pytest.raises(ValueError, match="beta must be positive"):
            m.precision_recall_f_at(np.array([1]), np.array([0.5]), 0.5, beta=0)


def test_tpr10_is_undefined_with_fewer_than_ten_non_lenses() -> None:
    """Trial: TPR10 read 1.0 on a validation set of 6 non-lenses, by construction (every threshold
    selects fewer than ten false positives); with ten it is measured again."""
    rng = np.random.default_rng(5)
    labels = np.array([1] * 6 + [0] * 9)
    scores = rng.random(labels.size)
    assert m.tpr10(labels, scores) == 1.0  # the raw rate: by construction
    metrics = m.evaluate(labels, scores)
    assert metrics.tpr10 is None and metrics.tpr0 is not None
    assert any(note.startswith("only 9 scored non-lenses: TPR10 is undefined") for note in metrics.notes)
    labels = np.array([1] * 6 + [0] * 10)
    scores = np.r_[np.full(6, 0.1), np.full(10, 0.9)]  # every non-lens above every lens
    metrics = m.evaluate(labels, scores)
    assert metrics.tpr10 == 0.0 and not any("TPR10 is undefined" in note for note in metrics.notes)
