"""bench.thirdsim: the independent Euclid-like simulator writes a real euclid-sglc2 set."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pipeline.sources.labels import labels_from_catalog, read_label_catalog
from schemas.layout import load_layout

ROOT = Path(__file__).resolve().parents[1]
N, SEED, FIRST_ID = 16, 7, 4200
BANDS = {"VIS": (200, 0.1), "Y": (66, 0.3), "J": (66, 0.3), "H": (66, 0.3)}


def _env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _simulate(out: Path, n: int, seed: int, first_id: int, workers: int = 1) -> None:
    cmd = [sys.executable, "-m", "bench.thirdsim", str(out), "--n", str(n), "--seed", str(seed)]
    cmd += ["--first-id", str(first_id), "--workers", str(workers)]
    subprocess.run(cmd, check=True, cwd=ROOT, env=_env(), capture_output=True, timeout=300)


def _path(root: Path, band: str, object_id: int) -> Path:
    return root / f"Public/EUC_{band}/imageEUC_{band}-{object_id:06d}.fits"


@pytest.fixture(scope="module")
def sim_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("thirdsim") / "set"
    _simulate(out, N, SEED, FIRST_ID)
    return out


def test_files_shapes_and_headers(sim_set):
    for object_id in range(FIRST_ID, FIRST_ID + N):
        centres = []
        for band, (size, scale) in BANDS.items():
            with fits.open(_path(sim_set, band, object_id)) as hdul:
                data, header = hdul[0].data, hdul[0].header
                assert data.shape == (size, size)
                assert (
                    data.dtype.byteorder in (">", "=") and data.dtype.kind == "f" and data.dtype.itemsize == 4
                )
                assert np.isfinite(data).all()
                assert header["BUNIT"] == "ADU"
                assert 20 < header["MAGZP"] < 40
                assert "thirdsim" in header["TELESCOP"]
                wcs = WCS(header)
                assert wcs.has_celestial
                scales = np.abs(np.diag(wcs.pixel_scale_matrix)) * 3600
                assert scales == pytest.approx([scale, scale])
                ra, dec = wcs.all_pix2world([[(size - 1) / 2, (size - 1) / 2]], 0)[0]
                assert (ra, dec) == pytest.approx((header["CRVAL1"], header["CRVAL2"]))
                centres.append((ra, dec))
        assert np.allclose(centres, centres[0])  # the four bands show the same sky


def test_catalog_read_by_lenshunt_and_both_labels(sim_set):
    layout = load_layout("euclid-sglc2")
    path = sim_set / "image_catalog_thirdsim.csv"
    text = path.read_text()
    assert f"# seed: {SEED}" in text and "# column ein_area: [arcsec2]" in text
    table = read_label_catalog(layout, path)
    assert sorted(table.index) == list(range(FIRST_ID, FIRST_ID + N))
    labels = labels_from_catalog(layout, table, path)
    assert set(labels.unique()) == {0, 1}
    lens = table["kind"] == "lens"
    assert (table.loc[~lens, ["n_source_im", "mag_eff", "n_pix_source"]] == 0).all().all()
    assert table.loc[~lens, "ein_area"].isna().all()
    assert np.allclose(table.loc[lens, "ein_area"], np.pi * table.loc[lens, "theta_e"] ** 2, rtol=1e-4)
    assert (labels[labels == 1].index.isin(table.index[lens])).all()
    for column in ("z_lens", "z_source", "mag_lens", "mag_source", "theta_e"):
        assert column in table.columns
    assert table["mag_eff"].dtype.kind == "f" and table["n_pix_source"].dtype.kind in "iu"


def test_same_seed_identical_other_seed_differs(sim_set, tmp_path):
    # a subset of the ids with two workers: the same bytes (per-object seeds)
    again, other = tmp_path / "again", tmp_path / "other"
    _simulate(again, 3, SEED, FIRST_ID + 2, workers=2)
    _simulate(other, 3, SEED + 1, FIRST_ID + 2)
    for object_id in range(FIRST_ID + 2, FIRST_ID + 5):
        for band in BANDS:
            assert filecmp.cmp(_path(sim_set, band, object_id), _path(again, band, object_id), shallow=False)
            assert not filecmp.cmp(
                _path(sim_set, band, object_id), _path(other, band, object_id), shallow=False
            )
    rows = {
        line.split(",")[0]: line
        for line in (sim_set / "image_catalog_thirdsim.csv").read_text().splitlines()
        if not line.startswith("#")
    }
    for line in (again / "image_catalog_thirdsim.csv").read_text().splitlines():
        if not line.startswith("#"):
            assert rows[line.split(",")[0]] == line


def test_lenshunt_ingests_all_with_labels(sim_set, tmp_path):
    import xarray as xr

    store = tmp_path / "store.zarr"
    lenshunt = Path(sys.executable).parent / "lenshunt"
    cmd = [str(lenshunt), "ingest", str(sim_set), str(store), "--layout", "euclid-sglc2", "--workers", "1"]
    subprocess.run(cmd, check=True, cwd=ROOT, env=_env(), capture_output=True, timeout=600)
    ds = xr.open_zarr(store, consolidated=False)
    assert ds.sizes["object"] == N
    assert sorted(ds["object_id"].values.tolist()) == list(range(FIRST_ID, FIRST_ID + N))
    labels = ds["label"].values
    assert set(labels.tolist()) == {0, 1}
    assert int(ds["flags"].values.max()) == 0
    assert np.allclose(ds["band_pixel_scale"].values, [0.1, 0.3, 0.3, 0.3], rtol=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n must be at least 1"),
        (["--n", "3", "--first-id", "-5"], "--first-id must be at least 0"),
        (["--n", "3", "--seed", "-1"], "--seed must be at least 0"),
        (["--n", "3", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "set"
    done = subprocess.run(
        [sys.executable, "-m", "bench.thirdsim", str(out), *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and message in done.stderr
    assert not out.exists()


def test_an_existing_set_is_not_overwritten(sim_set, tmp_path):
    before = sorted(p.name for p in sim_set.rglob("*"))
    done = subprocess.run(
        [sys.executable, "-m", "bench.thirdsim", str(sim_set), "--n", "2", "--seed", "3"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "is not an empty directory" in done.stderr
    assert sorted(p.name for p in sim_set.rglob("*")) == before


def test_variants_draw_the_same_scenes_with_one_choice_changed(sim_set, tmp_path, capsys):
    """bench.thirdsim_variants (bench/RESULTS.md: what in thirdsim costs the AUROC): ``none`` is the set
    bit for bit; each other variant changes what it names and puts thirdsim's functions back."""
    import pandas as pd

    from bench import thirdsim_variants
    from bench.thirdsim import nonlenses, population
    from bench.thirdsim import simulate as thirdsim

    def catalog(root: Path) -> pd.DataFrame:
        return pd.read_csv(root / "image_catalog_thirdsim.csv", comment="#").set_index("ID")

    def vis_sum(root: Path, object_id: int) -> float:
        return float(fits.getdata(_path(root, "VIS", object_id)).astype(np.float64).sum())

    before = (
        population.etg_components,
        nonlenses.etg_components,
        population.clumpy_components,
        thirdsim.observe,
    )
    n = 6
    for variant in tuple(thirdsim_variants.VARIANTS):
        args = [str(tmp_path / variant), "--variant", variant, "--n", str(n), "--seed", str(SEED)]
        assert thirdsim_variants.main([*args, "--first-id", str(FIRST_ID)]) == 0
    assert (
        population.etg_components,
        nonlenses.etg_components,
        population.clumpy_components,
        thirdsim.observe,
    ) == before
    kinds = catalog(sim_set)["kind"].iloc[:n]
    assert "lens" in set(kinds) and set(kinds) != {"lens"}, "the first objects should hold both"
    for variant in tuple(thirdsim_variants.VARIANTS):
        assert (catalog(tmp_path / variant)["kind"] == kinds).all()  # the same scenes
    ids = list(kinds.index)
    for object_id in ids:
        for band in BANDS:
            assert filecmp.cmp(
                _path(sim_set, band, object_id), _path(tmp_path / "none", band, object_id), shallow=False
            )
        assert not filecmp.cmp(
            _path(sim_set, "VIS", object_id),
            _path(tmp_path / "gaussian-psf", "VIS", object_id),
            shallow=False,
        )
    # brighter lensed sources: more light in every lens; non-lenses (no lensed source) are unchanged
    for object_id, kind in kinds.items():
        bright = tmp_path / "bright-sources"
        if kind == "lens":
            assert vis_sum(bright, object_id) > vis_sum(sim_set, object_id)
            # documented: the catalog keeps the magnitude drawn before the brightening
            assert (
                catalog(bright).loc[object_id, "mag_source"] == catalog(sim_set).loc[object_id, "mag_source"]
            )
        else:
            assert filecmp.cmp(
                _path(sim_set, "VIS", object_id), _path(bright, "VIS", object_id), shallow=False
            )
    for variant in ("single-sersic", "no-gradient"):  # early types in every scene here: each changed
        for i in ids:
            assert not filecmp.cmp(_path(sim_set, "H", i), _path(tmp_path / variant, "H", i), shallow=False)
    for object_id, kind in kinds.items():  # sources without knots: the lenses alone change
        same = filecmp.cmp(
            _path(sim_set, "VIS", object_id),
            _path(tmp_path / "smooth-sources", "VIS", object_id),
            shallow=False,
        )
        assert same == (kind != "lens")
    # bad arguments: one line, nothing written (review: tracebacks, and a set written into another)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    for args, message in (
        (["--n", "0"], "--n must be at least 1"),
        (["--n", "2", "--seed", "-1"], "--seed must be at least 0"),
        (["--n", "2", "--first-id", "-5"], "--first-id must be at least 0"),
    ):
        with pytest.raises(SystemExit):
            thirdsim_variants.main([str(tmp_path / "bad"), "--variant", "none", *args])
        assert message in capsys.readouterr().err and not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):
        thirdsim_variants.main([str(tmp_path / "taken"), "--variant", "none", "--n", "1"])
    assert "is not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["keep.txt"]
