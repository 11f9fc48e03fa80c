"""The independent simulator (bench/othersim): exact euclid-sglc2 files, read by the real ingest.

A small set is written through the command-line entry point, ingested with the pipeline's own
ingest on the session's real Dask cluster, and checked against its catalog; the lens equation is
checked against lenstronomy (which othersim does not use).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import fitsio
import numpy as np
import pandas as pd
import pytest

from bench import othersim
from pipeline.store.ingestion import ingest
from pipeline.store.zarr_store import open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
FIRST = 200000
N = 24
SEED = 5


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def robust_sigma(image: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(image - np.median(image))))


def catalog(root: Path) -> pd.DataFrame:
    (path,) = sorted(root.glob(EUCLID.catalog.pattern))
    return pd.read_csv(path, comment=EUCLID.catalog.comment)


@pytest.fixture(scope="module")
def other_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("othersim")
    assert othersim.main([str(root), "--n", str(N), "--seed", str(SEED)]) == 0
    return root


def test_files_are_exactly_the_euclid_layout(other_set):
    expected = {band.path_for(i, EUCLID.id_digits) for i in range(FIRST, FIRST + N) for band in EUCLID.bands}
    expected.add(othersim.CATALOG_NAME)
    assert set(all_files(other_set)) == expected
    from astropy.io import fits
    from astropy.wcs import WCS

    for band in EUCLID.bands:
        path = other_set / band.path_for(FIRST + 3, EUCLID.id_digits)
        image, header = fitsio.read(path, header=True)
        assert image.shape == band.shape and header["BITPIX"] == -32 and header["NAXIS"] == 2
        assert header["MAGZP"] == 30.0 and header["BUNIT"] == "counts"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            wcs = WCS(fits.getheader(path))
        assert wcs.has_celestial
        assert wcs.proj_plane_pixel_scales()[0].to_value("arcsec") == pytest.approx(band.pixel_scale_arcsec)
        centre = wcs.pixel_to_world((band.shape[1] - 1) / 2, (band.shape[0] - 1) / 2)
        assert centre.ra.deg == pytest.approx(header["RA"]) and centre.dec.deg == pytest.approx(header["DEC"])


def test_real_ingest_reads_it_with_the_catalog_labels(other_set, tmp_path, dask_client):
    report = ingest(EUCLID, other_set, tmp_path / "store.zarr", dask_client)
    assert (report.n_discovered, report.n_added, report.n_flagged) == (N, N, 0)
    store = open_store(tmp_path / "store.zarr")
    ids = store["object_id"].values
    np.testing.assert_array_equal(ids, np.arange(FIRST, FIRST + N))
    assert store["vis"].shape[-2:] == (200, 200) and store["nir"].shape[-2:] == (66, 66)
    table = catalog(other_set).set_index("ID").loc[ids]
    rule = table.eval(EUCLID.catalog.label_rule).astype(int).to_numpy()
    np.testing.assert_array_equal(store["label"].values, rule)
    assert 0 < rule.sum() < N
    # labels follow what was drawn: only lens draws pass the rule, non-lenses have no source
    assert set(table.index[rule == 1]) <= set(table.index[table["kind"] == "lens"])
    negatives = table[table["kind"] != "lens"]
    assert (negatives[["n_source_im", "mag_eff", "n_pix_source"]] == 0).all().all()
    assert set(negatives["kind"]) <= set(othersim.KINDS)
    # the store holds the files' pixels
    row = 7
    vis = fitsio.read(other_set / EUCLID.band("VIS").path_for(FIRST + row, 6)).astype(np.float32)
    np.testing.assert_array_equal(store["vis"][row, 0].values, vis)
    assert store["ra"].values[row] == pytest.approx(
        fitsio.read_header(other_set / EUCLID.band("H").path_for(FIRST + row, 6))["RA"]
    )


def test_lensed_light_is_in_the_pixels_of_every_labelled_lens(other_set):
    settings = othersim.Settings(seed=SEED)
    table = catalog(other_set).set_index("ID")
    lenses = table.index[table.eval(EUCLID.catalog.label_rule)]
    assert len(lenses) >= 3
    for object_id in lenses:
        obj = othersim.draw_object(object_id, settings)
        without, _, facts = othersim.render({**obj, "lens": None, "source": None}, settings)
        written, header = fitsio.read(other_set / EUCLID.band("VIS").path_for(object_id, 6), header=True)
        excess = written.astype(np.float64) - without["VIS"]
        assert np.count_nonzero(excess > header["SKYSIG"]) > 20, object_id
        assert excess.sum() > 0
    elliptical = table.index[table["kind"] == "elliptical"][0]
    obj = othersim.draw_object(elliptical, settings)
    again, _, _ = othersim.render(obj, settings)
    np.testing.assert_array_equal(
        again["VIS"], fitsio.read(other_set / EUCLID.band("VIS").path_for(elliptical, 6))
    )


def test_same_seed_same_bytes_for_any_number_of_jobs(other_set, tmp_path):
    assert othersim.main([str(tmp_path / "two"), "--n", str(N), "--seed", str(SEED), "--jobs", "2"]) == 0
    assert all_files(tmp_path / "two") == all_files(other_set)
    assert othersim.main([str(tmp_path / "other"), "--n", "1", "--seed", str(SEED + 1)]) == 0
    name = EUCLID.band("VIS").path_for(FIRST, 6)
    assert all_files(tmp_path / "other")[name] != all_files(other_set)[name]


def test_units_noise_and_psf_options(other_set, tmp_path):
    n = 4
    for name, extra in {
        "flux": ["--units", "flux"],
        "noisy": ["--noise", "3"],
        "blurred": ["--psf-scale", "1.5"],
    }.items():
        assert othersim.main([str(tmp_path / name), "--n", str(n), "--seed", str(SEED), *extra]) == 0
    for object_id in range(FIRST, FIRST + n):
        for band in EUCLID.bands:
            path = band.path_for(object_id, 6)
            counts, header = fitsio.read(other_set / path, header=True)
            flux, flux_header = fitsio.read(tmp_path / "flux" / path, header=True)
            np.testing.assert_allclose(
                counts, flux.astype(np.float64) * 1e12, rtol=1e-5, atol=1e-6 * np.abs(counts).max()
            )
            assert flux_header["MAGZP"] == 0.0 and flux_header["BUNIT"] == "flux"
            noisy, noisy_header = fitsio.read(tmp_path / "noisy" / path, header=True)
            assert noisy_header["SKYSIG"] == pytest.approx(3 * header["SKYSIG"], rel=1e-6)
            assert robust_sigma(noisy) == pytest.approx(3 * robust_sigma(counts), rel=0.15)
            blurred_header = fitsio.read_header(tmp_path / "blurred" / path)
            assert blurred_header["PSFFWHM"] == pytest.approx(1.5 * header["PSFFWHM"], rel=1e-4)
    assert catalog(tmp_path / "flux")["mag_lens"].tolist() == catalog(other_set)["mag_lens"][:n].tolist()


def test_lens_equation_agrees_with_lenstronomy():
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver
    from lenstronomy.Util.param_util import phi_q2_ellipticity

    model = LensModel(["SIE", "SHEAR"])
    solver = LensEquationSolver(model)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(12):
        theta_e, q, phi = rng.uniform(0.4, 2.5), rng.uniform(0.45, 0.95), rng.uniform(0, math.pi)
        gamma1, gamma2 = rng.uniform(-0.07, 0.07, 2)
        lens = {
            "theta_e": theta_e,
            "q": q,
            "phi": phi,
            "x": 0.02,
            "y": -0.03,
            "gamma1": gamma1,
            "gamma2": gamma2,
        }
        e1, e2 = phi_q2_ellipticity(phi, q)
        kwargs = [
            {"theta_E": theta_e, "e1": e1, "e2": e2, "center_x": 0.02, "center_y": -0.03},
            {"gamma1": gamma1, "gamma2": gamma2, "ra_0": 0.0, "dec_0": 0.0},
        ]
        x, y = rng.uniform(-3, 3, 2)
        np.testing.assert_allclose(
            othersim.deflection(np.array(x), np.array(y), lens), model.alpha(x, y, kwargs), atol=1e-8
        )
        radius, angle = theta_e * rng.uniform(0, 1.3), rng.uniform(0, 2 * math.pi)
        beta = (0.02 + radius * math.cos(angle), -0.03 + radius * math.sin(angle))
        xs, ys = solver.image_position_from_source(
            *beta, kwargs, min_distance=0.02, search_window=20, precision_limit=1e-8, num_iter_max=50
        )
        expected = int(np.sum(np.abs(model.magnification(xs, ys, kwargs)) > 0.1))
        counts.append(expected)
        assert othersim.count_images(lens, beta, 10.0) == expected
    assert {1, 2} <= set(counts)


def test_bad_requests_fail_clearly(other_set, capsys):
    assert othersim.main([str(other_set), "--n", "2"]) == 2
    assert "new directory" in capsys.readouterr().err
    assert othersim.main([str(other_set / "x"), "--n", "2", "--noise", "0"]) == 2
    with pytest.raises(SystemExit):
        othersim.main([str(other_set / "y"), "--n", "2", "--units", "adu"])
