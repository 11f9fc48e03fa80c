"""Ceilings carried from an earlier domain check's card (pure functions; the end-to-end check is in
test_adaptation)."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import BundleError
from pipeline.training.ceilings import (
    below_the_model,
    carried_ceiling,
    read_card_metrics,
    without_ceiling_sentences,
)

MADE = (
    "Ceiling on othersim: the same architecture and options, without the asymmetry channels "
    "(scripts/train_ceiling_model.sh passes --no-asymmetry), trained on 16000 other objects of that "
    "simulator (13600 training, 2400 validation; scripts/train_ceiling_model.sh)."
)
NOTES = (
    f"Domain check: 1000 objects per domain. {MADE} Ceiling on thirdsim: trained on 8000 objects (e.g. "
    "Foo's). Trained by lenshunt."
)
METRICS = {"othersim_ceiling_auroc": 0.8621, "othersim_n_pos": 362.0, "othersim_n_neg": 638.0}


def test_the_carried_ceiling_says_where_it_came_from_and_how_its_model_was_made():
    checked = {**METRICS, "othersim_set_crc32": 12345.0}  # a card with the set's checksum
    value, sentences = carried_ceiling((checked, "model-7", NOTES), "othersim", 362, 638, 12345)
    assert value == 0.8621
    assert sentences == [
        "Ceiling on othersim: 0.8621, carried from the domain check of model-7 on the same held-out set "
        "(362 lenses, 638 non-lenses); its ceiling model was not scored again (its description below was "
        "written for model-7's check).",
        MADE,
    ]
    _, counted = carried_ceiling((METRICS, "model-7", NOTES), "othersim", 362, 638, 12345)  # none there
    assert "(362 lenses, 638 non-lenses; counts checked, not the objects)" in counted[0]
    with pytest.raises(BundleError, match="other objects, labels or pixels"):
        carried_ceiling((checked, "model-7", NOTES), "othersim", 362, 638, 54321)
    # carried again from the card that carried it: one "carried" sentence, the model's description kept
    again = (METRICS, "model-8", " ".join(["Earlier.", *sentences]))
    _, chained = carried_ceiling(again, "othersim", 362, 638)  # no checksum here: counts only
    assert chained == [chained[0], MADE] and "model-8" in chained[0]
    # review: "the same recipe" in the description is the model's whose check trained the ceiling,
    # not the one that carried it
    assert chained[0].endswith("(its description below was written for model-7's check).")
    # and carried a third time, from the card that carried it again (the shipped card's own notes named
    # the second model after the script rechecked it, 2026-12-02)
    third = (METRICS, "model-9", " ".join(["Earlier.", *chained]))
    _, thrice = carried_ceiling(third, "othersim", 362, 638)
    assert thrice == [thrice[0], MADE] and "domain check of model-9 " in thrice[0]
    assert thrice[0].endswith("(its description below was written for model-7's check).")


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({**METRICS, "othersim_n_pos": 361}, "measured on 361 lenses and 638 non-lenses, this store has 362"),
        ({**METRICS, "othersim_n_neg": None}, "and unknown non-lenses, .* another store"),
        (
            {k: v for k, v in METRICS.items() if "ceiling" not in k},
            r"records no ceiling AUROC in \[0, 1\] for 'othersim'",
        ),
        ({**METRICS, "othersim_ceiling_auroc": float("nan")}, "records no ceiling"),
        ({**METRICS, "othersim_ceiling_auroc": True}, "records no ceiling"),
        ({**METRICS, "othersim_ceiling_auroc": 5.0}, "records no ceiling AUROC in .* 5.0"),
        ({**METRICS, "othersim_ceiling_auroc": "0.9"}, "records no ceiling AUROC in .* '0.9'"),
    ],
)
def test_a_ceiling_of_another_store_or_none_is_refused(metrics, message):
    with pytest.raises(BundleError, match=message):
        carried_ceiling((metrics, "model-7", ""), "othersim", 362, 638)


def test_cards_are_read_from_a_bundle_or_a_file_and_bad_ones_refused(tmp_path):
    (tmp_path / "card.json").write_text(json.dumps({"model_id": "m", "metrics": METRICS, "notes": NOTES}))
    assert read_card_metrics(tmp_path) == read_card_metrics(tmp_path / "card.json") == (METRICS, "m", NOTES)
    (tmp_path / "bad.json").write_text(json.dumps({"metrics": [1]}))
    with pytest.raises(BundleError, match="metrics are not a mapping"):
        read_card_metrics(tmp_path / "bad.json")
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(BundleError, match="not a readable model card"):
        read_card_metrics(tmp_path / "text.json")


def test_a_ceiling_below_the_model_is_no_ceiling():
    assert below_the_model(0.8, 0.9) and not below_the_model(0.9, 0.8) and not below_the_model(0.8, None)


def test_ceiling_sentences_end_at_their_full_stop_not_at_an_abbreviation():
    third = {"thirdsim_ceiling_auroc": 0.8, "thirdsim_n_pos": 360, "thirdsim_n_neg": 640}
    _, sentences = carried_ceiling((third, "m", NOTES), "thirdsim", 360, 640)
    assert sentences[1] == "Ceiling on thirdsim: trained on 8000 objects (e.g. Foo's)."
    assert without_ceiling_sentences(NOTES) == "Domain check: 1000 objects per domain. Trained by lenshunt."


def test_an_ensemble_s_card_is_read_from_its_ensemble_json(tmp_path):
    (tmp_path / "ensemble.json").write_text(
        json.dumps({"members": [], "card": {"model_id": "e", "metrics": METRICS}})
    )
    assert read_card_metrics(tmp_path) == read_card_metrics(tmp_path / "ensemble.json") == (METRICS, "e", "")
