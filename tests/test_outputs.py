"""Declared outputs end to end (issue 13): a real multi-output Keras bundle is saved under TensorFlow,
loaded under TensorFlow and JAX, scored through the real scoring path on a real Dask cluster, and its
catalog carries one column per output with the declared units and UCDs in FITS, Parquet, VOTable and
HATS. Ensembles combine the outputs per kind; the shipped single-output bundle scores as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cutouts import band_file, write_set

from pipeline import paths
from pipeline.catalog import (
    CatalogLayout,
    make_catalog_table,
    read_catalog,
    read_provenance,
    validate_catalog,
)
from pipeline.errors import BundleError, CatalogError
from pipeline.flags import UNUSABLE, Flag
from pipeline.models import ModelCard, OutputSpec, load_bundle, outputs_to_card, save_bundle, save_ensemble
from pipeline.models.outputs import DEFAULT_SCORE
from pipeline.scoring import score_groups_outputs
from pipeline.scoring.run import score_store
from pipeline.store import ingest, open_store
from schemas.layout import load_layout

keras = pytest.importorskip("keras")

REPO_ROOT = Path(__file__).resolve().parents[1]
EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300020))
BROKEN = 300004
SCORE = DEFAULT_SCORE
THETA_E = OutputSpec(
    "theta_e", "regression_gaussian", unit="arcsec", ucd="phys.angSize;src", description="Einstein radius"
)
MORPH = OutputSpec(
    "morph", "classes", ucd="src.morph.type", description="Lens morphology", classes=("ring", "arc", "none")
)
MAG = OutputSpec("mag_lens", "regression", unit="mag", ucd="phot.mag", description="Lens magnitude")
OLD_COLUMNS = [
    "object_id",
    "ra",
    "dec",
    "score",
    "score_std",
    "rank",
    "flags",
    "model_id",
    "known_lens",
    "known_lens_grade",
    "known_lens_sep",
    "label",
]
BAND_FLAGS = ["flags_VIS", "flags_Y", "flags_J", "flags_H", "flag_reason"]
"""The per-band flag columns after the fixed ones (and after ood_score), then the flags' reasons."""


def multi_output_model(recipe, specs, seed: int):
    """A tiny real functional model: one conv branch per input, then one named head per output."""
    from pipeline.models.outputs import output_width

    keras.utils.set_random_seed(seed)
    inputs = [keras.Input(shape, name=name) for name, shape in recipe.input_shapes().items()]
    branches = [
        keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4, activation="relu")(x))
        for x in inputs
    ]
    hidden = keras.layers.Dense(8, activation="tanh")(
        branches[0] if len(branches) == 1 else keras.layers.Concatenate()(branches)
    )
    activation = {"probability": "sigmoid", "classes": "softmax"}
    heads = {
        spec.name: keras.layers.Dense(
            output_width(spec), activation=activation.get(spec.kind), name=spec.name
        )(hidden)
        for spec in specs
    }
    return keras.Model(inputs, heads)


def card(model_id: str, specs, rank_by: str | None = None) -> ModelCard:
    return ModelCard(
        model_id=model_id,
        architecture="test_heads",
        training_store="tests",
        seed=0,
        epochs=0,
        outputs=outputs_to_card(specs),
        rank_by=rank_by,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory, dask_client):
    """A real store (one object unreadable), a fitted recipe and a saved three-output bundle."""
    from pipeline.preprocess import fit_recipe
    from pipeline.store import read_attributes, store_layout

    root = tmp_path_factory.mktemp("outputs")
    source = write_set(EUCLID, root / "src", IDS, {i: int(i % 2) for i in IDS})
    band_file(EUCLID, source, BROKEN, "VIS").write_bytes(b"")
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    dataset = open_store(store)
    layout = store_layout(read_attributes(store))
    sample = {group: dataset[group][:12].values for group in layout.groups}
    recipe = fit_recipe(sample, layout, flags=dataset["flags"][:12].values, combine="upsample", downsample=4)
    specs = (SCORE, THETA_E, MORPH)
    model = multi_output_model(recipe, specs, seed=0)
    bundle = save_bundle(root / "multi", model, recipe, card("test-multi", specs))
    return root, store, recipe, bundle, model


