"""Feature statistics and ood_score (pipeline.models.features): real bundles, stores and Dask cluster."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from bundles import make_bundle
from cutouts import band_file, write_set

from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.errors import BundleError
from pipeline.flags import Flag, documentation
from pipeline.models import load_bundle, save_ensemble
from pipeline.models.describe import model_lines
from pipeline.models.features import (
    FEATURES_FILE,
    FeatureStats,
    feature_layer,
    features,
    fit_feature_stats,
    has_feature_stats,
    load_feature_stats,
    main,
    members_without_stats,
    ood_score,
    ood_score_groups,
    save_feature_stats,
)
from pipeline.scoring.run import score_store
from pipeline.store import ingest, open_store
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300040))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, dask_client):
    root = tmp_path_factory.mktemp("ood")
    source = write_set(EUCLID, root / "src", IDS, {i: int(i % 2) for i in IDS})
    band_file(EUCLID, source, IDS[3], "J").write_bytes(b"")  # one unusable object
    store = root / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=16)
    plain = make_bundle(store, root / "plain")
    with_stats = root / "with-stats"
    shutil.copytree(plain, with_stats)
    stats = fit_feature_stats(load_bundle(with_stats), store, n=3000, quantile=0.9)
    save_feature_stats(with_stats, stats)
    return root, store, plain, with_stats


def _images(store):
    dataset = open_store(store, chunks=None)
    return {group: dataset[group].values for group in ("vis", "nir")}, dataset["flags"].values


def _bright_discs(groups):
    """Each object's images replaced by a bright, smooth, centred disc (nothing like the set)."""
    out = {}
    for group, images in groups.items():
        n_y, n_x = images.shape[-2:]
        y, x = np.mgrid[:n_y, :n_x]
        disc = np.exp(-np.hypot(y - n_y / 2, x - n_x / 2) / (n_y / 6)).astype(np.float32)
        out[group] = np.broadcast_to(disc * 50 * np.nanmax(np.abs(images)), images.shape).copy()
    return out


def test_fit_save_load_round_trip_and_far_inputs(setup):
    _, store, plain, with_stats = setup
    card = json.loads((plain / "card.json").read_text())
    assert "feature_stats" not in card  # a bundle without statistics is written as before
    assert not has_feature_stats(load_bundle(plain))
    bundle = load_bundle(with_stats)
    assert has_feature_stats(bundle)
    entry = bundle.card.feature_stats
    stats = load_feature_stats(with_stats)
    assert entry["layer"] == stats.layer == feature_layer(bundle.model)[0] == "image_gap"
    # the unusable object is left out; a third of the rest sets the threshold, unseen by the fit
    assert entry["n_fit"] == stats.n_fit == 26 and entry["n_calibration"] == stats.n_calibration == 13
    assert entry["quantile"] == 0.9 and entry["threshold"] == pytest.approx(stats.threshold)
    assert stats.mean.shape == (stats.precision.shape[0],) and stats.precision.shape == (64, 64)
    # 13 calibration objects cannot set a threshold per class (MIN_CALIBRATION of each): one Gaussian
    assert stats.classes == () and stats.class_means is None and entry["classes"] == []
    groups, flags = _images(store)
    usable = (flags & 31) == 0
    inside = ood_score(bundle, bundle.prepare({g: x[usable] for g, x in groups.items()}))
    assert inside.dtype == np.float32 and inside.shape == (usable.sum(),)
    assert np.mean(inside <= 1) >= 0.85  # the training q = 0.9 quantile
    far = ood_score_groups(bundle, _bright_discs({g: x[usable] for g, x in groups.items()}))
    assert np.mean(far > 1) >= 0.9 and np.median(far) > 3 * np.median(inside)
    scaled = ood_score_groups(bundle, {g: 30 * x[usable] for g, x in groups.items()})
    assert np.median(scaled) > 1


