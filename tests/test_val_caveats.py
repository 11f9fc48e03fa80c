"""Warnings on what a training run's validation metrics cannot show (pipeline.training.val_caveats)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation.metrics import auroc
from pipeline.training.splits import small_training_warning, small_validation_warning
from pipeline.training.val_caveats import chance_auroc_bound, validation_caveats


def test_the_chance_bound_is_two_null_standard_errors_of_the_auroc():
    """Hanley & McNeil's null variance, against the spread of AUROCs of scores that ignore the labels."""
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(15), np.zeros(25)]
    spread = np.std([auroc(labels, rng.random(labels.size)) for _ in range(3000)])
    assert chance_auroc_bound(15, 25) == pytest.approx(0.5 + 2 * spread, rel=0.01)
    assert chance_auroc_bound(15, 25, sigmas=1) == pytest.approx(0.5 + spread, rel=0.01)


def test_an_auroc_at_chance_is_warned_of_with_its_likely_causes():
    """Trial: --learning-rate 1000 saved a model of val_auroc 0.5156 as a normal success."""
    [sentence] = validation_caveats({"val_auroc": 0.5156, "val_n_pos": 40, "val_n_neg": 40}, 1000.0)
    assert sentence.startswith("The kept epoch's validation AUROC 0.5156 is no better than chance")
    assert "(this run: 1000, default 0.001)" in sentence and "labels" in sentence
    [sentence] = validation_caveats({"val_auroc": 0.2, "val_n_pos": 40, "val_n_neg": 40}, 1e-3)  # below
    assert "(this run: 0.001, the default)" in sentence
    assert validation_caveats({"val_auroc": 0.70, "val_n_pos": 40, "val_n_neg": 40}) == []
    # the same AUROC on fewer objects cannot be told from chance
    assert validation_caveats({"val_auroc": 0.70, "val_n_pos": 12, "val_n_neg": 12})
    assert validation_caveats({"val_theta_e_mse": 1.2e11}) == []  # no score output: nothing to say


def test_fewer_than_ten_non_lenses_make_tpr10_uninformative():
    """Trial: val_tpr10 read 1.0 on 6 validation non-lenses."""
    [sentence] = validation_caveats({"val_auroc": 0.99, "val_n_pos": 40, "val_n_neg": 6})
    assert sentence.startswith("With only 6 validation non-lenses, TPR10 is 1.0 by construction")
    assert validation_caveats({"val_auroc": 0.99, "val_n_pos": 40, "val_n_neg": 10}) == []
    warning = small_validation_warning(np.r_[np.ones(6), np.zeros(6)])
    assert warning is not None and "with 6 non-lenses TPR10 is 1.0 by construction" in warning
    warning = small_validation_warning(np.r_[np.ones(6), np.zeros(12)])  # few lenses, enough non-lenses
    assert warning is not None and "TPR10" not in warning


def test_a_tiny_validation_class_is_named_as_the_cause_and_the_bound_stays_at_most_one():
    """Trial: 1 validation lens and 16 non-lenses: "AUROC 1.0000 is no better than chance ... for 1 lenses
    and 16 non-lenses (up to 1.1124; ...). Likely causes: a learning rate ..."."""
    [sentence] = validation_caveats({"val_auroc": 1.0, "val_n_pos": 1, "val_n_neg": 16}, 1e-3)
    assert "for 1 lens and 16 non-lenses (up to 1.0000;" in sentence, sentence
    assert "With 1 validation lens, no AUROC can be told from chance: give more lenses" in sentence
    assert "learning rate" not in sentence
    assert chance_auroc_bound(1, 16) == 1.0 and chance_auroc_bound(2, 2) == 1.0
    sentence = validation_caveats({"val_auroc": 0.6, "val_n_pos": 30, "val_n_neg": 3})[0]  # then TPR10's
    assert "With 3 validation non-lenses, no AUROC can be told from chance: give more non-lenses" in sentence
    [sentence] = validation_caveats({"val_auroc": 0.52, "val_n_pos": 40, "val_n_neg": 40})  # enough of each
    assert "Likely causes: a learning rate" in sentence


def test_a_training_split_with_few_of_a_class_is_warned_of_up_front():
    """Trial: a store of 2 lenses trained on 1 without a word; only the AUROC after training warned."""
    warning = small_training_warning(np.r_[np.ones(1), np.zeros(63)])
    assert warning is not None and warning.startswith(
        "WARNING: the training set holds 1 lens and 63 non-lenses"
    )
    assert "too few lenses to learn from" in warning
    assert small_training_warning(np.r_[np.ones(10), np.zeros(10)]) is None
