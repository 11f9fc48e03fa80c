"""Declared-output pieces of training: targets from truth catalogs (units, masks, messy files), the
Gaussian NLL, regression metrics, heads, options. Hand-computed values throughout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tiny_data import flux_images, tiny_layout

from pipeline.evaluation.regression import GAUSSIAN_WITHIN1, GAUSSIAN_WITHIN2, regression_metrics
from pipeline.preprocess import apply_recipe, fit_recipe
from pipeline.training import TrainConfig, TrainingError
from pipeline.training.targets import (
    PRESETS,
    TargetError,
    header_units,
    load_targets,
    parse_outputs_option,
    theta_e_from_area,
)
from schemas.layout import load_layout

LAYOUT = load_layout("euclid-sglc2")
RULE_COLUMNS = "n_source_im,mag_eff,n_pix_source"
ARCSEC_PER_RAD = 180 / math.pi * 3600


def write_catalog(path: Path, rows: list[str], header: list[str] | None = None, columns: str = "") -> Path:
    lines = [*(header or []), f"ID,{RULE_COLUMNS},ein_area,mag_lens{columns}", *rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


LENS = "2,3.0,50"
NON_LENS = "0,0,0"


# -- theta_E from the Einstein area, in the right unit -------------------------------------------


def test_theta_e_from_area_by_hand():
    assert theta_e_from_area(np.array([math.pi * 1.5**2]))[0] == pytest.approx(1.5)
    assert np.isnan(theta_e_from_area(np.array([-0.1]))[0])


def test_simulated_catalog_header_says_arcsec2_and_wins_over_the_layout(tmp_path):
    """lenshunt's simulator writes ``# column ein_area: [arcsec2] ...``; the layout's rad2 is for files
    that say nothing."""
    path = write_catalog(
        tmp_path / "image_catalog_sim.csv",
        [f"1,{LENS},{math.pi * 1.2**2},20.5", f"2,{NON_LENS},0.0,19.0"],
        header=["# a simulated set", "# column ein_area: [arcsec2] Einstein area pi theta_E^2"],
    )
    assert header_units(path) == {"ein_area": "arcsec2"}
    targets = load_targets([PRESETS["theta_e"]], np.array([2, 1]), np.array([0, 1]), LAYOUT, tmp_path)
    np.testing.assert_allclose(targets.values["theta_e"], [0.0, 1.2], rtol=1e-6)
    np.testing.assert_array_equal(targets.weights["theta_e"], [0.0, 1.0])  # the non-lens is masked
    assert "the catalog header" in targets.notes[0]


def test_challenge_catalog_without_units_is_read_in_square_radians_by_the_layout(tmp_path):
    """The second challenge's file does not state ein_area's unit; euclid-sglc2.yaml declares rad2."""
    theta_rad = 1.2 / ARCSEC_PER_RAD
    area = math.pi * theta_rad**2  # about 1.06e-10 sr, as the challenge's values look
    write_catalog(tmp_path / "image_catalog2.0train.csv", [f"100,{LENS},{area!r},21.0"])
    targets = load_targets([PRESETS["theta_e"]], np.array([100]), np.array([1]), LAYOUT, tmp_path)
    assert targets.values["theta_e"][0] == pytest.approx(1.2, rel=1e-5)
    assert "'rad2' (the layout's catalog.units)" in targets.notes[0]


def test_an_area_in_the_wrong_unit_is_refused_with_the_fix(tmp_path):
    """arcsec2 values under a rad2 declaration would give Einstein radii of 1e5 arcsec: refused."""
    write_catalog(tmp_path / "image_catalog_x.csv", [f"1,{LENS},{math.pi * 1.2**2},20.0"])
    with pytest.raises(TargetError, match=r"median target is .* arcsec.*column NAME: \[UNIT\]"):
        load_targets([PRESETS["theta_e"]], np.array([1]), np.array([1]), LAYOUT, tmp_path)


def test_masks_missing_bad_and_conflicting_targets_never_crash(tmp_path):
    """A lens with an empty, non-number, negative or conflicting target, or absent from the catalog,
    is masked and counted; a spreadsheet's BOM, blank rows and padded cells are read."""
    rows = [
        f"1,{LENS},{math.pi:.6f},20.0",  # theta_e 1
        f"2,{LENS},,20.1",  # empty
        f"3,{LENS},n/a,20.2",  # not a number
        f"4,{LENS},-1.0,20.3",  # negative area
        f"5,{LENS},{4 * math.pi:.6f},20.4",  # repeated with another value: ambiguous
        f"5,{LENS},{9 * math.pi:.6f},20.4",
        f"6,{LENS}, {4 * math.pi:.6f} ,20.5",  # padded: theta_e 2
        f"6,{LENS},{4 * math.pi:.6f},20.5",  # repeated, same value: kept
        ",,,,,",
        f"7,{NON_LENS},0,21.0",
    ]
    path = write_catalog(
        tmp_path / "image_catalog_messy.csv", rows, header=["# column ein_area: [arcsec2] area"]
    )
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ids = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    labels = np.array([1, 1, 1, 1, 1, 1, 0, 1])  # 8: a lens absent from the catalog
    targets = load_targets(
        [PRESETS["theta_e"], PRESETS["mag_lens"]], ids, labels, LAYOUT, tmp_path, catalog=str(path)
    )
    np.testing.assert_allclose(targets.values["theta_e"], [1, 0, 0, 0, 0, 2, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(targets.weights["theta_e"], [1, 0, 0, 0, 0, 1, 0, 0])
    assert not np.isnan(targets.values["theta_e"]).any()
    assert "5 without a usable value masked" in targets.notes[0]
    assert "mag_lens in 'mag' (none given" in targets.notes[1]
    # mag_lens is defined for every object, lens or not: only the absent one is masked
    np.testing.assert_array_equal(targets.weights["mag_lens"], [1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_allclose(targets.values["mag_lens"][[0, 6]], [20.0, 21.0])


def test_ab_magnitudes_of_the_simulated_catalog_are_read_as_mag(tmp_path):
    header = ["# column mag_lens: [AB mag] central-galaxy magnitude, reference band"]
    write_catalog(tmp_path / "image_catalog_sim.csv", [f"1,{LENS},3.14,19.25"], header=header)
    targets = load_targets([PRESETS["mag_lens"]], np.array([1]), np.array([1]), LAYOUT, tmp_path)
    assert targets.values["mag_lens"][0] == pytest.approx(19.25)


def test_a_catalog_without_the_column_or_no_catalog_is_a_clear_error(tmp_path):
    (tmp_path / "image_catalog_a.csv").write_text(f"ID,{RULE_COLUMNS}\n1,{LENS}\n")
    with pytest.raises(TargetError, match=r"none of the columns .*ein_area.*theta_e"):
        load_targets([PRESETS["theta_e"]], np.array([1]), np.array([1]), LAYOUT, tmp_path)
    with pytest.raises(TargetError, match="--target-catalog"):
        load_targets([PRESETS["theta_e"]], np.array([1]), np.array([1]), LAYOUT, tmp_path / "nowhere")
    # a score-only model needs no catalog at all
    assert load_targets([PRESETS["score"]], np.array([1]), np.array([1]), LAYOUT, None).values == {}


def test_a_theta_e_column_is_used_when_there_is_no_einstein_area(tmp_path):
    """bench/othersim.py's catalogs give theta_e itself."""
    (tmp_path / "image_catalog_o.csv").write_text(f"ID,{RULE_COLUMNS},theta_e\n1,{LENS},0.8\n")
    targets = load_targets([PRESETS["theta_e"]], np.array([1]), np.array([1]), LAYOUT, tmp_path)
    assert targets.values["theta_e"][0] == pytest.approx(0.8)


# -- options ------------------------------------------------------------------------------------


def test_outputs_option_and_config_validation():
    assert [t.spec.name for t in parse_outputs_option("mag_lens")] == ["mag_lens"]
    with pytest.raises(TargetError, match=r"unknown outputs.*choose"):
        parse_outputs_option("score,radius")
    with pytest.raises(TrainingError, match="outputs"):
        TrainConfig.from_options(outputs=("score", "score"))
    with pytest.raises(TrainingError, match="output_weights"):
        TrainConfig.from_options(outputs=("score",), output_weights={"theta_e": 1.0})
    with pytest.raises(TrainingError, match="detached_outputs"):
        TrainConfig.from_options(outputs=("score",), detached_outputs=("theta_e",))
    assert TrainConfig().default_outputs and not TrainConfig(outputs=("score", "theta_e")).default_outputs


# -- Gaussian NLL and regression metrics ------------------------------------------------------------


def test_gaussian_nll_by_hand_and_stable():
    from pipeline.training.losses import LOG_SIGMA_MIN, gaussian_nll

    y_true = np.array([[1.0], [0.0], [5.0]], dtype=np.float32)
    y_pred = np.array([[1.0, 0.0], [1.0, math.log(2.0)], [0.0, -50.0]], dtype=np.float32)
    nll = np.asarray(gaussian_nll(y_true, y_pred))
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    assert nll[0] == pytest.approx(half_log_2pi, abs=1e-6)
    assert nll[1] == pytest.approx(0.5 * 0.25 + math.log(2.0) + half_log_2pi, abs=1e-5)
    # log_sigma -50 is clipped: finite, with sigma = exp(LOG_SIGMA_MIN)
    z = 5.0 / math.exp(LOG_SIGMA_MIN)
    assert np.isfinite(nll[2]) and nll[2] == pytest.approx(
        0.5 * z * z + LOG_SIGMA_MIN + half_log_2pi, rel=1e-5
    )


def test_regression_metrics_by_hand():
    pred = np.array([1.0, 2.0, 4.0, np.nan])
    true = np.array([1.0, 1.0, 2.0, 3.0])
    sigma = np.array([0.5, 2.0, 1.0, 1.0])
    m = regression_metrics(pred, true, sigma)
    assert (m.n, m.n_missing) == (3, 1)
    assert m.mse == pytest.approx(5 / 3)
    assert m.bias == pytest.approx(1.0)
    assert m.scatter == pytest.approx(math.sqrt(2 / 3))
    assert m.mse == pytest.approx(m.bias**2 + m.scatter**2)
    assert m.nmad == pytest.approx(1.4826 * 1.0)  # residuals 0, 1, 2: median 1, |r - 1| median 1
    assert m.mse_of_mean == pytest.approx(np.var([1.0, 1.0, 2.0]))
    assert (m.within1, m.within2) == (pytest.approx(2 / 3), pytest.approx(2 / 3))  # |r|/sigma: 0, 0.5, 2
    assert "within1" not in regression_metrics(pred, true).as_dict()
    assert abs(GAUSSIAN_WITHIN1 - 0.6827) < 1e-4
    assert abs(GAUSSIAN_WITHIN2 - 0.9545) < 1e-4


def test_calibration_fractions_of_a_true_gaussian_are_the_gaussian_ones():
    rng = np.random.default_rng(4)
    true = rng.uniform(0.5, 2.5, 20000)
    sigma = rng.uniform(0.05, 0.3, true.size)
    pred = true + sigma * rng.standard_normal(true.size)
    m = regression_metrics(pred, true, sigma)
    assert m.within1 == pytest.approx(GAUSSIAN_WITHIN1, abs=0.01)
    assert m.within2 == pytest.approx(GAUSSIAN_WITHIN2, abs=0.01)
    overconfident = regression_metrics(pred, true, sigma / 2)
    assert overconfident.within1 < 0.45


# -- heads ------------------------------------------------------------------------------------------


def test_heads_per_declared_output_and_the_default_single_score():
    import keras

    from pipeline.models import OutputSpec, build_model
    from pipeline.models.common import StopGradient

    layout = tiny_layout(vis=32, nir=16)
    images = flux_images(layout, n=2, seed=3)
    recipe = fit_recipe(images, layout)
    inputs = apply_recipe(recipe, images)
    default = build_model("small_cnn", recipe, base_filters=4)
    assert [tuple(t.shape) for t in default.outputs] == [(None, 1)] and default.output_names == ["score"]
    morph = OutputSpec("morph", "classes", classes=("disk", "ring", "merger"))
    specs = [PRESETS["score"].spec, PRESETS["theta_e"].spec, PRESETS["mag_lens"].spec, morph]
    model = build_model("small_cnn", recipe, base_filters=4, outputs=specs, detached=("theta_e",))
    shapes = {name: tuple(t.shape) for name, t in zip(model.output_names, model.outputs, strict=True)}
    assert shapes == {"score": (None, 1), "theta_e": (None, 2), "mag_lens": (None, 1), "morph": (None, 3)}
    assert isinstance(model.get_layer("theta_e_detach"), StopGradient)
    out = model.predict_on_batch(inputs)
    np.testing.assert_allclose(np.asarray(out["morph"]).sum(axis=1), 1.0, rtol=1e-5)
    assert ((np.asarray(out["score"]) > 0) & (np.asarray(out["score"]) < 1)).all()
    keras.backend.clear_session()


def test_train_command_line_options_become_the_config():
    from flows.cli import build_parser
    from flows.train import config_from_args

    options = [
        "--outputs",
        "score,theta_e",
        "--output-weight",
        "theta_e=0.5",
        "--separate-outputs",
        "theta_e",
    ]
    options += ["--monitor", "theta_e", "--target-catalog", "truth.csv"]
    args = build_parser().parse_args(["train", "s.zarr", "out", *options])
    config = TrainConfig.from_options(**config_from_args(args))
    assert config.outputs == ("score", "theta_e") and config.separate_outputs == ("theta_e",)
    assert (config.output_weights, config.monitor, config.target_catalog) == (
        {"theta_e": 0.5},
        "theta_e",
        "truth.csv",
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "s.zarr", "out", "--output-weight", "theta_e"])