@pytest.mark.parametrize("by_class", [True, False])
def test_per_class_and_one_gaussian_fits_round_trip_and_score_as_written(setup, tmp_path, by_class):
    # a labelled store with 10 of each class to fit and to calibrate on (here the same objects) gets
    # a Gaussian per class; by_class=False one Gaussian, as every bundle's before, whose file has no
    # class arrays (so such files load as one Gaussian); info says which model a bundle has
    _, store, plain, _ = setup
    copy = shutil.copytree(plain, tmp_path / "bundle")
    every = np.arange(len(IDS))
    stats = fit_feature_stats(
        load_bundle(copy), store, quantile=0.9, rows=every, calibration_rows=every, by_class=by_class
    )
    assert stats.n_fit == stats.n_calibration == 39
    class_arrays = {"class_means", "class_precisions", "class_thresholds", "classes"}
    save_feature_stats(copy, stats)
    with np.load(copy / FEATURES_FILE) as data:
        assert class_arrays & set(data) == (class_arrays if by_class else set())
    loaded = load_feature_stats(copy)
    assert loaded.classes == stats.classes == ((0, 1) if by_class else ())
    for name in ("precision", "class_means", "class_precisions", "class_thresholds"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stats, name))
    if by_class:
        assert stats.class_means.shape == (2, 64) and stats.class_precisions.shape == (2, 64, 64)
    bundle = load_bundle(copy)
    assert bundle.card.feature_stats["classes"] == list(stats.classes)
    groups, flags = _images(store)
    usable = (flags & 31) == 0
    prepared = bundle.prepare({g: x[usable] for g, x in groups.items()})
    expected = stats.squared_distance(features(bundle, prepared)) / stats.threshold
    np.testing.assert_allclose(ood_score(bundle, prepared), expected, rtol=1e-5)
    assert np.mean(expected <= 1) >= 0.85  # the same objects set the 0.9 quantile
    said = "a Gaussian per class, lenses and non-lenses" if by_class else "one Gaussian: as asked"
    assert f"39 objects of store.zarr ({said}" in "\n".join(model_lines(copy))


def test_tampered_or_missing_features_file_is_refused(setup, tmp_path):
    _, _, _, with_stats = setup
    copy = tmp_path / "bundle"
    shutil.copytree(with_stats, copy)
    data = bytearray((copy / FEATURES_FILE).read_bytes())
    data[-20] ^= 0xFF
    (copy / FEATURES_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"features\.npz has sha256 .* the card says"):
        load_bundle(copy)
    (copy / FEATURES_FILE).unlink()
    with pytest.raises(BundleError, match=r"features\.npz is missing"):
        load_bundle(copy)


def test_ensemble_ood_is_the_members_mean_and_needs_every_member(setup, tmp_path):
    _, store, plain, with_stats = setup
    shutil.copytree(with_stats, tmp_path / "ens" / "a")
    shutil.copytree(with_stats, tmp_path / "ens" / "b")
    ensemble = save_ensemble(tmp_path / "ens", [tmp_path / "ens" / "a", tmp_path / "ens" / "b"])
    assert ensemble.has_feature_stats and has_feature_stats(ensemble)
    groups, _ = _images(store)
    some = {g: x[5:12] for g, x in groups.items()}
    np.testing.assert_allclose(
        ensemble.ood_score_groups(some), ood_score_groups(load_bundle(with_stats), some), rtol=1e-5
    )
    shutil.copytree(plain, tmp_path / "mixed" / "a")
    shutil.copytree(with_stats, tmp_path / "mixed" / "b")
    mixed = save_ensemble(tmp_path / "mixed", [tmp_path / "mixed" / "a", tmp_path / "mixed" / "b"])
    assert not mixed.has_feature_stats
    assert members_without_stats(mixed) == [str(tmp_path / "mixed" / "a")]
    assert members_without_stats(ensemble) == [] and members_without_stats(load_bundle(plain)) == []


def test_scoring_an_ensemble_missing_some_members_statistics_says_it_has_no_ood_score(
    setup, dask_client, tmp_path, caplog
):
    """Trial: an ensemble one of whose members stopped before its feature fit scored without an
    ood_score column, and nothing said why."""
    _, store, plain, with_stats = setup
    shutil.copytree(plain, tmp_path / "mixed" / "a")
    shutil.copytree(with_stats, tmp_path / "mixed" / "b")
    save_ensemble(tmp_path / "mixed", [tmp_path / "mixed" / "a", tmp_path / "mixed" / "b"])
    with caplog.at_level("WARNING"):
        score_store(store, tmp_path / "mixed", tmp_path / "run", dask_client, batch_size=8, known_lenses=None)
    assert "ood_score" not in read_catalog(paths.catalog_parquet(tmp_path / "run")).columns
    said = [r.getMessage() for r in caplog.records if "no ood_score" in r.getMessage()]
    assert said == [
        f"the ensemble's catalog has no ood_score: 1 of its 2 members have no feature statistics "
        f"({tmp_path / 'mixed' / 'a'}); fit them with `python -m pipeline.models.features "
        f"{(tmp_path / 'mixed').resolve()} STORE` (the training store)"
    ]


