"""The 95% intervals of the metrics (pipeline.evaluation.bootstrap): each resample's metrics are those
``evaluate`` gives on the resampled set, the intervals cover the truth about 95% of the time, a seed
gives the same intervals, and small or odd sets give none (or wide ones) without failing.

Fresh-user trial: no uncertainty was given on any metric; a 600-object set's AUROC 0.9905 had the
interval [0.983, 0.996], the size of the differences between models quoted at three decimals.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from pipeline.evaluation import evaluate, read_metrics, write_metrics
from pipeline.evaluation.bootstrap import (
    INTERVAL_METRICS,
    MIN_PER_CLASS,
    difference_draws,
    metrics_of_counts,
    paired_difference_draws,
    percentile_interval,
    resampled_metrics,
    rough_note,
)


def _normal_set(rng: np.random.Generator, n_pos: int, n_neg: int, separation: float):
    """Lenses scored N(separation, 1), non-lenses N(0, 1): AUROC Phi(separation / sqrt 2)."""
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return labels, np.r_[rng.normal(separation, 1, n_pos), rng.normal(0, 1, n_neg)]


def test_each_resample_has_the_metrics_evaluate_gives_on_it():
    """Unknown labels, unscored lenses and non-lenses, ties, thresholds at and beyond the scores: the
    vectorised sums equal scikit-learn's metrics (through evaluate) on each resampled set."""
    rng = np.random.default_rng(11)
    compared = 0
    for _ in range(120):
        n = int(rng.integers(2, 30))
        labels = rng.choice([-1, 0, 1], n, p=[0.1, 0.6, 0.3])
        scores = np.round(rng.random(n), int(rng.integers(1, 3)))  # one or two decimals: many ties
        scores[rng.random(n) < 0.15] = np.nan
        counts = rng.integers(0, 3, (4, n))
        threshold, beta = float(rng.choice([0.0, 0.3, 0.5, 1.0])), float(rng.choice([0.5, 1.0, 2.0]))
        got = metrics_of_counts(labels, scores, counts, threshold, beta)
        for row, count in enumerate(counts):
            m = evaluate(np.repeat(labels, count), np.repeat(scores, count), threshold, beta, resamples=0)
            for name in INTERVAL_METRICS:
                value = getattr(m, name)
                if value is None:
                    assert math.isnan(got[name][row]), (name, labels, scores, count)
                else:
                    assert got[name][row] == pytest.approx(value, abs=1e-12), (name, labels, scores, count)
                    compared += 1
    assert compared > 1000


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others():
    labels, scores = _normal_set(np.random.default_rng(1), 60, 140, 1.5)
    first = evaluate(labels, scores, seed=7).ci95
    assert first == evaluate(labels, scores, seed=7).ci95
    assert first.auroc != evaluate(labels, scores, seed=8).ci95.auroc
    assert first.resamples == 1000 and first.seed == 7
    again = resampled_metrics(labels, scores, resamples=50, seed=3)
    assert all(
        np.array_equal(again[k], resampled_metrics(labels, scores, resamples=50, seed=3)[k]) for k in again
    )


def test_auroc_and_recall_intervals_cover_the_truth_about_95_percent_of_the_time():
    """Normal scores of known AUROC and recall at 0.5: of 200 sets of 60 lenses and 60 non-lenses, the
    intervals hold the truth in about 95% (a percentile bootstrap of so few runs a little narrow)."""
    separation, threshold = 1.2, 0.5
    true_auroc, true_recall = norm.cdf(separation / math.sqrt(2)), norm.sf(threshold - separation)
    rng = np.random.default_rng(2026)
    covered = {"auroc": 0, "recall": 0}
    trials = 200
    for trial in range(trials):
        labels, scores = _normal_set(rng, 60, 60, separation)
        ci = evaluate(labels, scores, threshold=threshold, resamples=400, seed=trial).ci95
        covered["auroc"] += ci.auroc[0] <= true_auroc <= ci.auroc[1]
        covered["recall"] += ci.recall[0] <= true_recall <= ci.recall[1]
    for name, count in covered.items():
        assert 0.88 <= count / trials <= 0.99, (name, count)


