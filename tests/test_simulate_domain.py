"""Domain randomisation in the simulator: drawn instruments, shifted sets, reproducibility.

Real FITS files and catalogs on disk, read back with fitsio, labels through the real label reader,
Dask runs on the session's real LocalCluster.
"""

from __future__ import annotations

import math
from pathlib import Path

import fitsio
import numpy as np
import pandas as pd
import pytest

from pipeline.simulate import (
    CHALLENGE_COLUMNS,
    DOMAIN_COLUMNS,
    SimulationConfig,
    SimulationError,
    default_band_models,
    domain_config,
    draw_domain,
    simulate_set,
)
from pipeline.sources import labels_for
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
FIRST = 100000
N = 8
SEED = 21


def catalog(root: Path) -> pd.DataFrame:
    (path,) = sorted(root.glob(EUCLID.catalog.pattern))
    return pd.read_csv(path, comment="#")


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_band(root: Path, band: str, object_id: int) -> tuple[np.ndarray, dict]:
    image, header = fitsio.read(root / EUCLID.band(band).path_for(object_id, 6), header=True)
    return image.astype(np.float64), header


def robust_sigma(image: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(image - np.median(image))))


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """The same seed and ids as a standard set, a 3x-noise set and a raw-counts set."""
    roots = {}
    for name, config in {
        "standard": SimulationConfig(),
        "noise3": domain_config(noise_scale=(3.0, 3.0)),
        "counts": domain_config(flux_scale=(1e12, 1e12)),
        "psf15": domain_config(psf_scale=(1.5, 1.5)),
        "sky": domain_config(sky_offset=(-2.0, -2.0)),
    }.items():
        roots[name] = tmp_path_factory.mktemp(name)
        simulate_set(EUCLID, N, roots[name], seed=SEED, config=config)
    return roots