def test_score_run_writes_ood_score_and_flag_to_every_format(setup, dask_client, tmp_path):
    import lsdb
    from astropy.io import fits

    _, store, plain, with_stats = setup
    score_store(store, plain, tmp_path / "plain", dask_client, batch_size=8, known_lenses=None)
    before = read_catalog(paths.catalog_parquet(tmp_path / "plain"))
    assert "ood_score" not in before.columns
    assert list(before.columns) == [
        "object_id", "ra", "dec", "score", "score_std", "rank", "flags", "model_id",
        "known_lens", "known_lens_grade", "known_lens_sep", "label",
        "flags_VIS", "flags_Y", "flags_J", "flags_H", "flag_reason",
    ]  # fmt: skip
    assert not (before["flags"].to_numpy() & int(Flag.UNLIKE_TRAINING)).any()

    result = score_store(store, with_stats, tmp_path / "ood", dask_client, batch_size=8, tta=False)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "ood"))
    assert list(catalog.columns) == [*before.columns[:-5], "ood_score", *before.columns[-5:]]
    np.testing.assert_array_equal(catalog["score"], before["score"])  # the score is unchanged
    ood = catalog["ood_score"].to_numpy()
    assert ood.dtype == np.float32
    unscored = catalog["score"].isna().to_numpy()
    assert unscored.sum() == 1 and np.isnan(ood[unscored]).all() and np.isfinite(ood[~unscored]).all()
    flagged = (catalog["flags"].to_numpy() & int(Flag.UNLIKE_TRAINING)) != 0
    np.testing.assert_array_equal(flagged, ood > 1)
    assert flagged.any()  # q = 0.9 of the same objects: some exceed it
    assert catalog.attrs["columns"]["ood_score"]["ucd"] == "stat.value"
    assert result.n_scored == len(IDS) - 1

    header = fits.getheader(paths.catalog_fits(tmp_path / "ood"), 1)
    names = [header[f"TTYPE{i}"] for i in range(1, header["TFIELDS"] + 1)]
    column = names.index("ood_score") + 1
    assert header[f"TFORM{column}"] == "E" and "in-domain 90th percentile" in header.comments[
        f"TTYPE{column}"
    ] + str(header.get(f"TCOMM{column}", ""))
    assert header["FLAG18"] == "UNLIKE_TRAINING"
    assert documentation()["UNLIKE_TRAINING"].startswith("bit 18")
    from_fits = read_catalog(paths.catalog_fits(tmp_path / "ood"))
    np.testing.assert_array_equal(from_fits["ood_score"].to_numpy(), ood)
    hats = lsdb.read_hats(paths.catalog_hats(tmp_path / "ood")).compute().set_index("object_id")
    np.testing.assert_array_equal(
        hats.loc[catalog["object_id"], "ood_score"].to_numpy(np.float32), ood
    )  # fmt: skip

    # a catalog read back keeps its ood_score through a rewrite (as lenshunt inspect --apply does)
    from pipeline.catalog import read_provenance, write_catalog
    from pipeline.catalog.columns import LAYOUT_ATTR

    again = catalog.copy()
    again.attrs = {LAYOUT_ATTR: catalog.attrs[LAYOUT_ATTR]}
    provenance = read_provenance(paths.catalog_parquet(tmp_path / "ood"))
    assert provenance.extras["ood_layer"] == "image_gap" and provenance.extras["ood_quantile"] == 0.9
    write_catalog(again, tmp_path / "rewrite", provenance, expected_n=len(again), hats=False)
    rewritten = read_catalog(paths.catalog_parquet(tmp_path / "rewrite"))
    np.testing.assert_array_equal(rewritten["ood_score"].to_numpy(), ood)

    # TTA leaves ood_score alone (it is computed on the untransformed images)
    score_store(store, with_stats, tmp_path / "tta", dask_client, batch_size=8, tta=True)
    with_tta = read_catalog(paths.catalog_parquet(tmp_path / "tta"))
    np.testing.assert_allclose(with_tta["ood_score"], ood, rtol=1e-5, equal_nan=True)