def direct_predictions(model, bundle_path: Path, store: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw Keras predictions of the usable objects (reference for the pipeline), and the usable mask."""
    bundle = load_bundle(bundle_path)
    dataset = open_store(store)
    usable = (dataset["flags"].values & int(UNUSABLE)) == 0
    inputs = bundle.prepare({group: dataset[group].values[usable] for group in bundle.recipe.groups})
    predicted = model.predict(inputs, batch_size=8, verbose=0)
    return {name: np.asarray(values) for name, values in predicted.items()}, usable


def test_multi_output_bundle_scores_into_columns_with_units_and_ucds(setup, dask_client):
    root, store, _, bundle_path, model = setup
    out = root / "run"
    result = score_store(store, bundle_path, out, dask_client, batch_size=8, known_lenses=None)
    assert "outputs: score (probability), theta_e [arcsec] (regression_gaussian), morph (classes)" in (
        result.summary()
    )
    catalog = read_catalog(paths.catalog_parquet(out))
    output_columns = [
        "score",
        "score_std",
        "theta_e",
        "theta_e_err",
        "theta_e_std",
        "morph",
        "morph_ring",
        "morph_arc",
        "morph_none",
    ]
    assert list(catalog.columns) == ["object_id", "ra", "dec", *output_columns, *OLD_COLUMNS[5:], *BAND_FLAGS]

    expected, usable = direct_predictions(model, bundle_path, store)
    got = catalog.set_index("object_id")
    assert np.isnan(got.loc[BROKEN, "theta_e"]) and got.loc[BROKEN, "morph"] == ""
    assert got.loc[BROKEN, "flags"] & Flag.NOT_SCORED and result.n_scored == len(IDS) - 1
    scored = catalog[usable]
    np.testing.assert_allclose(scored["score"], expected["score"][:, 0], atol=1e-5)
    np.testing.assert_allclose(scored["theta_e"], expected["theta_e"][:, 0], atol=1e-5)
    np.testing.assert_allclose(scored["theta_e_err"], np.exp(expected["theta_e"][:, 1]), rtol=1e-5)
    assert (scored["theta_e_std"] == 0).all() and (scored["score_std"] == 0).all()
    for k, label in enumerate(MORPH.classes):
        np.testing.assert_allclose(scored[f"morph_{label}"], expected["morph"][:, k], atol=1e-5)
    assert scored["morph"].tolist() == [MORPH.classes[k] for k in expected["morph"].argmax(axis=1)]
    assert catalog["theta_e"].dtype == np.float32 and catalog["morph_ring"].dtype == np.float32
    order = np.argsort(-catalog["score"].fillna(-1).to_numpy(), kind="stable")
    assert catalog["rank"].to_numpy()[order[0]] == 1  # the rank follows the score

    # Units and UCDs in every format.
    assert catalog.attrs["columns"]["theta_e"] == {
        "unit": "arcsec",
        "ucd": "phys.angSize;src",
        "description": "Einstein radius; missing when not scored",  # null in Parquet: not NaN
    }
    provenance = read_provenance(paths.catalog_fits(out))
    assert provenance.rank_by == "score" and [o["name"] for o in provenance.outputs] == [
        "score",
        "theta_e",
        "morph",
    ]
    check_fits(paths.catalog_fits(out))
    check_parquet(paths.catalog_parquet(out))
    check_votable(paths.catalog_votable(out))
    partitions = sorted((paths.catalog_hats(out) / "lenshunt").glob("dataset/**/*.parquet"))
    assert partitions, "the HATS catalog has partitions"
    check_parquet(partitions[0])
    fits_catalog = read_catalog(paths.catalog_fits(out))
    np.testing.assert_allclose(fits_catalog["theta_e_err"], catalog["theta_e_err"], equal_nan=True)
    assert fits_catalog["morph"].tolist() == catalog["morph"].tolist()


def check_fits(path: Path) -> None:
    import astropy.units as u
    from astropy.io import fits
    from astropy.table import Table

    table = Table.read(path, hdu="CATALOG")
    assert table["theta_e"].unit == u.arcsec and table["theta_e_err"].unit == u.arcsec
    header = fits.getheader(path, "CATALOG")
    index = {header[f"TTYPE{i}"]: i for i in range(1, header["TFIELDS"] + 1)}
    assert header[f"TUNIT{index['theta_e']}"] == "arcsec"
    assert header[f"TUCD{index['theta_e']}"] == "phys.angSize;src"
    assert header[f"TUCD{index['theta_e_err']}"] == "stat.error;phys.angSize;src"
    assert header[f"TUCD{index['theta_e_std']}"] == "stat.stdev;phys.angSize;src"
    assert header[f"TUCD{index['morph_arc']}"] == "stat.probability"
    assert header[f"TUCD{index['score']}"] == "stat.probability"
    assert f"TUNIT{index['score']}" not in header
    assert header["RANKBY"] == "score" and header["LHCATVER"] == 3


def check_parquet(path: Path) -> None:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    meta = {name: schema.field(name).metadata for name in ("theta_e", "theta_e_err", "morph")}
    assert meta["theta_e"][b"unit"] == b"arcsec" and meta["theta_e"][b"ucd"] == b"phys.angSize;src"
    assert meta["theta_e_err"][b"ucd"] == b"stat.error;phys.angSize;src"
    assert meta["morph"][b"ucd"] == b"src.morph.type"
    described = json.loads(schema.metadata[b"lenshunt.catalog"])
    units = {column["name"]: column["unit"] for column in described["columns"]}
    assert units["theta_e_std"] == "arcsec" and units["score"] is None


def check_votable(path: Path) -> None:
    from astropy.io.votable import parse

    fields = {field.name: field for field in parse(str(path)).get_first_table().fields}
    assert str(fields["theta_e"].unit) == "arcsec" and fields["theta_e"].ucd == "phys.angSize;src"
    assert fields["theta_e_err"].ucd == "stat.error;phys.angSize;src"


JAX_SCORER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from pipeline.models import load_bundle
    from pipeline.scoring import score_groups_outputs
    from pipeline.store import open_store

    assert keras.backend.backend() == "jax", keras.backend.backend()
    bundle_path, store, out = sys.argv[1:]
    bundle = load_bundle(bundle_path)
    dataset = open_store(store)
    groups = {group: dataset[group].values for group in bundle.groups}
    columns, added = score_groups_outputs(bundle, groups, dataset["flags"].values, batch_size=8, tta=False)
    np.savez(out, **columns)
    print(json.dumps(sorted(columns)))
    """
)


