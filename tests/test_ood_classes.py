"""ood_score's feature statistics per class (pipeline.models.feature_fit.fit_gaussians): drawn features."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.features import MIN_CALIBRATION, MIN_CLASS_FIT, FeatureStats, fit_gaussians


def _mixture(rng: np.random.Generator, n: int, lens_share: float = 0.2, dim: int = 8, spread: float = 2.0):
    """Features of two classes: non-lenses (label 0) about the origin, fewer lenses 8 units away and
    ``spread`` times as varied (as the shipped model's spread more widely than its non-lenses)."""
    labels = (rng.random(n) < lens_share).astype(np.int64)
    features = rng.standard_normal((n, dim)) * np.where(labels, spread, 1.0)[:, None]
    features[:, 0] += 8.0 * labels
    return features, labels


def _stats(fields: dict) -> FeatureStats:
    return FeatureStats("f", quantile=0.99, n_fit=0, store="drawn", **fields)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_gaussian_flags_the_minority_class_and_a_gaussian_per_class_does_not(seed):
    # One Gaussian is centred between the classes and puts the clearest lenses farthest out;
    # per class, each class's own threshold keeps about 1 - q of each in-domain class flagged.
    rng = np.random.default_rng(seed)
    fit, fit_labels = _mixture(rng, 20000)
    calibration, calibration_labels = _mixture(rng, 20000)
    new, new_labels = _mixture(rng, 40000)
    rates = {}
    for per_class in (False, True):
        labels = (fit_labels, calibration_labels) if per_class else (None, None)
        stats = _stats(fit_gaussians(fit, calibration, 0.99, *labels))
        assert bool(stats.classes) is per_class
        flagged = stats.squared_distance(new) / stats.threshold > 1
        rates[per_class] = flagged[new_labels == 1].mean(), flagged[new_labels == 0].mean()
        assert 0.005 < flagged.mean() < 0.015  # the q = 0.99 threshold, on objects drawn alike
    lenses, others = rates[False]
    assert lenses > 0.03 and others < 0.002  # 5 % and none
    assert 0.005 < rates[True][0] < 0.025 and 0.005 < rates[True][1] < 0.025  # 1.5 % and 0.8 %


def test_distance_per_class_is_the_least_over_classes_in_units_of_each_threshold():
    rng = np.random.default_rng(3)
    fit, fit_labels = _mixture(rng, 2000, lens_share=0.5, dim=4, spread=1.0)
    calibration, calibration_labels = _mixture(rng, 2000, lens_share=0.5, dim=4, spread=1.0)
    stats = _stats(fit_gaussians(fit, calibration, 0.9, fit_labels, calibration_labels))
    assert stats.classes == (0, 1) and stats.class_means.shape == (2, 4)
    assert stats.class_precisions.shape == (2, 4, 4) and stats.class_thresholds.shape == (2,)
    np.testing.assert_allclose(stats.class_means[1], fit[fit_labels == 1].mean(axis=0))
    points = np.array([[0.0, 0, 0, 0], [8.0, 0, 0, 0], [4.0, 1, 0, 0]])
    each = [
        np.einsum("ij,jk,ik->i", points - m, p, points - m) / t
        for m, p, t in zip(stats.class_means, stats.class_precisions, stats.class_thresholds, strict=True)
    ]
    np.testing.assert_allclose(stats.squared_distance(points), np.minimum(*each))
    for c in (0, 1):  # each class's threshold: the 0.9 quantile of its own calibration objects
        own = stats.squared_distance(calibration[calibration_labels == c])
        assert np.mean(own <= 1.0) >= 0.89
    # the empty gap between the classes is far from both; one Gaussian puts its mean there
    middle = np.array([[4.0, 0, 0, 0]])
    assert stats.squared_distance(middle)[0] > 1.5 * stats.threshold
    one = _stats(fit_gaussians(fit, calibration, 0.9))
    assert one.squared_distance(middle)[0] < 0.2 * one.threshold


def test_one_gaussian_where_labels_are_missing_or_a_class_is_too_small():
    rng = np.random.default_rng(4)
    fit, labels = _mixture(rng, 300, lens_share=0.5)
    calibration, calibration_labels = _mixture(rng, 300, lens_share=0.5)
    unknown = labels.copy()
    unknown[0] = -1  # one unlabelled fit object: no class model
    few = np.zeros_like(labels)
    few[: MIN_CLASS_FIT - 1] = 1
    few_calibration = np.zeros_like(calibration_labels)
    few_calibration[: MIN_CALIBRATION - 1] = 1
    cases = [(None, None), (unknown, calibration_labels), (few, calibration_labels), (labels, None)]
    cases += [(labels, few_calibration), (np.zeros_like(labels), calibration_labels)]
    for fit_labels, cal_labels in cases:
        fields = fit_gaussians(fit, calibration, 0.99, fit_labels, cal_labels)
        assert "class_means" not in fields and "classes" not in fields
        np.testing.assert_allclose(fields["mean"], fit.mean(axis=0))
        distances = _stats(fields).squared_distance(calibration)
        assert fields["threshold"] == pytest.approx(np.quantile(distances, 0.99))
    few[MIN_CLASS_FIT - 1] = 1
    few_calibration[MIN_CALIBRATION - 1] = 1
    assert fit_gaussians(fit, calibration, 0.99, few, few_calibration)["classes"] == (0, 1)