@pytest.fixture(scope="module")
def randomised(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("randomised")
    simulate_set(EUCLID, 12, root, seed=SEED, config=domain_config("randomised"), batch_size=5)
    return root


def test_standard_config_draws_the_standard_instrument_and_keeps_the_columns(sets):
    config = SimulationConfig()
    assert not config.varies_instrument and config.describe_ranges() == ""
    assert domain_config("default") == config
    draw = draw_domain(SEED, FIRST, 4, config)
    assert (draw.noise_scale, draw.psf_scale, draw.flux_scale, draw.sky_offset) == (1.0, 1.0, 1.0, 0.0)
    assert list(catalog(sets["standard"]).columns) == [*CHALLENGE_COLUMNS, "sim_kind"]
    _, header = read_band(sets["standard"], "VIS", FIRST)
    assert "FLUXSCL" not in header and header["MAGZP"] == 0.0 and header["BUNIT"] == "adu"
    text = next(sets["standard"].glob("image_catalog*.csv")).read_text()
    assert "pixel values are flux with AB zero point 0" in text and "noise_scale" not in text


def test_three_times_the_noise_is_measured_and_the_scenes_are_paired(sets):
    standard, noisy = catalog(sets["standard"]), catalog(sets["noise3"])
    assert (noisy[list(DOMAIN_COLUMNS)].to_numpy() == [3.0, 1.0, 1.0, 0.0]).all()
    # same scenes: the physical truth is the same objects'
    for column in ("sim_kind", "z_lens", "ein_area", "mag_source", "mag_lens", "source_flux", "lens_flux"):
        pd.testing.assert_series_equal(noisy[column], standard[column])
    # fewer source pixels stand above a 3x higher noise, so some arcs drop out of the label rule
    assert (noisy["n_pix_source"] <= standard["n_pix_source"]).all()
    assert noisy["n_pix_source"].sum() < standard["n_pix_source"].sum()
    models = default_band_models(EUCLID)
    for band in EUCLID.band_names:
        ratios = []
        for object_id in range(FIRST, FIRST + N):
            base, base_header = read_band(sets["standard"], band, object_id)
            image, header = read_band(sets["noise3"], band, object_id)
            ratios.append(robust_sigma(image) / robust_sigma(base))
            assert header["NOISESIG"] == pytest.approx(3.0 * base_header["NOISESIG"], rel=1e-6)
            assert header["NOISESCL"] == 3.0 and header["PSF_FWHM"] == base_header["PSF_FWHM"]
        assert np.median(ratios) == pytest.approx(3.0, rel=0.08), (band, ratios)
        assert base_header["NOISESIG"] == pytest.approx(models[band].noise_sigma, rel=1e-6)


def test_flux_scale_multiplies_pixels_and_the_zero_point_follows(sets):
    for band in EUCLID.band_names:
        for object_id in (FIRST, FIRST + N - 1):
            base, base_header = read_band(sets["standard"], band, object_id)
            counts, header = read_band(sets["counts"], band, object_id)
            np.testing.assert_allclose(counts, base * 1e12, rtol=1e-6, atol=0)
            assert header["MAGZP"] == pytest.approx(30.0, abs=1e-9)
            assert header["FLUXSCL"] == 1e12 and header["BUNIT"] == "adu"  # its MAGZP says what a unit is
            assert header["NOISESIG"] == pytest.approx(1e12 * base_header["NOISESIG"], rel=1e-6)
    standard, counts_table = catalog(sets["standard"]), catalog(sets["counts"])
    # the truth stays physical: magnitudes, fluxes, pixel counts and labels are unchanged
    physical = [c for c in CHALLENGE_COLUMNS if c != "ID"]
    pd.testing.assert_frame_equal(counts_table[physical], standard[physical])
    assert (counts_table["flux_scale"] == 1e12).all()


def test_sky_offset_adds_that_many_noise_sigmas(sets):
    for band in EUCLID.band_names:
        base, base_header = read_band(sets["standard"], band, FIRST + 2)
        offset, header = read_band(sets["sky"], band, FIRST + 2)
        sigma = base_header["NOISESIG"]
        assert header["SKYLEVEL"] == pytest.approx(-2.0 * sigma, rel=1e-6) and header["NOISESIG"] == sigma
        np.testing.assert_allclose(offset - base, -2.0 * sigma, rtol=0, atol=1e-6 * np.abs(base).max())
    assert (catalog(sets["sky"])["sky_offset"] == -2.0).all()


def test_psf_scale_widens_the_psf_by_the_factor(sets):
    for band in EUCLID.band_names:
        _, base = read_band(sets["standard"], band, FIRST + 1)
        _, wide = read_band(sets["psf15"], band, FIRST + 1)
        assert wide["PSF_FWHM"] == pytest.approx(1.5 * base["PSF_FWHM"], rel=1e-5)
    # a blurrier lens galaxy: its peak drops while its total light stays
    base, _ = read_band(sets["standard"], "VIS", FIRST + 1)
    wide, _ = read_band(sets["psf15"], "VIS", FIRST + 1)
    centre = np.s_[95:105, 95:105]
    assert wide[centre].max() < base[centre].max()


def test_randomised_draws_stay_in_their_ranges_and_are_recorded(randomised):
    config = domain_config("randomised")
    table = catalog(randomised)
    assert list(table.columns) == [*CHALLENGE_COLUMNS, *DOMAIN_COLUMNS, "sim_kind"]
    for name in DOMAIN_COLUMNS:
        low, high = getattr(config, name)
        assert table[name].between(low, high).all(), name
        assert table[name].nunique() == len(table), f"{name} is not drawn per object"
    lensed = table[table["n_sources"] == 1]
    theta_e = np.sqrt(lensed["ein_area"] / math.pi)
    assert theta_e.between(0.3 - 1e-6, 3.0 + 1e-6).all()
    models = default_band_models(EUCLID)
    for object_id in range(FIRST, FIRST + 4):
        per_band = []
        for band in EUCLID.band_names:
            image, header = read_band(randomised, band, object_id)
            scales = (header["NOISESCL"], header["PSFSCL"], header["FLUXSCL"], header["SKYOFF"])
            for value, name in zip(scales, DOMAIN_COLUMNS, strict=True):
                low, high = getattr(config, name)
                assert low <= value <= high, (band, name, value)
            per_band.append(scales)
            noise_sigma = models[band].noise_sigma * header["NOISESCL"] * header["FLUXSCL"]
            assert header["NOISESIG"] == pytest.approx(noise_sigma, rel=1e-6)
            assert header["MAGZP"] == pytest.approx(2.5 * math.log10(header["FLUXSCL"]))
            assert header["SKYLEVEL"] == pytest.approx(header["SKYOFF"] * noise_sigma, rel=1e-9)
            # the pixels have that noise and that background
            border = np.concatenate([image[:6].ravel(), image[-6:].ravel()])
            assert robust_sigma(border) == pytest.approx(noise_sigma, rel=0.3)
        assert len(set(per_band)) == len(per_band), "bands jitter around the object's shared value"
    layout_labels, _ = labels_for(EUCLID, table["ID"].to_numpy(), randomised)
    assert layout_labels.tolist() == table.eval(EUCLID.catalog.label_rule).astype(int).tolist()


def test_randomised_sets_are_reproducible_whatever_the_split(randomised, tmp_path, dask_client):
    config = domain_config("randomised")
    simulate_set(EUCLID, 12, tmp_path / "single", seed=SEED, config=config, batch_size=1)
    assert all_files(tmp_path / "single") == all_files(randomised)
    remote = tmp_path / "dask"
    simulate_set(EUCLID, 6, remote, seed=SEED, config=config, batch_size=2, client=dask_client)
    expected = all_files(randomised)
    for name, data in all_files(remote).items():
        if name.endswith(".fits"):
            assert data == expected[name], name
    pd.testing.assert_frame_equal(catalog(remote), catalog(randomised).iloc[:6])
    simulate_set(EUCLID, 2, tmp_path / "other", seed=SEED + 1, config=config)
    assert (
        catalog(tmp_path / "other")["noise_scale"].tolist() != catalog(randomised)["noise_scale"][:2].tolist()
    )


def test_a_standard_run_merged_with_a_shifted_one_fills_the_standard_values(tmp_path):
    simulate_set(EUCLID, 2, tmp_path, seed=SEED)
    simulate_set(EUCLID, 2, tmp_path, seed=SEED, first_id=FIRST + 2, config=domain_config(noise_scale=(2, 2)))
    table = catalog(tmp_path)
    assert table.columns[-1] == "sim_kind"
    assert table["noise_scale"].tolist() == [1.0, 1.0, 2.0, 2.0]
    assert table["sky_offset"].tolist() == [0.0] * 4
    text = next(tmp_path.glob("image_catalog*.csv")).read_text()
    assert "noise_scale=2,2" in text


def test_population_ranges_reach_the_draws():
    from pipeline.simulate import draw_object
    from pipeline.simulate.draws import FieldSpec

    field = FieldSpec(half_width_arcsec=10.0, n_bands=4, masked=False)
    config = domain_config(
        theta_e_range=(2.5, 3.0),
        source_r_eff_range=(0.5, 0.6),
        lens_sersic_range=(1.0, 1.5),
        lens_fraction=1.0,
        failed_lens_fraction=0.0,
    )
    draws = [draw_object(i, 0, field, config) for i in range(FIRST, FIRST + 6)]
    for draw in draws:
        assert 2.5 <= draw.mass.theta_e <= 3.0
        assert 0.5 <= draw.source.smooth.r_eff <= 0.6
        assert 1.0 <= draw.central[0].n <= 1.5
    crowded = [
        draw_object(i, 0, field, domain_config(neighbour_scale=(4, 4))) for i in range(FIRST, FIRST + 6)
    ]
    standard = [draw_object(i, 0, field, SimulationConfig()) for i in range(FIRST, FIRST + 6)]
    n_crowded, n_standard = (sum(len(d.neighbours) for d in ds) for ds in (crowded, standard))
    assert 2.5 * n_standard < n_crowded < 6 * n_standard


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"noise_scale": (2.0, 1.0)}, "low <= high"),
        ({"flux_scale": (0.0, 1.0)}, "positive"),
        ({"theta_e_range": (1.0,)}, "pair"),
        ({"sky_offset": (float("nan"), 1.0)}, "finite"),
        ({"band_jitter": 1.5}, r"\[0, 1\]"),
        ({"lens_sersic_range": (0.1, 4.0)}, "lens_sersic_range"),
    ],
)
def test_bad_ranges_are_refused_with_the_fix(settings, match):
    with pytest.raises(SimulationError, match=match):
        SimulationConfig(**settings)


