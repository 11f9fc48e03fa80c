"""Population draws: the ``companion`` non-lens kind (an elliptical with blue satellites), the
4-weight mixes of sets made before it existed, and the sources' offsets in Einstein radii."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from pipeline.simulate import NEGATIVE_KINDS, SimulationConfig, SimulationError, domain_config, draw_object
from pipeline.simulate.draws import FieldSpec, SersicDraw
from pipeline.simulate.instrument import Grid, default_band_models
from pipeline.simulate.population import _negative_scale
from pipeline.simulate.scenes import feature_template, sersic_template

FIELD = FieldSpec(half_width_arcsec=10.0, n_bands=4, masked=False)

STANDARD_KINDS_7919 = "eslmleslmellmmwmeeleellesrlellllmlelrseelmllellllrlslermllee"
"""First letters of the kinds of objects 500000-500059 of the standard set with seed 7919 (the
held-out standard, noise3x, psf15x and counts sets), drawn by the code before ``companion``."""


def _kinds(config: SimulationConfig, seed: int = 7919, first: int = 500000, n: int = 60) -> str:
    return "".join(draw_object(i, seed, FIELD, config).kind[0] for i in range(first, first + n))


def test_sets_made_before_the_companion_kind_are_drawn_again_exactly():
    assert NEGATIVE_KINDS[-1] == "companion"
    assert SimulationConfig().negative_mix[-1] == 0.0
    assert _kinds(SimulationConfig()) == STANDARD_KINDS_7919
    four = domain_config("randomised", negative_mix=(0.25, 0.25, 0.25, 0.25))
    assert four.negative_mix == (0.25, 0.25, 0.25, 0.25, 0.0)
    five = domain_config("randomised", negative_mix=(0.25, 0.25, 0.25, 0.25, 0.0))
    assert [draw_object(i, 3, FIELD, four) for i in range(40)] == [
        draw_object(i, 3, FIELD, five) for i in range(40)
    ]


def test_companion_draws_are_an_elliptical_host_with_one_to_three_blue_satellites():
    kinds = {"negative_mix": (0, 0, 0, 0, 1), "lens_fraction": 0.0}
    config = domain_config("randomised", negative_scale=(1, 1), **kinds)
    draws = [draw_object(i, 11, FIELD, config) for i in range(300)]
    assert {d.kind for d in draws} == {"companion"}
    counts = [len(d.features) for d in draws]
    assert set(counts) == {1, 2, 3} and counts.count(1) > counts.count(2) > counts.count(3)
    tangential = 0
    for draw in draws:
        (host,) = draw.central
        assert draw.mass is None and draw.source is None
        assert config.lens_sersic_range[0] <= host.n <= config.lens_sersic_range[1]
        for satellite in draw.features:
            assert isinstance(satellite, SersicDraw)
            dx, dy = satellite.x - host.x, satellite.y - host.y
            assert 0.5 <= math.hypot(dx, dy) <= 3.5
            assert 0.08 <= satellite.r_eff <= 0.4 and 0.5 <= satellite.n <= 1.5
            assert 1.5 <= satellite.sed.mag - host.sed.mag <= 5.0
            assert satellite.sed.slope <= host.sed.slope - 0.3 + 1e-12  # bluer than the host
            radial = math.atan2(dy, dx)
            offset = abs(math.remainder(satellite.phi - radial, math.pi))
            tangential += math.isclose(offset, math.pi / 2, abs_tol=1e-9)
    n_satellites = sum(counts)
    assert 0.35 < tangential / n_satellites < 0.65  # half aligned tangentially, the rest random


def test_companions_come_only_when_the_mix_asks_for_them():
    assert "c" not in _kinds(domain_config("randomised"), seed=2027, first=200000, n=400)
    assert "c" not in _kinds(SimulationConfig(), n=400)
    mixed = _kinds(domain_config("randomised", negative_mix=(1, 0, 0, 0, 1)), seed=2027, first=200000, n=400)
    assert set(mixed) == {"l", "w", "e", "c"} and 0.15 < mixed.count("c") / 400 < 0.35


def test_a_satellite_is_rendered_as_its_sersic_profile():
    satellite = SersicDraw(x=1.0, y=-0.5, r_eff=0.2, n=1.0, q=0.4, phi=0.3, sed=None)  # type: ignore[arg-type]
    grid = Grid(shape=(64, 64), pixel_scale_arcsec=0.1, supersample=3)
    template = feature_template(grid, satellite)
    assert np.array_equal(template, sersic_template(grid, satellite))
    assert template.sum() == pytest.approx(1.0, rel=1e-3)  # the analytic total, cut at 12 r_eff
    row, col = np.unravel_index(np.argmax(template), template.shape)
    assert (col - 31.5) * 0.1 == pytest.approx(1.0, abs=0.1)
    assert (row - 31.5) * 0.1 == pytest.approx(-0.5, abs=0.1)


def test_source_offsets_follow_the_range_in_einstein_radii():
    config = domain_config("randomised", source_offset_range=(0.9, 1.0), lens_fraction=1.0)
    draws = [draw_object(i, 5, FIELD, config) for i in range(300)]
    ratios = [
        math.hypot(d.source.smooth.x - d.mass.x, d.source.smooth.y - d.mass.y) / d.mass.theta_e
        for d in draws
        if d.kind == "lens"
    ]
    assert len(ratios) > 150 and min(ratios) >= 0.9 - 1e-9 and max(ratios) <= 1.0 + 1e-9
    inner = domain_config("randomised", lens_fraction=1.0)  # the preset's 0-0.7
    assert inner.source_offset_range == (0.0, 0.7)
    near = [draw_object(i, 5, FIELD, inner) for i in range(300)]
    assert (
        max(
            math.hypot(d.source.smooth.x - d.mass.x, d.source.smooth.y - d.mass.y) / d.mass.theta_e
            for d in near
            if d.kind == "lens"
        )
        <= 0.7 + 1e-9
    )
    with pytest.raises(SimulationError, match=r"source_offset_range must lie within \[0, 1.5\] theta_E"):
        domain_config("randomised", source_offset_range=(0.0, 3.0))


def test_negative_scale_shrinks_the_hard_negatives_about_their_centre_and_nothing_else():
    from pipeline.simulate.draws import ArcDraw, RingDraw, SpiralDraw

    mix = {"negative_mix": (1, 1, 1, 1, 1), "lens_fraction": 0.3}
    plain = domain_config("randomised", negative_scale=(1, 1), **mix)
    every = {"negative_scale_fraction": 1.0, "negative_scale_brightens": False}
    half = domain_config("randomised", negative_scale=(0.5, 0.5), **every, **mix)
    seen = set()
    for i in range(120):
        a, b = draw_object(i, 4, FIELD, plain), draw_object(i, 4, FIELD, half)
        assert a.kind == b.kind and a.neighbours == b.neighbours and a.stars == b.stars
        if a.kind in ("lens", "weak_lens", "elliptical"):
            assert a == b
            continue
        seen.add(a.kind)
        x0, y0 = a.central[0].x, a.central[0].y
        for before, after in zip(a.central + a.features, b.central + b.features, strict=True):
            assert after.sed == before.sed  # fluxes kept
            if isinstance(before, (SersicDraw, RingDraw, SpiralDraw)):
                assert after.x - x0 == pytest.approx(0.5 * (before.x - x0))
                assert after.y - y0 == pytest.approx(0.5 * (before.y - y0))
            if isinstance(before, SersicDraw):
                assert after.r_eff == pytest.approx(0.5 * before.r_eff)
            elif isinstance(before, RingDraw):
                assert (after.radius, after.width) == pytest.approx((0.5 * before.radius, 0.5 * before.width))
            elif isinstance(before, SpiralDraw):
                assert after.scale_length == pytest.approx(0.5 * before.scale_length)
            else:
                assert isinstance(before, ArcDraw)
                assert after.cx - x0 == pytest.approx(0.5 * (before.cx - x0))
                assert after.radius == pytest.approx(0.5 * before.radius)
    assert seen == {"ring", "spiral", "merger", "companion"}
    ranged = domain_config("randomised", negative_scale=(0.4, 1.0), **every, **mix)
    rings = [i for i in range(400) if draw_object(i, 4, FIELD, plain).kind == "ring"]
    radii = [
        draw_object(i, 4, FIELD, ranged).features[0].radius
        / draw_object(i, 4, FIELD, plain).features[0].radius
        for i in rings
    ]
    assert 0.4 - 1e-9 <= min(radii) < 0.5 and 0.9 < max(radii) <= 1.0 + 1e-9


def _look_alike_pairs(first: SimulationConfig, second: SimulationConfig, n: int) -> list:
    """Objects 0..n-1 (seed 4) drawn under both configs: asserts that lenses, ellipticals and every
    object's field are the same under both and that every look-alike kind occurs; returns
    ``[(kind, [(component under first, under second), ...]), ...]`` for the look-alikes."""
    found = []
    for i in range(n):
        a, b = draw_object(i, 4, FIELD, first), draw_object(i, 4, FIELD, second)
        if a.kind in ("lens", "weak_lens", "elliptical"):
            assert a == b
            continue
        assert a.neighbours == b.neighbours and a.stars == b.stars
        found.append((a.kind, list(zip(a.central + a.features, b.central + b.features, strict=True))))
    assert {kind for kind, _ in found} == {"ring", "spiral", "merger", "companion"}
    return found


def test_negative_scale_brightens_keeps_the_hard_negatives_surface_brightness():
    """A factor 2 with ``negative_scale_brightens``: the same sizes as without, every component
    5 log10(2) = 1.505 mag brighter (4x the flux on 4x the area); lenses and ellipticals untouched."""
    mix = {"negative_mix": (1, 1, 1, 1, 1), "lens_fraction": 0.3, "negative_scale_fraction": 1.0}
    flat = domain_config("randomised", negative_scale=(2.0, 2.0), negative_scale_brightens=False, **mix)
    bright = domain_config("randomised", negative_scale=(2.0, 2.0), negative_scale_brightens=True, **mix)
    pairs = _look_alike_pairs(flat, bright, 80)
    for before, after in (pair for _, object_pairs in pairs for pair in object_pairs):
        assert after.sed.mag == pytest.approx(before.sed.mag - 1.50515, abs=1e-4)
        assert after.sed.slope == before.sed.slope  # colours kept
        assert replace(after, sed=before.sed) == before  # sizes and places as without
    with pytest.raises(SimulationError, match="with negative_scale 1 1 it does nothing"):
        domain_config("default", negative_scale_brightens=True)


def test_negative_mag_offset_shifts_only_the_hard_negatives_brightness():
    """An offset range: each hard negative's components all shifted by one offset in the range
    (sizes, places and colours kept), different per object; lenses, ellipticals and the field as
    without."""
    mix = {"negative_mix": (1, 1, 1, 1, 1), "lens_fraction": 0.3}
    plain = domain_config("randomised", **mix)
    shifted = replace(plain, negative_mag_offset=(-1.0, 1.5))
    offsets = []
    for _, pairs in _look_alike_pairs(plain, shifted, 120):
        offset = pairs[0][1].sed.mag - pairs[0][0].sed.mag
        for before, after in pairs:
            assert after.sed.mag - before.sed.mag == pytest.approx(offset, abs=1e-9)
            assert replace(after, sed=before.sed) == before
        offsets.append(offset)
    assert -1.0 <= min(offsets) < -0.5 and 1.0 < max(offsets) <= 1.5
    fixed = replace(plain, negative_mag_offset=(0.75, 0.75))
    assert all(
        o.sed.mag == pytest.approx(p.sed.mag + 0.75)
        for i in range(40)
        if draw_object(i, 4, FIELD, plain).kind == "ring"
        for p, o in zip(draw_object(i, 4, FIELD, plain).features, draw_object(i, 4, FIELD, fixed).features)
    )
    with pytest.raises(SimulationError, match=r"negative_mag_offset must lie within \[-5, 5\] mag"):
        replace(plain, negative_mag_offset=(-6.0, 1.0))
    with pytest.raises(SimulationError, match="negative_mag_offset must be finite with low <= high"):
        replace(plain, negative_mag_offset=(1.0, -1.0))


def test_negative_scale_fraction_resizes_only_that_share_of_the_hard_negatives():
    """Share 0.5: each hard negative is either drawn exactly as without a scale range or exactly as
    with share 1 (the same factor: the share's draw follows it), about half each."""
    mix = {"negative_mix": (0, 1, 1, 1, 1), "lens_fraction": 0.0}
    plain = domain_config("randomised", negative_scale=(1, 1), **mix)
    every = domain_config("randomised", negative_scale=(2.0, 4.0), negative_scale_fraction=1.0, **mix)
    half = replace(every, negative_scale_fraction=0.5)
    resized = []
    for i in range(200):
        drawn = draw_object(i, 4, FIELD, half)
        assert drawn in (draw_object(i, 4, FIELD, plain), draw_object(i, 4, FIELD, every))
        resized.append(drawn != draw_object(i, 4, FIELD, plain))
    assert 0.4 < np.mean(resized) < 0.6
    fixed = replace(every, negative_scale=(2.0, 2.0))  # a fixed factor: the share still applies
    scales = [_negative_scale(4, i, replace(fixed, negative_scale_fraction=0.5)) for i in range(400)]
    assert set(scales) == {1.0, 2.0} and 0.4 < scales.count(2.0) / 400 < 0.6
    assert {_negative_scale(4, i, fixed) for i in range(50)} == {2.0}
    with pytest.raises(SimulationError, match="negative_scale_fraction 0 resizes no hard negative"):
        replace(every, negative_scale_fraction=0.0)
    with pytest.raises(SimulationError, match="negative_scale_fraction must lie in"):
        replace(every, negative_scale_fraction=1.5)
    with pytest.raises(SimulationError, match="negative_scale_fraction acts on the hard negatives"):
        domain_config("default", negative_scale_fraction=0.5)


def test_the_randomised_preset_adds_large_bright_look_alikes_and_scale_1_takes_them_out():
    """The preset draws half its rings, spirals and mergers 1.5-4x larger and brighter; with
    ``negative_scale`` (1, 1) it is the previous preset (lenshunt-default-small-cnn-5's training
    distribution), whose sets are drawn again exactly."""
    current = domain_config("randomised")
    assert current.negative_scale == (1.5, 4.0) and current.negative_scale_fraction == 0.5
    assert current.negative_scale_brightens
    previous = domain_config("randomised", negative_scale=(1.0, 1.0))
    assert previous == replace(
        current, negative_scale=(1.0, 1.0), negative_scale_fraction=1.0, negative_scale_brightens=False
    )
    assert "negative_scale" not in previous.describe_ranges()  # the header of the earlier sets
    # any scale given replaces the preset's resizing, so earlier commands draw the same sets
    earlier = domain_config("randomised", negative_scale=(0.4, 1.0))
    assert (earlier.negative_scale_fraction, earlier.negative_scale_brightens) == (1.0, False)
    both = domain_config("randomised", negative_scale=(2, 3), negative_scale_fraction=0.3)
    assert (both.negative_scale_fraction, both.negative_scale_brightens) == (0.3, False)
    with pytest.raises(SimulationError, match="negative_scale_brightens acts on"):
        domain_config("randomised", negative_scale=(1.0, 1.0), negative_scale_brightens=True)
    resized = {"ring": 0, "spiral": 0, "merger": 0}
    for i in range(150):
        a, b = draw_object(i, 7921, FIELD, current), draw_object(i, 7921, FIELD, previous)
        assert a.kind == b.kind
        if a.kind in resized:
            resized[a.kind] += a != b
            if a != b:
                assert a.central[0].sed.mag < b.central[0].sed.mag - 0.87  # 1.5x: 0.88 mag brighter
        else:
            assert a == b  # lenses and ellipticals are untouched
    assert all(count > 0 for count in resized.values())


def test_a_brightened_negative_has_the_surface_brightness_of_the_unscaled_one():
    """Rendered, not only drawn: a ring 2x larger and brightened has 4x the flux of the one only
    enlarged, and its brightest 400 pixels are about as bright as the unscaled ring's brightest
    100 (the same surface brightness on 4x the area)."""
    from pipeline.simulate import simulate_object
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    quiet = {"noise_scale": (1e-6, 1e-6), "lens_fraction": 0.0, "negative_mix": (0, 1, 0, 0, 0)}
    quiet |= {"neighbour_density_per_arcsec2": 0.0, "star_density_per_arcsec2": 0.0}
    vis = {
        name: simulate_object(layout, 11, 3, domain_config("default", **quiet, **extra)).images["VIS"]
        for name, extra in {
            "unscaled": {},
            "flat": {"negative_scale": (2.0, 2.0)},
            "bright": {"negative_scale": (2.0, 2.0), "negative_scale_brightens": True},
        }.items()
    }
    assert vis["bright"].sum() == pytest.approx(4.0 * vis["flat"].sum(), rel=0.02)

    def brightest(image: np.ndarray, n: int) -> float:
        return float(np.sort(image.ravel())[-n:].mean())

    assert 0.7 < brightest(vis["bright"], 400) / brightest(vis["unscaled"], 100) < 1.4
    assert brightest(vis["flat"], 400) / brightest(vis["unscaled"], 100) < 0.35


def test_a_moffat_psf_spreads_the_light_into_wings_and_is_off_by_default():
    from pipeline.simulate import simulate_object
    from pipeline.simulate.noise import psf_kernel
    from schemas.layout import load_layout

    layout = load_layout("euclid-sglc2")
    quiet = {"noise_scale": (1e-6, 1e-6), "lens_fraction": 0.0, "negative_mix": (1, 0, 0, 0, 0)}
    gaussian = simulate_object(layout, 7, 3, domain_config("default", **quiet))
    default_again = simulate_object(layout, 7, 3, domain_config("default", moffat_fraction=0.0, **quiet))
    moffat = simulate_object(layout, 7, 3, domain_config("default", moffat_fraction=1.0, **quiet))
    assert all(np.array_equal(gaussian.images[b], default_again.images[b]) for b in gaussian.images)
    assert gaussian.draw == moffat.draw  # the same scene, through another PSF
    vis_g, vis_m = gaussian.images["VIS"], moffat.images["VIS"]
    assert vis_m.sum() == pytest.approx(vis_g.sum(), rel=0.02)  # flux kept
    assert vis_m.max() < vis_g.max()  # the core loses light to the wings
    yy, xx = np.indices(vis_g.shape)
    ring = np.hypot(yy - 99.5, xx - 99.5) > 30  # far from the galaxy: the Moffat wings
    assert vis_m[ring].sum() > vis_g[ring].sum()
    model = default_band_models(layout)["VIS"]
    kernel = psf_kernel(replace(model, psf_profile="moffat", moffat_beta=2.5), 0.2)
    assert kernel.sum() == pytest.approx(1.0)
    with pytest.raises(SimulationError, match="moffat_fraction must lie in"):
        domain_config("default", moffat_fraction=1.5)
    with pytest.raises(SimulationError, match="with moffat_fraction 0 it does nothing"):
        domain_config("default", moffat_beta_range=(3.0, 4.0))


def test_each_file_says_which_psf_made_it(tmp_path):
    import fitsio

    from pipeline.simulate import simulate_set

    config = domain_config("default", moffat_fraction=0.5, moffat_beta_range=(3.0, 4.0))
    simulate_set("euclid-sglc2", 6, tmp_path, seed=5, config=config)
    profiles = {}
    for path in sorted(tmp_path.glob("Public/EUC_*/*.fits")):
        header = fitsio.read_header(str(path))
        profiles.setdefault(header["OBJ_ID"], set()).add((header["PSF_TYPE"], header.get("PSF_BETA")))
    assert len(profiles) == 6 and all(len(bands) == 1 for bands in profiles.values())  # one PSF per object
    kinds = [next(iter(bands)) for bands in profiles.values()]
    assert {kind for kind, _ in kinds} == {"gaussian", "moffat"}
    assert all(beta is None if kind == "gaussian" else 3.0 <= beta <= 4.0 for kind, beta in kinds)