def test_a_drop_between_independent_sets_pairs_their_resamples_at_random():
    """Two sets of one size resampled with one seed draw the same rows: paired as drawn, a set against a
    copy of itself would give a drop of exactly 0 in every draw; paired at random, the drop's interval
    is that of two independent sets (the check compares independent sets), and covers the true drop."""
    rng = np.random.default_rng(5)
    labels, scores = _normal_set(rng, 150, 150, 2.0)
    draws = resampled_metrics(labels, scores)["auroc"]
    low, high = percentile_interval(difference_draws(draws, draws))
    assert low < -0.01 and high > 0.01 and abs(low + high) < 0.01
    true_drop = norm.cdf(2.0 / math.sqrt(2)) - norm.cdf(1.0 / math.sqrt(2))
    covered = 0
    for trial in range(60):
        reference = resampled_metrics(*_normal_set(rng, 150, 150, 2.0), resamples=300)["auroc"]
        shifted = resampled_metrics(*_normal_set(rng, 150, 150, 1.0), resamples=300)["auroc"]
        low, high = percentile_interval(difference_draws(reference, shifted, seed=trial))
        covered += low <= true_drop <= high
    assert covered >= 52  # about 57 of 60 expected


def _rescored(rng: np.random.Generator, latent: np.ndarray, noise: float) -> np.ndarray:
    return latent + rng.normal(0, noise, latent.size)


def test_a_change_between_two_scorings_of_one_set_is_paired_and_covers_the_true_change():
    """A grading round scores the same held-out objects before and after: the change's interval resamples
    the objects once for both (a paired bootstrap). Lenses' latent scores N(2, 1), non-lenses' N(0, 1);
    the scorings add N(0, 1) and N(0, 0.3) noise, so the true AUROCs are Phi(2 / sqrt(2 (1 + s^2))).
    Its interval covers the true change about 95% of the time and is narrower than that of two
    independent sets of this size; objects of unknown label change nothing."""
    true_change = norm.cdf(2 / math.sqrt(2 * 1.09)) - norm.cdf(2 / math.sqrt(4))
    rng = np.random.default_rng(12)
    covered, widths = 0, []
    for trial in range(60):
        labels, latent = _normal_set(rng, 100, 100, 2.0)
        before, after = _rescored(rng, latent, 1.0), _rescored(rng, latent, 0.3)
        low, high = percentile_interval(
            paired_difference_draws(labels, before, after, resamples=400, seed=trial)
        )
        covered += low <= true_change <= high
        independent = [
            resampled_metrics(labels, each, resamples=400, seed=trial)["auroc"] for each in (after, before)
        ]
        unpaired = percentile_interval(difference_draws(*independent, seed=trial))
        widths.append((high - low) / (unpaired[1] - unpaired[0]))
    assert covered >= 52  # about 57 of 60 expected
    assert np.median(widths) < 0.9  # the pairing removes the objects' shared easiness
    labels, latent = _normal_set(rng, 40, 60, 1.0)
    before, after = _rescored(rng, latent, 1.0), _rescored(rng, latent, 0.3)
    draws = paired_difference_draws(labels, before, after, seed=3)
    unknown = np.r_[labels, np.full(30, -1)], np.r_[before, rng.random(30)], np.r_[after, rng.random(30)]
    assert np.array_equal(paired_difference_draws(*unknown, seed=3), draws)
    assert paired_difference_draws(labels[36:], before[36:], after[36:]).size == 0  # 4 lenses: none
    with pytest.raises(ValueError, match="'rank' is not one of"):
        paired_difference_draws(labels, before, after, metric="rank")


