"""Spiral discs with HII knots and an m = 1 mode (``spiral_knots``, ``spiral_lopsided``): real
spirals are not point-symmetric, and the asymmetry channels of the lens finder see the difference."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from pipeline.simulate import SimulationConfig, SimulationError, domain_config, draw_object
from pipeline.simulate.draws import FieldSpec, Sed, SersicDraw, SpiralDraw
from pipeline.simulate.instrument import Grid
from pipeline.simulate.rescale import rescaled
from pipeline.simulate.scenes import KNOT_WIDTH, feature_template, spiral_sb
from pipeline.simulate.spiral import KNOT_AMPLITUDE, KNOT_RADIUS

FIELD = FieldSpec(half_width_arcsec=10.0, n_bands=4, masked=False)
SPIRALS = {"negative_mix": (0, 0, 1, 0, 0), "lens_fraction": 0.0}
DISC = SpiralDraw(
    x=0.0, y=0.0, scale_length=0.8, q=1.0, phi=0.0, n_arms=2, pitch=math.radians(20.0),
    arm_phase=0.4, sharpness=4.0, sed=Sed(20.0, 0.3),
)  # fmt: skip


def _asymmetry(image: np.ndarray) -> float:
    """Rotational asymmetry index sum |I - R I| / sum |I| about the array centre (Conselice 2003)."""
    return float(np.abs(image - image[::-1, ::-1]).sum() / np.abs(image).sum())


def test_a_two_armed_disc_is_point_symmetric_and_knots_and_lopsidedness_break_it():
    grid = Grid(shape=(80, 80), pixel_scale_arcsec=0.1, supersample=1)
    assert _asymmetry(feature_template(grid, DISC)) < 1e-6
    knotty = replace(DISC, knots=((1.5, 0, 2.0), (2.2, 1, 1.0)))
    lopsided = replace(DISC, lopsided=0.3, lopsided_angle=1.0)
    assert _asymmetry(feature_template(grid, knotty)) > 0.03
    assert _asymmetry(feature_template(grid, lopsided)) > 0.1


def test_a_knot_sits_on_its_arm_with_its_amplitude_over_the_disc_there():
    radius, amplitude = 1.5, 2.0
    for arm in (0, 1):
        knotty = replace(DISC, knots=((radius, arm, amplitude),))
        angle = math.log(radius) / math.tan(DISC.pitch) + (DISC.arm_phase + 2 * math.pi * arm) / DISC.n_arms
        x = np.array([radius * DISC.scale_length * math.cos(angle)])
        y = np.array([radius * DISC.scale_length * math.sin(angle)])
        on_crest = spiral_sb(x, y, DISC)[0]
        assert on_crest == pytest.approx(math.exp(-radius))  # the arm's crest: 0.25 + 0.75 * 1
        assert spiral_sb(x, y, knotty)[0] - on_crest == pytest.approx(amplitude * math.exp(-radius))
        away = x + 5 * KNOT_WIDTH * DISC.scale_length
        assert spiral_sb(away, y, knotty)[0] - spiral_sb(away, y, DISC)[0] < 1e-4 * on_crest


def test_sets_without_the_options_are_drawn_again_exactly_and_with_them_only_spirals_change():
    base = domain_config("randomised")
    assert base.spiral_knots == (0.0, 0.0) and base.spiral_lopsided == (0.0, 0.0)
    knotty = domain_config("randomised", spiral_knots=(2, 6), spiral_lopsided=(0.1, 0.4))
    changed = 0
    for i in range(200000, 200120):
        before, after = draw_object(i, 2027, FIELD, base), draw_object(i, 2027, FIELD, knotty)
        if before.kind != "spiral":
            assert after == before
            continue
        changed += 1
        assert (after.central, after.neighbours, after.stars) == (
            before.central,
            before.neighbours,
            before.stars,
        )
        (disc_before,), (disc_after,) = before.features, after.features
        assert disc_before.knots == () and disc_before.lopsided == 0.0
        assert replace(disc_after, knots=(), lopsided=0.0, lopsided_angle=0.0) == disc_before
        assert 2 <= len(disc_after.knots) <= 6 and 0.1 <= disc_after.lopsided <= 0.4
        for knot_radius, arm, amplitude in disc_after.knots:
            assert KNOT_RADIUS[0] <= knot_radius <= KNOT_RADIUS[1] and 0 <= arm < disc_after.n_arms
            assert KNOT_AMPLITUDE[0] <= amplitude <= KNOT_AMPLITUDE[1]
    assert changed > 5


def test_knots_grow_with_a_resized_spiral():
    disc = replace(DISC, knots=((1.5, 0, 2.0),), lopsided=0.2)
    bulge = SersicDraw(x=0.0, y=0.0, r_eff=0.2, n=1.2, q=1.0, phi=0.0, sed=Sed(21.0, 0.3))
    (_,), (bigger,) = rescaled((bulge,), (disc,), 2.0, False)
    assert bigger.scale_length == 2 * disc.scale_length
    assert (bigger.knots, bigger.lopsided) == (disc.knots, disc.lopsided)  # in scale lengths
    grid = Grid(shape=(120, 120), pixel_scale_arcsec=0.1, supersample=1)
    small, large = feature_template(grid, disc), feature_template(grid, bigger)
    assert _asymmetry(large) == pytest.approx(_asymmetry(small), rel=0.1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"spiral_knots": (2.5, 4)}, "whole numbers"),
        ({"spiral_knots": (0, 80)}, "spiral_knots must lie within [0, 50]"),
        ({"spiral_lopsided": (0.2, 1.5)}, "spiral_lopsided must lie within [0, 0.9]"),
        ({"spiral_lopsided": (0.4, 0.1)}, "low <= high"),
    ],
)
def test_bad_spiral_settings_are_refused_with_the_fix(settings, message):
    with pytest.raises(SimulationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SimulationConfig(**settings)


def test_spiral_settings_without_spirals_to_act_on_are_refused():
    with pytest.raises(SimulationError, match="spiral_knots acts on the spirals, but lens_fraction 1 draws"):
        domain_config("default", spiral_knots=(1, 3), lens_fraction=1.0)
    with pytest.raises(SimulationError, match="spiral_knots acts on the spirals, but negative_mix 1,0,0,0,0"):
        domain_config("default", spiral_knots=(1, 3), negative_mix=(1, 0, 0, 0))
    with pytest.raises(SimulationError, match="spiral_lopsided acts on the spirals, but negative_mix 1,1,0"):
        domain_config("default", spiral_lopsided=(0, 0.2), negative_mix=(1, 1, 0, 1))
    assert domain_config("default", spiral_lopsided=(0, 0), negative_mix=(1, 1, 0, 1)).negative_mix[2] == 0


def test_the_command_line_takes_the_spiral_settings_and_refuses_bad_ones(tmp_path, prefect_harness):
    import argparse

    from flows.simulate import add_arguments, check, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    bad = parser.parse_args([str(tmp_path / "bad"), "--n", "2", "--spiral-knots", "1.5", "3"])
    with pytest.raises(SimulationError, match="whole numbers"):
        check(bad)
    assert not (tmp_path / "bad").exists()
    spirals = ["--negative-mix", "0", "0", "1", "0", "--lens-fraction", "0", "--seed", "3", "--in-process"]
    options = ["--spiral-knots", "3", "8", "--spiral-lopsided", "0", "0.3"]
    assert run(parser.parse_args([str(tmp_path / "set"), "--n", "3", *spirals, *options])) == 0
    header = next(line for line in (tmp_path / "set" / "image_catalog_sim.csv").open() if "# run:" in line)
    assert "spiral_knots=3,8 spiral_lopsided=0,0.3" in header
