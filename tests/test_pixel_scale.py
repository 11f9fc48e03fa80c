"""A model is refused a store whose bands are at another pixel scale than its recipe records.

New-user trial: the shipped model (VIS 0.1"/px, NISP 0.3"/px) scored a store of a layout at 0.2" and
0.6"/px without a word; its theta_e came out at half the truth. Real FITS cutouts, real stores
ingested by a real Dask cluster, real bundles (tests/bundles.py).
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from bundles import make_bundle
from cutouts import write_set

from pipeline.errors import BundleError
from pipeline.models import check_bundle_fits_layout, check_bundle_fits_store, load_bundle, save_ensemble
from pipeline.preprocess.pixel_scale import PIXEL_SCALE_TOLERANCE, layout_pixel_scales
from pipeline.scoring.run import score_store
from pipeline.store import ingest, read_attributes
from pipeline.store.zarr_store import create_store
from pipeline.training import TrainingError, init_recipe
from schemas.layout import Layout, load_layout, parse_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(100000, 100012))
COARSE_MESSAGE = (
    'band VIS at 0.2"/px where the model was trained at 0.1"/px; bands Y, J, H at 0.6"/px where the '
    "model was trained at 0.3\"/px (its training layout 'euclid-sglc2')"
)


def scaled_layout(name: str, factor: float) -> Layout:
    """``euclid-sglc2`` with every band's pixel scale times ``factor`` (the same pixels otherwise)."""
    data = yaml.safe_load(EUCLID.to_yaml())
    for band in data["bands"]:
        band["pixel_scale_arcsec"] = round(band["pixel_scale_arcsec"] * factor, 6)
    return parse_layout({**data, "name": name}, source=name)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, dask_client):
    """A euclid-sglc2 store, a store of the same cutouts declared at twice the pixel scale, a bundle
    fitted on the first (its recipe records 0.1 and 0.3"/px) and one whose recipe records none."""
    root = tmp_path_factory.mktemp("pixel-scale")
    coarse = scaled_layout("euclid-coarse", 2.0)
    made = {}
    for name, layout in (("euclid", EUCLID), ("coarse", coarse)):
        source = write_set(layout, root / f"src-{name}", IDS, {i: int(i % 2) for i in IDS})
        made[name] = root / f"{name}.zarr"
        ingest(layout, source, made[name], dask_client, chunk_objects=8)
    made["bundle"] = make_bundle(made["euclid"], root / "bundle", model_id="scaled")
    made["old"] = make_bundle(made["euclid"], root / "old", model_id="unscaled", pixel_scales=False)
    made["root"], made["coarse_layout"] = root, coarse
    return made


def test_a_new_recipe_records_its_layouts_pixel_scales(stores):
    recipe = load_bundle(stores["bundle"]).recipe
    assert recipe.version == 8 and recipe.pixel_scales == {"VIS": 0.1, "Y": 0.3, "J": 0.3, "H": 0.3}
    assert load_bundle(stores["old"]).recipe.pixel_scales is None


def test_score_refuses_a_store_at_another_pixel_scale_and_scores_one_at_the_same(
    stores, dask_client, tmp_path
):
    with pytest.raises(BundleError, match="model scaled was trained at other pixel scales") as refused:
        score_store(stores["coarse"], stores["bundle"], tmp_path / "coarse-run", dask_client, batch_size=8)
    message = str(refused.value)
    assert COARSE_MESSAGE in message and "the store (layout 'euclid-coarse') has" in message
    assert "train a model on cutouts at this scale" in message and "resample the cutouts" in message
    assert not (tmp_path / "coarse-run").exists()
    result = score_store(stores["euclid"], stores["bundle"], tmp_path / "run", dask_client, batch_size=8)
    assert result.n_scored == len(IDS)
    assert not any("pixel scale" in warning for warning in result.input_warnings)


def test_scales_within_the_tolerance_pass_and_beyond_it_are_refused(stores, tmp_path):
    bundle = load_bundle(stores["bundle"])
    for factor, refused in ((1 + PIXEL_SCALE_TOLERANCE / 2, False), (1 + 2 * PIXEL_SCALE_TOLERANCE, True)):
        store = tmp_path / f"{factor}.zarr"
        create_store(store, scaled_layout("euclid-near", factor), source=str(tmp_path / "src"))
        if refused:
            with pytest.raises(
                BundleError, match=r"band VIS at 0.102\"/px where the model was trained at 0.1"
            ):
                check_bundle_fits_store(bundle, read_attributes(store))
        else:
            check_bundle_fits_store(bundle, read_attributes(store))


