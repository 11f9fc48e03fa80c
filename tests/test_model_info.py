"""``lenshunt info`` of a model bundle or ensemble: what the card and recipe say, without Keras.

Fresh-user trial: ``lenshunt info BUNDLE`` said "is not a Zarr v3 store (no zarr.json)".
"""

from __future__ import annotations

import shutil

from flows.cli import main
from pipeline import paths
from pipeline.models import load_bundle, save_ensemble


def _info(capsys, path) -> list[str]:
    assert main(["info", str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def test_info_of_a_bundle_names_its_id_layout_bands_outputs_recipe_and_metrics(capsys):
    shipped = paths.shipped_model()
    card = load_bundle(shipped).card
    lines = _info(capsys, shipped)
    assert lines[0] == f"model      {card.model_id}  (bundle at {shipped})"
    text = "\n".join(lines)
    assert "layout     euclid-sglc2" in text
    assert (
        "           vis: VIS  (200x200 pixels)" in lines
        and "           nir: Y, J, H  (66x66 pixels)" in lines
    )
    assert "pixels     VIS 0.1, Y 0.3, J 0.3, H 0.3 arcsec/px" in lines
    assert "outputs    score (probability), theta_e [arcsec] (regression_gaussian); ranked by score" in lines
    assert "recipe     scaling robust_asinh, percentiles 0.1-98, combine upsample, downsample 2" in text
    auroc = card.metrics["val_auroc"]
    validation = next(line for line in lines if line.startswith("validation "))
    assert f"auroc {auroc:.4f}" in validation and "(1017 lenses, 1383 non-lenses)" in validation
    assert "theta_e [arcsec]: scatter " in validation
    shifted = [
        line.split(":")[0].split()[-1]
        for line in lines
        if line.startswith(("shifted", "     ")) and ":" in line
    ]
    assert {"randomised_v3", "othersim", "thirdsim"} <= set(shifted) and "randomised" not in shifted
    assert next(line for line in lines if line.startswith("in-domain")).startswith("in-domain  randomised: ")
    # a ceiling is no domain (trial: "othersim_ceiling: auroc 0.9623" among the shifted domains)
    assert not any(name.endswith("_ceiling") for name in shifted)
    gap = card.metrics["othersim_transfer_gap"]
    ceiling = f"ceiling    othersim: auroc {card.metrics['othersim_ceiling_auroc']:.4f} (a model trained on "
    assert f"{ceiling}othersim itself; transfer gap {gap:.3f})" in lines
    assert f"on {card.training_store}" in text


def test_info_of_an_ensemble_lists_its_members(tmp_path, capsys):
    ensemble = tmp_path / "ens"
    members = [shutil.copytree(paths.shipped_model(), ensemble / name) for name in ("fold-0", "fold-1")]
    save_ensemble(ensemble, members)
    lines = _info(capsys, ensemble)
    assert lines[0].startswith("model      ") and lines[0].endswith(f"(ensemble of 2 members at {ensemble})")
    member_lines = [line for line in lines if line.startswith("member ")]
    assert [line.split()[1] for line in member_lines] == ["fold-0:", "fold-1:"]
    assert all("validation auroc 0.9895" in line for line in member_lines)
    card = load_bundle(paths.shipped_model()).card  # final trial: "1 epochs, seed 0" of two seeds
    assert all(
        f": {card.model_id}, {card.epochs} epochs, seed {card.seed}; validation" in line
        for line in member_lines
    )
    assert "each member's epochs and seed below" in "\n".join(lines)
    [ood] = [line for line in lines if line.startswith("ood_score")]  # final trial: none, scores have it
    assert "the mean of the members' own; fold-0's fitted on 3000 objects of train.zarr (a Gaussian" in ood
    assert "differ" not in ood
    member = _info(capsys, members[1])
    assert f"member of  the ensemble at {ensemble}: score with it for score_std" in member
    assert "layout     euclid-sglc2" in "\n".join(lines)


def test_info_of_an_ensemble_whose_member_lost_its_features_file_describes_the_rest(tmp_path, capsys):
    """Trial: info failed on the whole ensemble ("features.npz is missing") and described no member."""
    ensemble = tmp_path / "ens"
    members = [shutil.copytree(paths.shipped_model(), ensemble / name) for name in ("fold-0", "fold-1")]
    save_ensemble(ensemble, members)
    (members[1] / "features.npz").unlink()
    lines = _info(capsys, ensemble)
    assert lines[0].endswith(f"(ensemble of 2 members at {ensemble})")
    member_lines = [line for line in lines if line.startswith("member ")]
    assert [line.split()[1] for line in member_lines] == ["fold-0:", "fold-1:"]
    assert all("validation auroc 0.9895" in line for line in member_lines)
    [ood] = [line for line in lines if line.startswith("ood_score")]
    assert ood.startswith(
        "ood_score  none: fold-1's features.npz is missing though its card records feature statistics; "
        "no ood_score from fold-1, and without it none from the ensemble (its ood_score is the mean of "
        "every member's); fold-0's fitted on 3000 objects of train.zarr"
    )
    assert (
        "WARNING    lenshunt score refuses this ensemble until fold-1's features.npz is restored, or "
        f"refitted (every member's): python -m pipeline.models.features {ensemble} TRAINING_STORE"
    ) in lines
    single = _info(capsys, members[1])  # the member alone: described, and said of likewise
    assert "ood_score  none: its features.npz is missing though its card records feature statistics" in single
    assert any(line.startswith("WARNING    lenshunt score refuses this bundle") for line in single)


def test_info_of_an_ensemble_with_a_member_never_fitted_says_it_has_no_ood_score(tmp_path, capsys):
    ensemble = tmp_path / "ens"
    members = [shutil.copytree(paths.shipped_model(), ensemble / name) for name in ("fold-0", "fold-1")]
    card = members[0] / "card.json"  # fold-0 as a member stopped before its feature fit
    card.write_text(load_bundle(members[0]).card.model_copy(update={"feature_stats": None}).card_json())
    (members[0] / "features.npz").unlink()
    save_ensemble(ensemble, members)
    lines = _info(capsys, ensemble)
    [ood] = [line for line in lines if line.startswith("ood_score")]
    assert ood.startswith(
        "ood_score  none: fold-0 has no feature statistics (no features.npz); no ood_score from fold-0, "
        "and without it none from the ensemble"
    )
    assert "fold-1's fitted on 3000 objects of train.zarr" in ood
    assert (
        f"fit them (every member's) on the training store: python -m pipeline.models.features {ensemble}"
        in ("\n".join(lines))
    )
    assert not any(line.startswith("WARNING") for line in lines)


def test_info_says_a_fine_tunes_start_and_an_ensembles_out_of_fold_metrics_spaced(tmp_path, capsys):
    """Fresh-user trial: ``lenshunt info`` of a fine-tune had no line for the bundle it started from or
    the layers it trained (card.json's ``fine_tune`` alone), and of a folds ensemble printed
    ``out-of-foldauroc 0.7509``."""
    import json

    tuned = shutil.copytree(paths.shipped_model(), tmp_path / "tuned")
    card = json.loads((tuned / "card.json").read_text())
    account = {"init": "models/mine", "trained_layers": ["dense", "score"], "n_trained_layers": 2}
    account |= {"n_weighted_layers": 5, "trained_weights": 1234, "total_weights": 99999}
    (tuned / "card.json").write_text(json.dumps({**card, "fine_tune": account | {"batchnorm_frozen": True}}))
    lines = _info(capsys, tuned)
    trained = lines.index(next(line for line in lines if line.startswith("trained ")))
    assert lines[trained + 1] == (
        "           fine-tuned from models/mine: the last 2 of 5 weighted layers trained "
        "(1234 of 99999 weights)"
    )
    assert not any("fine-tuned" in line for line in _info(capsys, paths.shipped_model()))
    ensemble = tmp_path / "folds"
    members = [shutil.copytree(paths.shipped_model(), ensemble / name) for name in ("fold-0", "fold-1")]
    save_ensemble(ensemble, members, metrics={"oof_auroc": 0.7509})
    [oof] = [line for line in _info(capsys, ensemble) if line.startswith("out-of-fold")]
    assert oof.startswith("out-of-fold auroc 0.7509")


def test_info_lists_a_domain_the_model_learned_from_apart_from_the_shifted_ones(tmp_path, capsys):
    """Fresh-user trial: a domain check given the training store itself (the check warned: no held-out
    AUROC) had that store listed by ``lenshunt info`` among the shifted domains."""
    import json

    checked = shutil.copytree(paths.shipped_model(), tmp_path / "checked")
    card = json.loads((checked / "card.json").read_text())
    card["metrics"] |= {"mine_auroc": 0.9991, "mine_trained_on_store": 1.0, "pool_auroc": 0.99}
    card["metrics"] |= {"pool_learned_objects": 120.0}
    (checked / "card.json").write_text(json.dumps(card))
    lines = _info(capsys, checked)
    lines = lines[: lines.index(next(line for line in lines if line.startswith("max drop")))]  # then drops
    labelled = [line.split(":")[0] for line in lines if line.startswith(("shifted", "learned", "     "))]
    first = labelled.index(next(label for label in labelled if label.startswith("learned")))
    assert [label.split()[-1] for label in labelled[first:]] == ["mine", "pool"]
    assert "othersim" in [label.split()[-1] for label in labelled[:first]]
    assert lines[lines.index(next(line for line in lines if line.startswith("learned")))].startswith(
        "learned    mine: auroc 0.9991"
    )
    assert all(line.endswith("(its objects were learned from)") for line in lines if " pool: " in line)


def test_info_says_card_entries_no_measurement_gives(tmp_path, capsys):
    """Fresh-user trial: a hand-edited card's ``randomised_auroc: 1.7``, an interval with its ends reversed
    and a NaN were shown by ``lenshunt info`` as any other value. They are said on a warning line (the
    metrics are a record, not used to score: not refused)."""
    import json

    assert not [line for line in _info(capsys, paths.shipped_model()) if line.startswith("warning")]
    edited = shutil.copytree(paths.shipped_model(), tmp_path / "edited")
    card = json.loads((edited / "card.json").read_text())
    card["metrics"] |= {"randomised_auroc": 1.7, "thirdsim_tpr0": float("nan"), "max_auroc_drop": -3.0}
    card["metrics"] |= {"othersim_auroc_ci_low": 0.95, "othersim_auroc_ci_high": 0.92}
    (edited / "card.json").write_text(json.dumps(card))
    [warning] = [line for line in _info(capsys, edited) if line.startswith("warning")]
    assert warning == (
        "warning    card entries no measurement gives (edited by hand?): randomised_auroc 1.7 (a rate, in "
        "0-1); othersim_auroc_ci_low 0.95 above its _ci_high 0.92; thirdsim_tpr0 nan; max_auroc_drop -3 (a "
        "difference of two AUROCs, in -1-1)"
    )