def test_multi_output_bundle_saved_under_tensorflow_scores_the_same_under_jax(setup, tmp_path):
    pytest.importorskip("jax")
    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"saves under TensorFlow; this process runs Keras on {keras.backend.backend()}")
    _, store, _, bundle_path, _ = setup
    bundle = load_bundle(bundle_path)
    dataset = open_store(store)
    groups = {group: dataset[group].values for group in bundle.groups}
    tf_columns, _ = score_groups_outputs(bundle, groups, dataset["flags"].values, batch_size=8, tta=False)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    out = tmp_path / "jax.npz"
    run = subprocess.run(
        [sys.executable, "-c", JAX_SCORER, str(bundle_path), str(store), str(out)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == sorted(tf_columns)
    jax_columns = dict(np.load(out))
    for name, values in tf_columns.items():
        np.testing.assert_allclose(jax_columns[name], values, atol=1e-5, equal_nan=True, err_msg=name)


def test_ensemble_of_multi_output_members_combines_each_kind(setup):
    root, store, recipe, _, _ = setup
    specs = (SCORE, THETA_E, MORPH)
    ensemble_dir = root / "ensemble"
    members = [
        save_bundle(
            ensemble_dir / f"fold-{seed}", multi_output_model(recipe, specs, seed), recipe, card("m", specs)
        )
        for seed in (1, 2)
    ]
    ensemble = save_ensemble(ensemble_dir, members)
    assert ensemble.outputs == specs and load_bundle(ensemble_dir).card.output_specs == specs
    dataset = open_store(store)
    groups = {group: dataset[group].values for group in ensemble.groups}
    flags = dataset["flags"].values
    columns, added = score_groups_outputs(ensemble, groups, flags, batch_size=8, tta=True)

    usable = (flags & int(UNUSABLE)) == 0
    predictions = [
        load_bundle(path).predict_groups_outputs(
            {g: x[usable] for g, x in groups.items()}, batch_size=8, tta=True
        )
        for path in members
    ]
    theta = np.concatenate([p["theta_e"] for p in predictions]).astype(np.float64)  # (16, n, 2)
    assert theta.shape[0] == 16
    mu, sigma = theta[..., 0], np.exp(theta[..., 1])
    mean = mu.mean(axis=0)
    total = np.sqrt(np.mean(sigma**2 + mu**2, axis=0) - mean**2)  # the mixture's 1-sigma, by hand
    np.testing.assert_allclose(columns["theta_e"][usable], mean, rtol=1e-5)
    np.testing.assert_allclose(columns["theta_e_err"][usable], total, rtol=1e-4)
    np.testing.assert_allclose(columns["theta_e_std"][usable], mu.std(axis=0), rtol=1e-4, atol=1e-7)
    assert (columns["theta_e_err"][usable] > columns["theta_e_std"][usable]).all()
    scores = np.concatenate([p["score"] for p in predictions])[..., 0]
    np.testing.assert_allclose(columns["score"][usable], scores.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(columns["score_std"][usable], scores.std(axis=0), rtol=1e-4, atol=1e-7)
    morph = np.concatenate([p["morph"] for p in predictions]).mean(axis=0)
    np.testing.assert_allclose(columns["morph_arc"][usable], morph[:, 1], rtol=1e-5)
    assert np.isnan(columns["theta_e"][~usable]).all() and (added[~usable] & Flag.NOT_SCORED).all()


def test_ensemble_members_must_declare_the_same_outputs(setup):
    root, _, recipe, _, _ = setup
    ensemble_dir = root / "mixed"
    first = save_bundle(
        ensemble_dir / "a",
        multi_output_model(recipe, (SCORE, THETA_E), 3),
        recipe,
        card("a", (SCORE, THETA_E)),
    )
    other = (SCORE, THETA_E.__class__(**{**THETA_E.__dict__, "unit": "deg"}))
    second = save_bundle(ensemble_dir / "b", multi_output_model(recipe, other, 4), recipe, card("b", other))
    with pytest.raises(BundleError, match="must declare identical outputs"):
        save_ensemble(ensemble_dir, [first, second])


def test_a_regressor_without_score_scores_and_ranks_by_its_rank_by(setup, dask_client):
    root, store, recipe, _, _ = setup
    specs = (MAG, THETA_E)
    bundle_path = save_bundle(
        root / "regressor",
        multi_output_model(recipe, specs, 5),
        recipe,
        card("reg", specs, rank_by="theta_e"),
    )
    out = root / "regressor-run"
    score_store(store, bundle_path, out, dask_client, batch_size=8, known_lenses=None)
    catalog = read_catalog(out)
    assert "score" not in catalog.columns
    assert list(catalog.columns[3:8]) == ["mag_lens", "mag_lens_std", "theta_e", "theta_e_err", "theta_e_std"]
    best = catalog.loc[catalog["theta_e"].idxmax()]
    assert best["rank"] == 1 and catalog.set_index("object_id").loc[BROKEN, "rank"] == len(IDS)
    assert read_provenance(out).rank_by == "theta_e"
    assert catalog.attrs["columns"]["mag_lens"]["unit"] == "mag"

    from pipeline.evaluation.run import evaluate_run

    result = evaluate_run(out, store, top_n=4)
    assert result.metrics is None and result.plots == {}
    html = result.report_path.read_text()
    assert "Declared outputs" in html and "no &#39;score&#39;" in html
    assert "median" in html and "theta_e" in html and " ± " in html


def test_a_bundle_from_before_declared_outputs_scores_with_the_old_columns(setup, dask_client):
    """The previous shipped bundle (one score tensor, a card without ``outputs``) still scores."""
    root, store, _, _, _ = setup
    old_bundle = REPO_ROOT / "tests" / "data" / "bundle-single-output"
    assert "outputs" not in json.loads((old_bundle / "card.json").read_text())
    out = root / "old-bundle-run"
    result = score_store(store, old_bundle, out, dask_client, batch_size=8, known_lenses=None)
    assert result.outputs == [] and "outputs:" not in result.summary()  # the default goes unsaid
    catalog = read_catalog(out)
    assert list(catalog.columns) == OLD_COLUMNS + BAND_FLAGS
    provenance = read_provenance(paths.catalog_fits(out))
    assert provenance.rank_by == "score"
    assert [entry["name"] for entry in provenance.outputs] == ["score"]  # listed (trial: [] named none)
    assert catalog["score"].between(0, 1).sum() == len(IDS) - 1


def test_the_shipped_bundle_scores_theta_e_with_units(setup, dask_client):
    from astropy.table import Table

    root, store, _, _, _ = setup
    out = root / "shipped-run"
    score_store(store, paths.shipped_model(), out, dask_client, batch_size=8, known_lenses=None)
    catalog = read_catalog(out)
    new = ["score", "score_std", "theta_e", "theta_e_err", "theta_e_std"]
    # the shipped bundle has feature statistics: ood_score after the fixed columns
    assert list(catalog.columns) == OLD_COLUMNS[:3] + new + OLD_COLUMNS[5:] + ["ood_score"] + BAND_FLAGS
    assert catalog.loc[catalog["score"].isna(), "ood_score"].isna().all()
    assert catalog.loc[catalog["score"].notna(), "ood_score"].gt(0).all()
    scored = catalog["score"].notna()
    assert scored.sum() == len(IDS) - 1 and catalog.loc[scored, "theta_e_err"].gt(0).all()
    assert catalog.loc[~scored, "theta_e"].isna().all()
    assert read_provenance(paths.catalog_fits(out)).rank_by == "score"
    table = Table.read(paths.catalog_fits(out), hdu="CATALOG")
    assert str(table["theta_e"].unit) == "arcsec" and str(table["theta_e_err"].unit) == "arcsec"


def test_a_bad_declaration_or_a_model_that_does_not_match_it_is_refused(setup, tmp_path):
    _, _, recipe, bundle_path, _ = setup
    model = multi_output_model(recipe, (SCORE, THETA_E), 6)
    wrong = (SCORE, OutputSpec("theta_e", "regression", unit="arcsec"))  # declares 1 value, model gives 2
    with pytest.raises(BundleError, match="differ from the card's declared outputs"):
        save_bundle(tmp_path / "wrong", model, recipe, card("w", wrong))
    with pytest.raises(BundleError, match="differ from the card's declared outputs"):
        save_bundle(tmp_path / "missing", model, recipe, card("w", (SCORE,)))
    copy = tmp_path / "edited"
    import shutil

    shutil.copytree(bundle_path, copy)
    data = json.loads((copy / "card.json").read_text())
    data["outputs"][1]["kind"] = "gaussian"
    (copy / "card.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="invalid outputs: output 'theta_e': unknown kind 'gaussian'"):
        load_bundle(copy)


def test_catalog_layout_without_score_ranks_by_object_id_and_checks_values():
    n = 4
    layout = CatalogLayout(outputs=(MAG,), rank_by="object_id")
    values = {"mag_lens": np.array([20.0, np.nan, 21.0, 19.0]), "mag_lens_std": np.zeros(n)}
    table = make_catalog_table(
        object_ids=np.array([7, 3, 5, 1]),
        ra=np.zeros(n),
        dec=np.zeros(n),
        flags=np.zeros(n, np.int32),
        model_id="m",
        outputs=values,
        layout=layout,
    )
    assert table["rank"].tolist() == [4, 2, 3, 1]  # ascending object_id
    assert np.isnan(table["mag_lens_std"][1])
    validate_catalog(table)
    bad = make_catalog_table(
        object_ids=np.arange(n),
        ra=np.zeros(n),
        dec=np.zeros(n),
        flags=np.zeros(n, np.int32),
        model_id="m",
        outputs={"score": np.array([0.5, 1.5, 0.1, 0.2]), "score_std": np.zeros(n)},
        layout=CatalogLayout(outputs=(OutputSpec("score", "probability"),)),
    )
    with pytest.raises(CatalogError, match=r"score outside \[0, 1\]"):
        validate_catalog(bad)


def test_extra_columns_travel_with_their_specs_into_every_format(tmp_path):
    from astropy.io import fits

    from pipeline.catalog import write_catalog
    from schemas.catalog import ColumnSpec, Provenance

    n = 3
    grade = ColumnSpec(
        name="consensus_grade", dtype="float32", ucd="meta.code.qual", description="Mean grade"
    )
    table = make_catalog_table(
        object_ids=np.arange(n),
        ra=np.full(n, 10.0),
        dec=np.zeros(n),
        flags=np.zeros(n, np.int32),
        model_id="m",
        scores=np.array([0.1, 0.9, 0.5]),
        score_std=np.zeros(n),
        layout=CatalogLayout(extra=(grade,)),
        extra={"consensus_grade": np.array([1.0, 2.5, np.nan], np.float32)},
    )
    assert list(table.columns)[-1] == "consensus_grade"
    provenance = Provenance(
        model_id="m",
        model_sha256="0" * 64,
        store="s",
        layout="l",
        code_version="0",
        date="2026-01-01T00:00:00",
        threshold=0.5,
        tta=False,
        n_objects=n,
        n_scored=n,
    )
    written = write_catalog(table, tmp_path, provenance, expected_n=n, hats=False)
    header = fits.getheader(written.fits, "CATALOG")
    index = {header[f"TTYPE{i}"]: i for i in range(1, header["TFIELDS"] + 1)}
    assert header[f"TUCD{index['consensus_grade']}"] == "meta.code.qual"
    back = read_catalog(written.parquet)
    np.testing.assert_array_equal(back["consensus_grade"], [1.0, 2.5, np.nan])
    with pytest.raises(CatalogError, match="missing \\['consensus_grade'\\]"):
        validate_catalog(table.drop(columns="consensus_grade"))


def test_grades_applied_to_a_catalog_with_declared_outputs_keep_the_output_columns(tmp_path):
    """``lenshunt inspect --apply`` rewrites a theta_e catalog: the outputs keep their units and UCDs."""
    from astropy.table import Table

    from pipeline.catalog import write_catalog
    from pipeline.evaluation.grades import GradeLog
    from pipeline.inspection import apply_grades
    from schemas.catalog import Provenance

    n = 3
    layout = CatalogLayout(outputs=(SCORE, THETA_E))
    outputs = {
        "score": np.array([0.9, 0.2, 0.6]),
        "score_std": np.zeros(n),
        "theta_e": np.array([1.2, 0.4, 0.8]),
        "theta_e_err": np.array([0.1, 0.3, 0.2]),
        "theta_e_std": np.zeros(n),
    }
    table = make_catalog_table(
        object_ids=np.array([5, 6, 7]),
        ra=np.full(n, 10.0),
        dec=np.zeros(n),
        flags=np.zeros(n, np.int32),
        model_id="m",
        outputs=outputs,
        layout=layout,
    )
    provenance = Provenance(
        model_id="m", model_sha256="0" * 64, store="s", layout="l", code_version="0",
        date="2026-01-01T00:00:00", threshold=0.5, tta=False, n_objects=n, n_scored=n,
        outputs=layout.outputs_json(), rank_by="score",
    )  # fmt: skip
    write_catalog(table, tmp_path, provenance, expected_n=n, hats=False)
    GradeLog(tmp_path / "grades", "ann").append(5, "A")
    apply_grades(tmp_path, hats=False)
    back = read_catalog(tmp_path / "catalog.parquet").set_index("object_id")
    assert back.loc[5, "grade_mean"] == 3.0 and back.loc[6, "grade_n"] == 0
    np.testing.assert_allclose(back["theta_e_err"], [0.1, 0.3, 0.2], rtol=1e-6)
    fits_table = Table.read(tmp_path / "catalog.fits", hdu="CATALOG")
    assert str(fits_table["theta_e"].unit) == "arcsec" and fits_table["grade_n"].tolist() == [1, 0, 0]