def test_an_old_recipe_without_pixel_scales_still_scores_and_says_it_was_not_checked(
    stores, dask_client, tmp_path
):
    result = score_store(stores["coarse"], stores["old"], tmp_path / "run", dask_client, batch_size=8)
    assert result.n_scored == len(IDS)
    unknown = [warning for warning in result.input_warnings if "records no pixel scale" in warning]
    assert len(unknown) == 1 and "training layout 'euclid-sglc2'" in unknown[0]
    assert "records no pixel scale" in result.summary()


def test_every_member_of_an_ensemble_is_checked(stores, tmp_path):
    members = [shutil.copytree(stores[name], tmp_path / "ens" / name) for name in ("old", "bundle")]
    save_ensemble(tmp_path / "ens", members)
    ensemble = load_bundle(tmp_path / "ens")
    with pytest.raises(BundleError, match=r"\(member scaled\) was trained at other pixel scales"):
        check_bundle_fits_store(ensemble, read_attributes(stores["coarse"]))
    check_bundle_fits_store(ensemble, read_attributes(stores["euclid"]))  # the old member is not checked
    layout = stores["coarse_layout"]
    shapes = {group: layout.group_shape(group) for group in layout.groups}
    with pytest.raises(BundleError, match=r"than layout 'euclid-coarse' has: band VIS at 0\.2"):
        check_bundle_fits_layout(
            ensemble, layout.groups, layout.name, shapes=shapes, scales=layout_pixel_scales(layout)
        )


def test_fine_tuning_on_a_store_at_another_pixel_scale_is_refused(stores):
    with pytest.raises(TrainingError, match="fine-tuning keeps the bundle's recipe") as refused:
        init_recipe(stores["bundle"], stores["coarse_layout"])
    assert str(refused.value).startswith(f"--init {stores['bundle']}: model scaled was trained")
    assert COARSE_MESSAGE in str(refused.value)
    assert init_recipe(stores["bundle"], EUCLID).pixel_scales == {"VIS": 0.1, "Y": 0.3, "J": 0.3, "H": 0.3}
    assert init_recipe(stores["old"], stores["coarse_layout"]).pixel_scales is None  # recorded none


def test_files_whose_wcs_says_another_scale_than_their_layout_are_warned_of_at_scoring(
    stores, dask_client, tmp_path
):
    """Trial: cutouts at 0.2"/0.6"/px ingested with a layout that says 0.1"/0.3"/px passed the
    refusal (the layouts agree), every object flagged PIXEL_SCALE_MISMATCH, and the run printed its
    metrics without a word: the files' own WCS scale is said once per band."""
    from astropy.io import fits

    from pipeline.catalog import read_provenance

    source = write_set(EUCLID, tmp_path / "src", IDS, {i: int(i % 2) for i in IDS})
    for band in EUCLID.bands:  # the files' WCS: twice the layout's pixel scale
        for path in (source / band.path).parent.glob("*.fits"):
            for key, sign in (("CDELT1", -1), ("CDELT2", 1)):
                fits.setval(path, key, value=sign * 2 * band.pixel_scale_arcsec / 3600)
    store = tmp_path / "mislabelled.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    result = score_store(store, stores["bundle"], tmp_path / "run", dask_client, batch_size=8)
    said = [line for line in result.input_warnings if "objects whose files give a pixel scale" in line]
    assert said == [
        f'band {band}: 12 of the 12 objects whose files give a pixel scale have {scale}"/px (median of '
        f"their WCS), not the {trained}\"/px the model was trained at: the layout's pixel scale does not "
        "describe these files (they are flagged PIXEL_SCALE_MISMATCH), so the model sees every lens at "
        "another size; describe the files by a layout at their scale and ingest them again, or resample them"
        for band, scale, trained in (("VIS", 0.2, 0.1), ("Y", 0.6, 0.3), ("J", 0.6, 0.3), ("H", 0.6, 0.3))
    ]
    assert said[0] in read_provenance(tmp_path / "run" / "catalog.fits").extras["input_warnings"]
    clean = score_store(stores["euclid"], stores["bundle"], tmp_path / "clean-run", dask_client, batch_size=8)
    assert not [line for line in clean.input_warnings if "objects whose files give a pixel scale" in line]
