"""User trial of ``lenshunt train``'s cards: the training store's checksum is an integer field, not a
metric; counts print as integers; an ensemble's card records its members' validation; a fine-tune's
card says what it trained; a validation too small for a fine-tune says how to keep a trained epoch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.models import ModelCard, load_bundle
from pipeline.models.ensemble import save_ensemble
from pipeline.paths import shipped_model
from pipeline.training.ceilings import TRAINING_STORE_KEY


def _card(**fields) -> ModelCard:
    return ModelCard(model_id="m", architecture="small_cnn", training_store="s.zarr", epochs=1, **fields)


def test_the_training_store_checksum_is_an_integer_field_and_older_cards_still_read():
    from pipeline.training.ceilings import recorded_checksum

    card = _card(metrics={"val_auroc": 0.9}, training_store_crc32=1794981705)
    written = json.loads(card.card_json())
    assert written[TRAINING_STORE_KEY] == 1794981705 and isinstance(written[TRAINING_STORE_KEY], int)
    assert TRAINING_STORE_KEY not in written["metrics"]
    older = json.loads(card.card_json())
    older["metrics"][older.pop(TRAINING_STORE_KEY) and TRAINING_STORE_KEY] = 1794981705.0
    read = ModelCard.model_validate(older)  # a card of before: in the metrics, a float
    assert read.training_store_crc32 == 1794981705 and isinstance(read.training_store_crc32, int)
    assert TRAINING_STORE_KEY not in read.metrics and read.metrics == {"val_auroc": 0.9}
    assert recorded_checksum(older) == recorded_checksum(written) == recorded_checksum(read) == 1794981705
    assert TRAINING_STORE_KEY not in json.loads(_card().card_json())  # unrecorded: left out, as before
    shipped = load_bundle(shipped_model()).card
    assert shipped.training_store_crc32 == 3607646853 and TRAINING_STORE_KEY not in shipped.metrics


def test_counts_and_set_checksums_of_a_card_are_integers_and_older_cards_read_so():
    """Session-45 gap: a domain check wrote ``othersim_set_crc32 2453646449.0`` and counts as floats."""
    floats = {"val_auroc": 0.9, "val_n_pos": 22.0, "othersim_set_crc32": 2453646449.0}
    floats |= {"othersim_learned_objects": 0.0, "othersim_ceiling_auroc": 1.0, "max_auroc_drop": 0.1}
    card = ModelCard.model_validate_json(_card(metrics=floats).card_json())
    written = json.loads(card.card_json())["metrics"]
    integers = {"val_n_pos": 22, "othersim_set_crc32": 2453646449, "othersim_learned_objects": 0}
    assert written == floats | integers
    assert [type(written[name]) for name in written] == [float, int, int, int, float, float]
    assert '"othersim_set_crc32": 2453646449,' in card.card_json()
    shipped = load_bundle(shipped_model()).card.metrics  # its card.json holds floats: read as integers
    assert shipped["othersim_set_crc32"] == 2453646449 and isinstance(shipped["othersim_set_crc32"], int)
    assert isinstance(shipped["thirdsim_n_pos"], int) and isinstance(shipped["thirdsim_auroc"], float)
    assert _card(metrics={"odd_n_pos": 2.5}).metrics["odd_n_pos"] == 2.5  # not integral: left as it is


def test_the_training_summary_prints_counts_as_integers():
    from pipeline.training.run import TrainResult

    metrics = {"val_auroc": 0.91234, "val_n_pos": 22.0, "val_n_neg": 38.0, "val_n_unscored": 0.0}
    result = TrainResult("b", "m", metrics, 3, 1, False, 60, 60, 100.0, 5.0)
    line = result.summary().splitlines()[-1]
    assert line == "  validation: val_auroc 0.9123  val_n_pos 22  val_n_neg 38  val_n_unscored 0"


def test_an_ensemble_card_records_each_member_s_validation_per_member(tmp_path):
    members = []
    for fold, auroc in enumerate((0.8, 0.9)):
        member = tmp_path / "ens" / f"fold-{fold}"
        shutil.copytree(shipped_model(), member)
        card = json.loads((member / "card.json").read_text())
        card["metrics"] = {"val_auroc": auroc, "val_n_pos": 5.0, "heldout_auroc": 0.5}
        card["metrics"][TRAINING_STORE_KEY] = 7.0  # an older card's entry, and no field of its own
        card.pop(TRAINING_STORE_KEY, None)
        (member / "card.json").write_text(json.dumps(card))
        members.append(member)
    ensemble = save_ensemble(tmp_path / "ens", members)
    assert ensemble.card.metrics == {
        "member_fold-0_val_auroc": 0.8,
        "member_fold-0_val_n_pos": 5.0,
        "member_fold-1_val_auroc": 0.9,
        "member_fold-1_val_n_pos": 5.0,
    }
    assert "the metrics are per member" in ensemble.card.notes
    assert ensemble.card.training_store_crc32 == 7
    given = save_ensemble(tmp_path / "ens", members, metrics={"heldout_auroc": 0.7})
    assert given.card.metrics == {"heldout_auroc": 0.7} and "per member" not in given.card.notes
    from pipeline.training.domain_card import check_domain_names

    with pytest.raises(ValueError, match="would write or remove"):
        check_domain_names(["member"])  # a domain check would remove the members' entries


def test_a_fine_tune_card_records_the_layers_trained_and_batchnorm_frozen():
    from pipeline.training.card_entries import fine_tune_note
    from pipeline.training.finetune import init_model

    lines = []
    _, _, account = init_model(shipped_model(), None, lines.append, trained=["score"])
    assert account["batchnorm_frozen"] is True and account["init"] == str(shipped_model())
    assert account["n_trained_layers"] == account["n_weighted_layers"] == len(account["trained_layers"])
    assert 0 < account["trained_weights"] < account["total_weights"]
    note = fine_tune_note(account)
    assert note.startswith(f"training all {account['n_weighted_layers']} weighted layers")
    assert f"({account['trained_weights']} of {account['total_weights']} weights), BatchNorm frozen" in note
    assert note in lines[0]  # the log says what the card says
    _, _, last = init_model(shipped_model(), 1, lines.append, trained=["score"])
    assert last["trained_layers"] == ["score"] and last["n_trained_layers"] == 1
    assert fine_tune_note(last).startswith(f"training the last 1 of {last['n_weighted_layers']} weighted")
    card = _card(fine_tune=account)
    assert ModelCard.model_validate_json(card.card_json()).fine_tune == account
    assert "fine_tune" not in json.loads(_card().card_json())


def test_a_fine_tune_card_s_notes_say_what_it_trained():
    from pipeline.preprocess.recipe import Recipe
    from pipeline.training.card_entries import card_notes
    from pipeline.training.config import TrainConfig
    from pipeline.training.splits import Split

    recipe = Recipe.model_validate_json((shipped_model() / "recipe.json").read_text())
    account = {"n_trained_layers": 5, "n_weighted_layers": 5, "trained_weights": 61121}
    account |= {"total_weights": 123715, "batchnorm_frozen": True}
    split = Split(np.arange(4), np.arange(4, 8), 8, 0, 0, "random")
    config = TrainConfig(init=str(shipped_model()))
    notes = card_notes(config, split, recipe, 0, False, 10.0, np.zeros(8), fine_tune=account)
    trained = "training all 5 weighted layers the trained outputs depend on"
    assert f"({trained} (61121 of 123715 weights), BatchNorm frozen)" in notes


def test_a_small_validation_of_a_fine_tune_that_keeps_its_start_says_how_to_keep_a_trained_epoch():
    from pipeline.training.run import TrainResult
    from pipeline.training.splits import small_validation_warning

    labels = np.array([1] * 3 + [0] * 22)
    assert "--no-keep-start" not in small_validation_warning(labels)
    warning = small_validation_warning(labels, keeps_start=True)
    assert "too coarse" in warning and "--no-keep-start keeps the best trained epoch instead" in warning
    kept = TrainResult("b", "m", {}, 3, -1, False, 60, 60, 100.0, 5.0, kept_start=True)
    assert "best epoch 0 (the starting weights): no trained epoch beat them" in kept.summary()
    assert "(--no-keep-start keeps the best trained epoch instead)" in kept.summary()