def test_presets_and_unknown_names_are_checked():
    with pytest.raises(SimulationError, match="randomised"):
        domain_config("wild")
    with pytest.raises(SimulationError, match="noise_scal"):
        domain_config(noise_scal=(1, 2))
    config = domain_config("randomised", noise_scale=[3, 3])
    assert config.noise_scale == (3.0, 3.0) and config.psf_scale == (0.67, 1.5)
    assert hash(config) == hash(domain_config("randomised", noise_scale=(3.0, 3.0)))


def test_command_line_flags_override_the_preset():
    import argparse

    from flows import simulate

    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(["out", "--n", "4", "--domain", "randomised", "--noise-scale", "3", "3"])
    assert args.domain == "randomised" and args.noise_scale == [3.0, 3.0] and args.psf_scale is None
    args = parser.parse_args(["out", "--n", "4", "--flux-scale", "1e12", "1e12", "--theta-e", "0.3", "3"])
    assert args.flux_scale == [1e12, 1e12] and args.theta_e_range == [0.3, 3.0] and args.domain == "default"


@pytest.mark.prefect
def test_simulate_flow_takes_the_domain_options(tmp_path, prefect_harness):
    from flows.simulate import simulate_flow

    simulate_flow(
        out=str(tmp_path), n_objects=2, in_process=True, domain="randomised", psf_scale=(1.5, 1.5), seed=3
    )
    table = catalog(tmp_path)
    assert (table["psf_scale"] == 1.5).all()
    assert table["noise_scale"].between(0.5, 2.0).all() and table["noise_scale"].nunique() == 2
    with pytest.raises(SimulationError, match="low <= high"):
        simulate_flow(out=str(tmp_path / "bad"), n_objects=1, in_process=True, noise_scale=(3, 1))
    assert not (tmp_path / "bad").exists()


