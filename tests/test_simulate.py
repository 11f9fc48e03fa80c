"""The challenge-format simulator: real FITS files and catalogs on disk, in-process and on Dask."""

from __future__ import annotations

import errno
import math
import tempfile
import warnings
from pathlib import Path

import fitsio
import numpy as np
import pandas as pd
import pytest

from pipeline.simulate import (
    CHALLENGE_COLUMNS,
    LENS_RULE,
    SimulationConfig,
    SimulationError,
    default_band_models,
    simulate_set,
)
from pipeline.simulate.catalog import default_catalog_name
from pipeline.simulate.draws import MassDraw, Sed, SersicDraw, SourceDraw
from pipeline.simulate.instrument import Grid
from schemas.layout import load_layout, parse_layout

LAYOUTS = ("euclid-sglc2", "sglc1-space", "sglc1-ground")
FIRST = 100000


def read_catalog(layout_name: str, root: Path) -> pd.DataFrame:
    layout = load_layout(layout_name)
    (path,) = sorted(root.glob(layout.catalog.pattern))
    return pd.read_csv(path, comment=layout.catalog.comment)


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def euclid_set(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("euclid")
    summary = simulate_set("euclid-sglc2", 12, root, seed=3, batch_size=5)
    return root, summary


@pytest.mark.parametrize("layout_name", LAYOUTS)
def test_files_are_exactly_the_layout_paths_with_right_headers(layout_name, tmp_path, euclid_set):
    layout = load_layout(layout_name)
    if layout_name == "euclid-sglc2":
        root, summary = euclid_set
        ids = range(FIRST, FIRST + 12)
    else:
        ids = range(FIRST, FIRST + 3)
        summary = simulate_set(layout, 3, tmp_path, seed=1)
        root = tmp_path
    expected = {band.path_for(i, layout.id_digits) for i in ids for band in layout.bands}
    expected.add(default_catalog_name(layout))
    assert set(all_files(root)) == expected
    assert summary.catalog_path == root / default_catalog_name(layout)
    assert summary.n_objects == len(ids)
    models = default_band_models(layout)
    for band in layout.bands:
        image, header = fitsio.read(root / band.path_for(ids[0], layout.id_digits), header=True)
        assert image.shape == band.shape
        assert header["BITPIX"] == -32
        assert header["NAXIS"] == 2
        assert header["CTYPE1"] == "RA---TAN"
        assert header["CDELT2"] == pytest.approx(band.pixel_scale_arcsec / 3600.0)
        assert header["CDELT1"] == pytest.approx(-band.pixel_scale_arcsec / 3600.0)
        assert header["CRPIX1"] == (band.shape[1] + 1) / 2
        if layout.wcs_position:  # a WCS centred on the object
            ra_deg, dec_deg = header["CRVAL1"], header["CRVAL2"]
        else:  # the challenge's placeholder (test_simulate_placeholder): the position is the cards'
            assert (header["CRVAL1"], header["CRVAL2"]) == (0.0, 0.0)
            spec = layout.coordinates[0]
            ra_deg, dec_deg = (math.degrees(header[key]) for key in (spec.ra, spec.dec))
        assert 0.0 <= ra_deg < 360.0 and -90.0 <= dec_deg <= 90.0
        for spec in layout.coordinates:
            scale = math.radians(1.0) if spec.unit == "rad" else 1.0
            assert header[spec.ra] == pytest.approx(ra_deg * scale, rel=1e-12)
            assert header[spec.dec] == pytest.approx(dec_deg * scale, rel=1e-12)
        finite = image[image != (layout.masked_value or np.inf)]
        assert np.isfinite(finite).all()
        noise = 1.4826 * np.median(np.abs(finite - np.median(finite)))
        # flux-like values: sky noise ~1e-12, bright pixels ~1e-11..1e-9, like the real challenge files
        assert 1e-13 < noise < 2e-11, noise
        assert noise == pytest.approx(models[band.name].noise_sigma, rel=0.5)
        assert 1e-11 < finite.max() < 1e-7


def test_header_parses_as_a_celestial_wcs(euclid_set):
    from astropy.io import fits
    from astropy.wcs import WCS

    root, _ = euclid_set
    band = load_layout("euclid-sglc2").band("VIS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        header = fits.getheader(root / band.path_for(FIRST, 6))
        wcs = WCS(header)
    centre = wcs.pixel_to_world((band.shape[1] - 1) / 2, (band.shape[0] - 1) / 2)
    assert centre.ra.deg == pytest.approx(header["CRVAL1"])
    assert centre.dec.deg == pytest.approx(header["CRVAL2"])
    assert wcs.proj_plane_pixel_scales()[0].to_value("arcsec") == pytest.approx(0.1)


def test_euclid_catalog_has_challenge_columns_and_both_labels(euclid_set):
    root, summary = euclid_set
    layout = load_layout("euclid-sglc2")
    assert summary.catalog_path.name == "image_catalog_sim.csv"
    header_lines = [line for line in summary.catalog_path.read_text().splitlines() if line.startswith("#")]
    assert any(line.startswith("# column mag_eff:") for line in header_lines)
    table = read_catalog("euclid-sglc2", root)
    assert list(table.columns) == [*CHALLENGE_COLUMNS, "sim_kind"]
    assert table["ID"].tolist() == list(range(FIRST, FIRST + 12))
    lenses = table.query(layout.catalog.label_rule)
    assert 0 < len(lenses) < len(table)
    assert summary.n_lenses == len(lenses)
    # labels follow the rule, and the rule follows the physics that was drawn
    drawn_lens = table["sim_kind"].isin(["lens", "weak_lens"])
    assert (table.loc[~drawn_lens, ["n_source_im", "mag_eff", "n_pix_source", "n_sources"]] == 0).all().all()
    assert set(lenses["sim_kind"]) <= {"lens", "weak_lens"}
    lensed = table[drawn_lens]
    assert (lensed["n_sources"] == 1).all()
    assert (lensed["ein_area"] > math.pi * 0.5**2 * 0.99).all()
    assert (lensed["halo_mass"] > 1e11).all() and (table["star_mass"] > 1e8).all()
    multiple = lensed[lensed["n_source_im"] >= 2]
    assert (multiple["mag_eff"] > 1.6).all()


def test_sglc1_keys_have_is_lens_following_the_rule(tmp_path):
    summary = simulate_set("sglc1-space", 10, tmp_path, seed=3, lens_fraction=0.6)
    table = read_catalog("sglc1-space", tmp_path)
    assert summary.catalog_path.name == "sim_keys.csv"
    assert list(table.columns[:2]) == ["ID", "is_lens"]
    assert table["is_lens"].tolist() == table.eval(LENS_RULE).astype(int).tolist()
    assert 0 < table["is_lens"].sum() < len(table)
    assert summary.n_lenses == int(table["is_lens"].sum())


def test_lenses_are_counted_by_a_bare_column_rule_as_ingest_labels_them(tmp_path):
    """Trial: rule ``is_lens`` printed "80 lenses by the layout's rule" for 80 objects with 25 lenses."""
    from pipeline.sources.labels import load_labels

    data = load_layout("sglc1-space").model_dump(mode="json")
    data["catalog"]["label_rule"] = "is_lens"
    layout = parse_layout(data)
    summary = simulate_set(layout, 8, tmp_path, seed=3, lens_fraction=0.5)
    table = read_catalog("sglc1-space", tmp_path)
    labels = load_labels(layout, table["ID"].to_numpy(), tmp_path).values
    assert 0 < summary.n_lenses == int(table["is_lens"].sum()) == int((labels == 1).sum()) < 8
    lenses = f"{summary.n_lenses} lens{'es' * (summary.n_lenses != 1)}"  # trial: "1 lenses"
    assert f"{lenses} by the layout's rule" in summary.summary()


def test_the_summary_rate_is_never_zero_for_objects_simulated(tmp_path):
    """A slow simulation said ``0.0 objects/s`` (ingest and score said 0 once: one rate for all)."""
    from dataclasses import replace

    summary = simulate_set("sglc1-space", 2, tmp_path, seed=1)
    assert "1 lens by the layout's rule): " in replace(summary, n_lenses=1).summary()  # trial: "1 lenses"
    assert "2 lenses by the layout's rule): " in replace(summary, n_lenses=2).summary()
    slow = replace(summary, seconds=100.0).summary()
    assert "): 0.02 objects/s over 100.0 s on " in slow, slow
    assert "objects/s" not in replace(summary, n_objects=0, seconds=3.0).summary()


def test_weak_lens_draws_can_fail_the_rule(tmp_path):
    config = SimulationConfig(failed_lens_fraction=1.0)
    simulate_set("sglc1-space", 6, tmp_path, seed=5, lens_fraction=1.0, config=config)
    table = read_catalog("sglc1-space", tmp_path)
    assert set(table["sim_kind"]) == {"weak_lens"}
    assert (table["is_lens"] == 0).sum() >= 4


def test_same_seed_same_bytes_whatever_the_batches(tmp_path, euclid_set):
    root, _ = euclid_set
    simulate_set("euclid-sglc2", 12, tmp_path / "one", seed=3, batch_size=1)
    assert all_files(tmp_path / "one") == all_files(root)
    simulate_set("euclid-sglc2", 2, tmp_path / "other", seed=4)
    other = all_files(tmp_path / "other")
    name = "Public/EUC_VIS/imageEUC_VIS-100000.fits"
    assert other[name] != all_files(root)[name]


def test_a_folder_named_with_cfitsio_syntax_gets_the_same_files(tmp_path, euclid_set, monkeypatch):
    """cfitsio reads (...) and [...] in a file name as its extended syntax: the set was not written
    (new-user trial: "FITSIO status = 366: file open failed" for a folder a(b))."""
    root, _ = euclid_set
    simulate_set("euclid-sglc2", 12, tmp_path / "run(2) [v1]", seed=3)
    assert all_files(tmp_path / "run(2) [v1]") == all_files(root)
    scratch = tmp_path / "tmp(1)"  # review: a TMPDIR of that syntax too
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    simulate_set("euclid-sglc2", 12, tmp_path / "run(3)", seed=3)
    assert all_files(tmp_path / "run(3)") == all_files(root)


def test_dask_run_equals_in_process_run(tmp_path, dask_client):
    local = simulate_set("sglc1-ground", 5, tmp_path / "local", seed=2)
    remote = simulate_set("sglc1-ground", 5, tmp_path / "dask", seed=2, client=dask_client, batch_size=2)
    assert remote.n_workers == 2
    assert all_files(tmp_path / "dask") == all_files(tmp_path / "local")
    assert remote.n_lenses == local.n_lenses


def test_new_ids_merge_into_the_catalog_and_clashes_are_refused(tmp_path):
    simulate_set("sglc1-space", 3, tmp_path, seed=0)
    simulate_set("sglc1-space", 2, tmp_path, seed=0, first_id=FIRST + 3)
    table = read_catalog("sglc1-space", tmp_path)
    assert table["ID"].tolist() == list(range(FIRST, FIRST + 5))
    catalog = tmp_path / "sim_keys.csv"
    assert catalog.read_text().count("# run:") == 2
    before = all_files(tmp_path)
    with pytest.raises(SimulationError, match="--first-id 100005"):
        simulate_set("sglc1-space", 2, tmp_path, seed=9, first_id=FIRST + 4)
    assert all_files(tmp_path) == before
    simulate_set("sglc1-space", 2, tmp_path, seed=9, first_id=FIRST + 4, overwrite=True)
    table = read_catalog("sglc1-space", tmp_path)
    assert table["ID"].tolist() == list(range(FIRST, FIRST + 6))
    assert table["ID"].is_unique
    # new-user trial: a catalog a spreadsheet saved again (Windows-1252, semicolons) was a traceback
    saved = catalog.read_text().replace(",", ";") + "caf\u00e9;1\n"
    catalog.write_bytes(saved.encode("cp1252"))
    with pytest.raises(SimulationError, match=r"sim_keys.csv is unreadable \(UnicodeDecodeError: .*move it"):
        simulate_set("sglc1-space", 1, tmp_path, seed=9, first_id=FIRST + 6)
    catalog.write_text(catalog.read_bytes().decode("cp1252").replace("caf\u00e9;1\n", ""))
    with pytest.raises(SimulationError, match=r"is not one lenshunt simulate writes .* simulate into a new"):
        simulate_set("sglc1-space", 1, tmp_path, seed=9, first_id=FIRST + 6)


def test_a_file_where_the_output_folder_goes_is_one_line_before_prefect_starts(tmp_path, monkeypatch, capsys):
    """Trial: refused after Prefect had started, in ``/x: File exists; it already exists; ...``."""
    import flows.prefect_api
    from flows.cli import main

    def no_prefect(*args, **kwargs):
        raise AssertionError("the Prefect API was entered before the output folder was checked")

    monkeypatch.setattr(flows.prefect_api, "prefect_api", no_prefect)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    below = a_file / "sub"
    expected = {
        a_file: f"output folder {a_file} is a file, not a directory; pass a directory path",
        below: f"output folder {below}: {a_file} is a file, not a directory; choose another path",
    }
    for out, message in expected.items():
        assert main(["simulate", str(out), "--layout", "sglc1-space", "--n", "2"]) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert lines == [f"lenshunt simulate: error: {message}"]
    assert a_file.read_text() == "mine"


def test_an_existing_path_in_the_way_is_said_once():
    from flows.failures import one_line

    assert one_line(FileExistsError(errno.EEXIST, "File exists", "/out/x")) == (
        "/out/x: File exists; something is in the way there; choose a new path or remove it"
    )


def test_ids_already_in_the_catalog_are_one_line_before_prefect_starts(tmp_path, monkeypatch, capsys):
    """Trial: the refusal came after Prefect had started, printed twice (an ERROR line, then the line)."""
    import flows.prefect_api
    from flows.cli import main

    simulate_set("sglc1-space", 3, tmp_path, seed=0)
    before = all_files(tmp_path)

    def no_prefect(*args, **kwargs):
        raise AssertionError("the Prefect API was entered before the catalog was checked")

    monkeypatch.setattr(flows.prefect_api, "prefect_api", no_prefect)
    assert (
        main(["simulate", str(tmp_path), "--layout", "sglc1-space", "--n", "2", "--first-id", "100002"]) == 1
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        f"lenshunt simulate: error: 1 of the requested ids (100002...100002) are already in "
        f"{tmp_path / 'sim_keys.csv'}; use --first-id 100003 to add new objects, or --overwrite to "
        "replace them"
    ]
    assert main(["simulate", str(tmp_path / "new"), "--n", "2", "--catalog-name", "x.csv"]) == 1
    assert "catalog name 'x.csv' does not match layout 'euclid-sglc2''s pattern" in capsys.readouterr().err
    assert all_files(tmp_path) == before and not (tmp_path / "new").exists()


def test_ground_masks_carry_exactly_the_masked_value(tmp_path):
    layout = load_layout("sglc1-ground")
    simulate_set(layout, 3, tmp_path, seed=1, config=SimulationConfig(mask_fraction=1.0))
    table = read_catalog("sglc1-ground", tmp_path).set_index("ID")
    for object_id in range(FIRST, FIRST + 3):
        images = [fitsio.read(tmp_path / band.path_for(object_id, 6)) for band in layout.bands]
        n_masked = sum(int((image == np.float32(layout.masked_value)).sum()) for image in images)
        assert n_masked > 0
        assert n_masked == table.loc[object_id, "n_masked_pix"]
    unmasked = tmp_path / "plain"
    simulate_set(layout, 2, unmasked, seed=1, config=SimulationConfig(mask_fraction=0.0))
    assert read_catalog("sglc1-ground", unmasked)["n_masked_pix"].eq(0).all()


def test_sis_magnification_images_and_critical_area():
    from pipeline.simulate import lensing

    theta_e, beta = 1.2, 0.3
    mass = MassDraw(x=0.0, y=0.0, theta_e=theta_e, q=0.999, phi=0.0, gamma_ext=0.0, phi_ext=0.0)
    point_like = SersicDraw(x=beta, y=0.0, r_eff=0.02, n=1.0, q=1.0, phi=0.0, sed=Sed(24.0, 0.0))
    source = SourceDraw(z=2.0, source_id=1, smooth=point_like, clumps=(), clump_sed=None)
    grid = Grid((120, 120), 0.05, 3)
    smooth, clumps = lensing.lensed_source_templates(grid, lensing.ray_shoot(grid, mass), source)
    unlensed, _ = lensing.unlensed_source_sums(grid, source)
    assert clumps is None
    assert smooth.sum() / unlensed == pytest.approx(
        2 * theta_e / beta, rel=0.05
    )  # SIS: mu = 2 theta_E / beta
    images = lensing.solve_images(mass, source, grid.half_width_arcsec)
    assert len(images.x) == 2
    assert sorted(np.round(images.x, 3)) == pytest.approx([beta - theta_e, beta + theta_e], abs=0.01)
    region = lensing.critical_region(mass)
    assert region.n_curves == 1
    assert region.area_arcsec2 == pytest.approx(math.pi * theta_e**2, rel=0.03)


def test_numpy_sersic_matches_lenstronomy():
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.Util.param_util import phi_q2_ellipticity

    from pipeline.simulate.scenes import sersic_template

    draw = SersicDraw(x=0.3, y=-0.2, r_eff=0.8, n=4.0, q=0.6, phi=0.7, sed=Sed(20.0, 1.0))
    grid = Grid((80, 80), 0.1, 2)
    ours = sersic_template(grid, draw, cut_r_eff=100.0)
    e1, e2 = phi_q2_ellipticity(draw.phi, draw.q)
    kwargs = {"R_sersic": 0.8, "n_sersic": 4.0, "e1": e1, "e2": e2, "center_x": 0.3, "center_y": -0.2}
    model = LightModel(["SERSIC_ELLIPSE"])
    kwargs["amp"] = 1.0 / model.total_flux([kwargs], norm=True)[0]
    x, y = grid.sub_coordinates()
    theirs = grid.bin(model.surface_brightness(x.ravel(), y.ravel(), [kwargs]).reshape(x.shape))
    assert np.abs(ours - theirs).max() < 1e-3 * theirs.max()


def test_bad_requests_fail_with_the_fix(tmp_path):
    with pytest.raises(SimulationError, match="lens_fraction"):
        simulate_set("sglc1-space", 2, tmp_path, lens_fraction=1.5)
    with pytest.raises(SimulationError, match="pattern"):
        simulate_set("sglc1-space", 2, tmp_path, catalog_name="labels.csv")
    with pytest.raises(SimulationError, match="digits"):
        simulate_set("sglc1-space", 2, tmp_path, first_id=999_999)
    data = load_layout("sglc1-space").model_dump(mode="json")
    data["catalog"]["label_rule"] = "grade == 'A'"
    with pytest.raises(SimulationError, match="grade"):
        simulate_set(parse_layout(data), 1, tmp_path)
    assert not list(tmp_path.rglob("*.fits"))


def test_command_line_arguments():
    import argparse

    from flows import simulate

    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(
        ["out", "--n", "7", "--layout", "sglc1-ground", "--first-id", "200000", "--in-process"]
    )
    assert (args.n, args.layout, args.first_id, args.in_process, args.seed) == (
        7,
        "sglc1-ground",
        200000,
        True,
        0,
    )
    assert simulate.HELP and "\n" not in simulate.HELP


@pytest.mark.prefect
def test_simulate_flow_runs_in_prefect(tmp_path, prefect_harness):
    from flows.simulate import simulate_flow

    summary = simulate_flow(out=str(tmp_path), n_objects=2, layout="sglc1-space", in_process=True)
    assert summary.n_objects == 2
    assert read_catalog("sglc1-space", tmp_path)["ID"].tolist() == [FIRST, FIRST + 1]


def _ground_layout(suffix: str):
    """The fresh-user trial's flat ground layout (g, r; 32 x 32 here) with band files ``{id}_<b><suffix>``."""
    return parse_layout(
        {
            "name": "myground",
            "bands": [
                {
                    "name": name,
                    "path": f"{{id}}_{name}{suffix}",
                    "shape": [32, 32],
                    "pixel_scale_arcsec": 0.2,
                    "group": "opt",
                    "wavelength_nm": wavelength,
                }
                for name, wavelength in (("g", 480), ("r", 620))
            ],
            "coordinates": [{"ra": "CRVAL1", "dec": "CRVAL2"}],
            "catalog": {"pattern": "truth_table.csv", "label_rule": "is_lens"},
        },
        source="test",
    )


def test_compressed_file_names_get_compressed_files_read_back_by_ingest(tmp_path, dask_client):
    """Fresh-user trial: ``simulate --layout`` of ``.fits.fz`` paths wrote plain FITS files (one primary
    HDU) named ``.fz``. They are now tile-compressed, losslessly (the pixels of a ``.fits`` set), and
    ``.gz`` names are gzip files, ``.xz`` names xz files (review: plain FITS under an ``.xz`` name); ingest
    reads each back to the same stored pixels."""
    import gzip
    import lzma

    from astropy.io import fits

    from pipeline.store import ingest
    from pipeline.store.zarr_store import open_store

    sets = {suffix: tmp_path / suffix.strip(".") for suffix in (".fits", ".fits.fz", ".fits.gz", ".fits.xz")}
    for suffix, root in sets.items():
        simulate_set(_ground_layout(suffix), 3, root, seed=5, catalog_name="truth_table.csv")
    plain = sets[".fits"] / f"{FIRST}_g.fits"
    fz = sets[".fits.fz"] / f"{FIRST}_g.fits.fz"
    table = fitsio.read_header(str(fz), 1)  # the compressed table's own cards
    assert table["ZQUANTIZ"] == "NONE" and table["ZCMPTYPE"] == "GZIP_2"
    with fits.open(fz) as tiled, fits.open(plain) as reference:
        assert [type(hdu) for hdu in tiled] == [fits.PrimaryHDU, fits.CompImageHDU]
        np.testing.assert_array_equal(tiled[1].data, reference[0].data)  # lossless
        assert tiled[1].header["OBJ_ID"] == FIRST and tiled[1].header["BAND"] == "g"
    packed = (sets[".fits.gz"] / f"{FIRST}_g.fits.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b" and gzip.decompress(packed) == plain.read_bytes()
    packed = (sets[".fits.xz"] / f"{FIRST}_g.fits.xz").read_bytes()
    assert packed[:6] == b"\xfd7zXZ\x00" and lzma.decompress(packed) == plain.read_bytes()
    stored = {}
    for suffix, root in sets.items():
        report = ingest(_ground_layout(suffix), root, tmp_path / f"{root.name}.zarr", dask_client)
        assert report.n_after == 3 and report.n_flagged == 0, report.summary()
        stored[suffix] = open_store(tmp_path / f"{root.name}.zarr")["opt"].values
    np.testing.assert_array_equal(stored[".fits.fz"], stored[".fits"])
    np.testing.assert_array_equal(stored[".fits.gz"], stored[".fits"])
    np.testing.assert_array_equal(stored[".fits.xz"], stored[".fits"])
