"""pipeline.training.domain_ood: the domain check's share of objects unlike the training set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.training.domain_ood import ood_card_metrics, ood_summary, ood_table


def test_summary_counts_flagged_objects_and_ranks_the_rest():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, -1, 1])
    scores = np.array([0.9, 0.8, 0.2, 0.95, 0.1, 0.3, 0.99, 0.5, np.nan])
    ood = np.array([0.5, 0.7, 3.0, 0.4, 0.2, 0.9, 4.0, 9.0, 0.1])
    s = ood_summary(labels, scores, ood)
    # the unlabelled and the unscored objects are left out: 7 objects, 2 flagged
    assert s.n_scored == 7
    assert s.unlike_training == pytest.approx(2 / 7)
    assert s.unlike_training_lenses == pytest.approx(1 / 3)
    assert s.unlike_training_nonlenses == pytest.approx(1 / 4)
    # not flagged: lenses 0.9, 0.8 against non-lenses 0.95, 0.1, 0.3 -> 4 of 6 pairs
    assert s.auroc_like_training == pytest.approx(4 / 6)
    assert ood_card_metrics({"shifted": s}) == {
        "shifted_unlike_training": pytest.approx(2 / 7),
        "shifted_auroc_like_training": pytest.approx(4 / 6),
    }
    lines = ood_table({"shifted": s}, {"shifted": 0.5})
    assert "| shifted | 0.286 | 0.333 | 0.250 | 0.500 | 0.667 |" in lines
    assert "than 99.0% of in-domain objects" in lines[1]
    looser = ood_summary(labels, scores, ood, quantile=0.95)
    assert "than 95.0% of in-domain objects" in ood_table({"shifted": looser}, {})[1]


def test_one_class_left_gives_no_auroc_and_no_card_entry():
    s = ood_summary(np.array([1, 0, 0]), np.array([0.9, 0.1, 0.2]), np.array([5.0, 0.1, 0.2]))
    assert s.unlike_training_lenses == 1.0 and math.isnan(s.auroc_like_training)
    assert ood_card_metrics({"d": s}) == {"d_unlike_training": pytest.approx(1 / 3)}
    assert ood_table({}, {}) == []