def test_population_ranges_and_the_negative_mix_have_flags(tmp_path, prefect_harness):
    import argparse

    from flows.simulate import add_arguments, check, run, simulate_flow

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    population = ["--source-mag-range", "22.5", "22.5", "--negative-mix", "1", "0", "0", "0", "1"]
    population += ["--negative-scale", "0.5", "0.5", "--source-offset-range", "0.2", "0.9"]
    population += ["--negative-scale-fraction", "0.75", "--no-negative-scale-brightens"]
    population += ["--moffat-fraction", "0.5", "--moffat-beta-range", "3", "4"]
    population += ["--negative-mag-offset", "-1", "1.5"]
    args = parser.parse_args(
        [str(tmp_path), "--n", "8", "--in-process", "--domain", "randomised", "--seed", "5", *population]
    )
    assert run(args) == 0
    table = catalog(tmp_path)
    drawn = table[table["sim_kind"].isin(["lens", "weak_lens"])]
    assert len(drawn) and (table["sim_kind"].isin(["lens", "weak_lens", "elliptical", "companion"])).all()
    assert table["sim_kind"].isin(["elliptical", "companion"]).any() and (table["sim_kind"] == "lens").any()
    assert np.allclose(table.loc[table["sim_kind"] == "lens", "mag_source"], 22.5, atol=1e-4)
    header = next(line for line in (tmp_path / "image_catalog_sim.csv").open() if line.startswith("# run:"))
    assert "negative_scale=0.5,0.5 negative_scale_fraction=0.75 negative_mag_offset=-1,1.5 " in header
    assert "source_offset_range=0.2,0.9" in header
    assert "negative_mix=1,0,0,0,1" in header and "moffat_fraction=0.5 moffat_beta_range=3,4" in header
    with pytest.raises(SystemExit):
        parser.parse_args([str(tmp_path), "--n", "1", "--negative-mix", "1", "0"])
    # a look-alike setting on a set that draws no look-alike is refused before any work, naming the fix
    for setting in (["--negative-mag-offset", "0", "1"], ["--negative-scale", "2", "2"]):
        nothing = parser.parse_args(
            [str(tmp_path / "none"), "--n", "4", "--negative-mix", "1", "0", "0", "0", *setting]
        )
        with pytest.raises(SimulationError, match=r"--negative-mix 1,0,0,0,0 draws none of them: give one"):
            check(nothing)
        lenses_only = parser.parse_args(
            [str(tmp_path / "none"), "--n", "4", "--lens-fraction", "1", *setting]
        )
        no_negatives = r"--lens-fraction 1 draws no non-lens: lower --lens-fraction"
        with pytest.raises(SimulationError, match=no_negatives):
            check(lenses_only)
        with pytest.raises(SimulationError, match=r"lens_fraction 1 draws no non-lens"):
            simulate_flow(
                out=str(tmp_path / "none"),
                n_objects=4,
                in_process=True,
                lens_fraction=1.0,
                negative_scale=(2, 2),
            )
        assert not (tmp_path / "none").exists()
    check(
        parser.parse_args(
            [
                str(tmp_path / "fresh"),
                "--n",
                "4",
                "--domain",
                "randomised",
                "--negative-mix",
                "1",
                "0",
                "0",
                "0",
            ]
        )
    )
    flags = {"": None, "--negative-scale-brightens": True, "--no-negative-scale-brightens": False}
    for flag, value in flags.items():
        parsed = parser.parse_args([str(tmp_path), "--n", "1", *([flag] if flag else [])])
        assert parsed.negative_scale_brightens is value