def test_command_line_fits_and_fails_in_one_line(setup, tmp_path, capsys, dask_client):
    root, store, plain, _ = setup

    def one_line_error(argv):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
        return err

    target = tmp_path / "bundle"
    shutil.copytree(plain, target)
    assert main([str(target), str(store), "--n", "20", "--quantile", "0.95"]) == 0
    out = capsys.readouterr().out
    assert "fitted on 20 objects of a random sample, threshold on 13 of others held back; layer" in out
    # why one Gaussian, the statistics it replaced (none here) and the threshold's few objects (trial)
    assert re.search(r"one Gaussian: \d (non-)?lenses to set the threshold on \(10 of each class", out)
    assert "replaced" not in out and "was set on only 13 objects" in out
    assert load_bundle(target).card.feature_stats["n_fit"] == 20
    assert main([str(target), str(store), "--n", "20"]) == 0
    assert "  replaced the statistics of 20 objects (one Gaussian: " in capsys.readouterr().out
    shipped_error = one_line_error([str(paths.shipped_model()), str(store)])  # the release's record
    assert "the shipped model's feature statistics are the release's record: fit them on a copy" in (
        shipped_error
    )
    # damaged statistics are replaced by a refit, not refused (the error message names this command)
    (target / FEATURES_FILE).write_bytes(b"x")
    with pytest.raises(BundleError, match=r"refit it with python -m pipeline\.models\.features"):
        load_bundle(target)
    assert main([str(target), str(store)]) == 0
    assert "was missing or damaged; fitting it anew" in capsys.readouterr().out
    assert load_bundle(target).card.feature_stats["n_calibration"] == 13
    # statistics of another width than the layer's are refused when used
    other = tmp_path / "other"
    shutil.copytree(target, other)
    wrong = load_feature_stats(other)
    save_feature_stats(
        other, FeatureStats(**{**wrong.__dict__, "mean": np.zeros(10), "precision": np.eye(10)})
    )
    bundle = load_bundle(other)
    groups, flags = _images(store)
    with pytest.raises(BundleError, match="holds 10 features but layer 'image_gap' gives 64"):
        ood_score_groups(bundle, {g: x[:4] for g, x in groups.items()})
    for bad in (["--n", "5"], ["--n", "0"], ["--quantile", "1"], ["--quantile", "-1"]):
        with pytest.raises(SystemExit):
            main([str(target), str(store), *bad])
    assert "--n must be at least 20" in capsys.readouterr().err

    assert "no store at" in one_line_error([str(target), str(tmp_path / "absent.zarr")])
    assert "no model bundle at" in one_line_error([str(tmp_path / "absent"), str(store)])
    (tmp_path / "broken").mkdir()
    assert "is no model bundle (no model.keras" in one_line_error([str(tmp_path / "broken"), str(store)])
    (tmp_path / "broken" / "card.json").write_text("{}")  # a bundle without its model and recipe
    assert "lacks ['model.keras', 'recipe.json']" in one_line_error([str(tmp_path / "broken"), str(store)])
    source = write_set(EUCLID, tmp_path / "bad", [1, 2])
    for object_id in (1, 2):
        band_file(EUCLID, source, object_id, "J").write_bytes(b"")
    ingest(EUCLID, source, tmp_path / "bad.zarr", dask_client)
    assert "0 usable objects to fit on" in one_line_error([str(target), str(tmp_path / "bad.zarr")])
    head = load_bundle(target).model.layers[-1].name  # one number per object: not features
    assert "gives 1 feature" in one_line_error([str(target), str(store), "--layer", head])
    space = write_set(load_layout("sglc1-space"), tmp_path / "space", [7, 8, 9])
    ingest(load_layout("sglc1-space"), space, tmp_path / "space.zarr", dask_client)
    assert "needs group" in one_line_error([str(target), str(tmp_path / "space.zarr")])


def test_unlike_training_is_worded_as_what_it_measures_not_a_verdict() -> None:
    """Trial: on the project's own 5,000-object set 5 of the top 10 were flagged "score unreliable",
    yet the flagged objects' AUROC was 1.0: the flag measures a distance from the training features
    (over the in-domain 99th percentile), not whether a score is right."""
    from pathlib import Path

    meaning = documentation()["UNLIKE_TRAINING"]
    assert "unreliable" not in meaning and "less certain" in meaning and "ood_quantile" in meaning
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "its score means little" not in readme and "not a verdict" in readme