def test_small_one_class_tied_and_unscored_sets_give_no_interval_or_a_wide_one_never_an_error():
    lenses_only = evaluate(np.ones(50, int), np.linspace(0, 1, 50))
    assert lenses_only.ci95 is not None and lenses_only.ci95.recall is None and lenses_only.auroc is None
    assert any(note.startswith("no 95% intervals: no labelled non-lenses") for note in lenses_only.notes)
    few = evaluate(np.r_[np.ones(MIN_PER_CLASS - 1, int), np.zeros(40, int)], np.linspace(1, 0, 44))
    assert few.auroc == 1.0 and few.ci95.auroc is None
    assert "no 95% intervals: only 4 labelled lenses (a bootstrap needs at least 5 lenses" in few.notes[-1]
    rough = evaluate(
        np.r_[np.ones(6, int), np.zeros(40, int)], np.r_[np.linspace(0.9, 0.3, 6), np.linspace(0.8, 0, 40)]
    )
    low, high = rough.ci95.auroc
    assert low < rough.auroc <= high and high - low > 0.1  # wide, and said to be rough
    assert any(note.startswith("only 6 labelled lenses: the 95% intervals are rough") for note in rough.notes)
    tied = evaluate(np.r_[np.ones(30, int), np.zeros(30, int)], np.full(60, 0.7))
    assert tied.auroc == 0.5 and tied.ci95.auroc == (0.5, 0.5) and tied.ci95.tpr0 == (0.0, 0.0)
    apart = evaluate(np.r_[np.ones(30, int), np.zeros(30, int)], np.r_[np.full(30, 0.9), np.full(30, 0.1)])
    assert apart.auroc == 1.0 and apart.ci95.auroc == (1.0, 1.0)  # a bootstrap cannot show less: said
    assert (
        "the 95% intervals of auroc, average_precision, precision, recall, f_beta, tpr0, tpr10 have no "
        in (apart.notes[-1])
    )
    unscored = np.r_[np.linspace(0.2, 1, 30), np.linspace(0, 0.8, 30)]
    unscored[:25] = np.nan  # most lenses unscored: missed by recall and TPR0, left out of AUROC
    labels = np.r_[np.ones(30, int), np.zeros(30, int)]
    m = evaluate(labels, unscored)
    assert m.recall < 0.2 and m.ci95.recall[1] < 0.4 and m.ci95.auroc is not None
    nothing = evaluate(np.r_[labels, -1, -1], np.r_[np.full(60, np.nan), 0.5, 0.6])
    assert nothing.ci95.auroc is None and nothing.recall == 0.0 and nothing.ci95.recall == (0.0, 0.0)
    assert evaluate(labels, unscored, resamples=0).ci95 is None


def test_metrics_json_keeps_its_keys_and_adds_the_intervals(tmp_path):
    labels, scores = _normal_set(np.random.default_rng(3), 100, 500, 2.0)
    metrics = evaluate(labels, scores)
    path = write_metrics(metrics, tmp_path / "metrics.json")
    saved = json.loads(path.read_text())
    assert saved["auroc"] == metrics.auroc and saved["tpr0"] == metrics.tpr0  # the old keys, unchanged
    ci95 = saved["ci95"]
    assert set(INTERVAL_METRICS) <= set(ci95)
    assert ci95["resamples"] == 1000 and ci95["seed"] == 0 and ci95["level"] == 0.95
    assert "Efron & Tibshirani 1993" in ci95["method"]
    for name in INTERVAL_METRICS:
        low, high = ci95[name]
        assert 0 <= low <= saved[name] <= high <= 1, name
    assert read_metrics(path) == metrics
    del saved["ci95"]  # a metrics.json written before the intervals existed still reads
    (tmp_path / "old.json").write_text(json.dumps(saved))
    assert read_metrics(tmp_path / "old.json").ci95 is None


def test_the_interval_notes_say_one_lens_in_the_singular():
    """Fresh-user trial: "only 1 labelled lenses" (a plural for 1)."""
    one = evaluate(np.r_[1, np.zeros(40, int)], np.linspace(1, 0, 41))
    assert "no 95% intervals: only 1 labelled lens (a bootstrap needs at least 5 lenses" in one.notes[-1]
    assert rough_note(1, 1).startswith("no 95% intervals: only 1 labelled lens and 1 labelled non-lens (")
    assert rough_note(12, 1).startswith("no 95% intervals: only 12 labelled lenses and 1 labelled non-lens (")