def test_a_scale_given_under_the_randomised_preset_says_what_it_replaces(capsys):
    import argparse

    from flows.simulate import add_arguments, check

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["out", "--n", "1", "--domain", "randomised"]
    check(parser.parse_args([*base, "--negative-scale", "1.5", "4"]))
    note = capsys.readouterr().err
    assert note.startswith("note: --negative-scale replaces the randomised preset's resizing")
    assert "add --negative-scale-fraction 0.5 --negative-scale-brightens to keep the preset's" in note
    check(parser.parse_args([*base, "--negative-scale", "1.5", "4", "--negative-scale-fraction", "0.5"]))
    note = capsys.readouterr().err
    assert "add --negative-scale-brightens to keep" in note
    assert "now fluxes kept;" in note and "every one resized" not in note  # the share was given
    for quiet in (
        ["--negative-scale", "1", "1"],
        [],
        ["--negative-scale", "2", "3", "--no-negative-scale-brightens", "--negative-scale-fraction", "1"],
    ):
        check(parser.parse_args([*base, *quiet]))
        assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"negative_mix": (math.nan, 1, 1, 1)}, "negative_mix must be 5 finite non-negative weights"),
        ({"negative_mix": (math.inf, 1, 1, 1)}, "negative_mix must be 5 finite non-negative weights"),
        ({"negative_mix": (1e308, 1e308, 1, 1)}, "with a positive, finite sum"),
        ({"negative_mix": (0, 0, 0, 0)}, "with a positive, finite sum"),
        ({"source_mag_range": (1e30, 1e31)}, r"source_mag_range must lie within \[10, 35\] AB mag"),
        ({"source_mag_range": (-50, -40)}, r"source_mag_range must lie within \[10, 35\] AB mag"),
        ({"source_r_eff_range": (1e6, 1e7)}, r"source_r_eff_range must lie within \[0.005, 5\] arcsec"),
        ({"source_r_eff_range": (0, 0)}, "source_r_eff_range is a positive factor or size; got low = 0"),
        ({"theta_e_range": (0.3, 300)}, r"theta_e_range must lie within \[0.01, 30\] arcsec"),
        (
            {"flux_scale": (1e300, 1e300)},
            r"flux_scale must lie within \[1e-20, 1e\+20\] \(pixels are float32\)",
        ),
        ({"flux_scale": (1e-45, 1e-45)}, r"flux_scale must lie within \[1e-20, 1e\+20\]"),
        ({"noise_scale": (1, 1e300)}, r"noise_scale must lie within \[1e-12, 1000\]"),
        ({"psf_scale": (1e-5, 1)}, r"psf_scale must lie within \[0.1, 10\]"),
        ({"sky_offset": (-1e6, 1e6)}, r"sky_offset must lie within \[-1000, 1000\] sigma"),
    ],
)
def test_implausible_or_non_finite_population_settings_are_refused(override, message):
    """Each crashed mid-set (NaN probabilities, log of a negative flux) or wrote no galaxy."""
    with pytest.raises(SimulationError, match=message):
        domain_config("randomised", **override)


def test_bad_ranges_fail_in_one_line_before_prefect_starts(tmp_path, monkeypatch, capsys):
    import flows.prefect_api
    from flows.cli import main

    def no_prefect(*args, **kwargs):
        raise AssertionError("the Prefect API was entered before the ranges were checked")

    monkeypatch.setattr(flows.prefect_api, "prefect_api", no_prefect)
    out = tmp_path / "set"
    code = main(
        ["simulate", str(out), "--n", "4", "--domain", "randomised", "--negative-mix", "nan", "1", "1", "1"]
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("lenshunt simulate: error: --negative-mix must be 5 finite non-negative")
    assert not out.exists()
