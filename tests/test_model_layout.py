"""A new work directory takes the layout of the model it is run with, where lenshunt ships it.

Trial: ``lenshunt run SOURCE WORKDIR --model M`` with a model trained on ``sglc1-ground`` cutouts was
told "no band directory of layout 'euclid-sglc2'": a new store got the default layout whatever the
model read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundles import make_bundle
from cutouts import write_set

from flows.preflight import DEFAULT_LAYOUT, PathCheckError, layout_or_stores
from pipeline import paths
from pipeline.errors import BundleError
from pipeline.models import recipe_layout, save_ensemble
from pipeline.store import ingest, read_attributes
from schemas.layout import load_layout

GROUND = load_layout("sglc1-ground")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ground(tmp_path_factory, dask_client) -> tuple[Path, Path]:
    """An sglc1-ground set and an (untrained) model bundle fitted on its store."""
    root = tmp_path_factory.mktemp("ground")
    source = write_set(GROUND, root / "src", range(1, 5), {1: 1, 2: 0, 3: 1, 4: 0})
    ingest(GROUND, source, root / "fit.zarr", dask_client)
    return source, make_bundle(root / "fit.zarr", root / "bundle")


def test_a_new_store_takes_the_models_layout_and_an_existing_one_its_own(ground, tmp_path):
    source, bundle = ground
    assert recipe_layout(bundle) == "sglc1-ground"
    assert recipe_layout(paths.shipped_model()) == DEFAULT_LAYOUT
    assert layout_or_stores(None, tmp_path / "new.zarr", bundle) == "sglc1-ground"
    assert layout_or_stores(None, tmp_path / "new.zarr") == DEFAULT_LAYOUT
    assert layout_or_stores("sglc1-space", tmp_path / "new.zarr", bundle) == "sglc1-space"  # given: kept
    # an ensemble: its first member's recipe
    ensemble = tmp_path / "ensemble"
    shutil.copytree(bundle, ensemble / "m0")
    save_ensemble(ensemble, [ensemble / "m0"])
    assert layout_or_stores(None, tmp_path / "new.zarr", ensemble) == "sglc1-ground"
    # a layout file's layout (only its name recorded): its file is asked for (trial: the default was
    # taken, and the source then told it had no euclid-sglc2 folder); an unreadable recipe: the default
    custom = tmp_path / "custom"
    shutil.copytree(bundle, custom)
    recipe = json.loads((custom / "recipe.json").read_text())
    (custom / "recipe.json").write_text(json.dumps({**recipe, "layout": "my-survey"}))
    with pytest.raises(PathCheckError, match="trained on layout 'my-survey' from a layout file"):
        layout_or_stores(None, tmp_path / "new.zarr", custom)
    assert layout_or_stores("my-survey.yaml", tmp_path / "new.zarr", custom) == "my-survey.yaml"  # given
    (custom / "recipe.json").write_text("{not json")
    assert recipe_layout(custom) is None and recipe_layout(tmp_path / "nowhere") is None
    # a model whose layout cannot be read is said to be wrong, not taken for the default layout's
    # (fresh-user trial: a mistyped, empty or file --model was told of euclid-sglc2's missing folders)
    with pytest.raises(BundleError, match="recipe"):
        layout_or_stores(None, tmp_path / "new.zarr", custom)
    with pytest.raises(PathCheckError, match=r"model bundle .*nowhere does not exist; check the path"):
        layout_or_stores(None, tmp_path / "new.zarr", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"empty is no model bundle \(no model.keras, recipe.json or card"):
        layout_or_stores(None, tmp_path / "new.zarr", tmp_path / "empty")
    with pytest.raises(PathCheckError, match=r"model\.keras is a file, not a directory"):
        layout_or_stores(None, tmp_path / "new.zarr", bundle / "model.keras")
    assert layout_or_stores("sglc1-ground", tmp_path / "new.zarr", tmp_path / "nowhere") == "sglc1-ground"


@pytest.mark.prefect
def test_run_with_a_first_challenge_model_ingests_in_its_layout(ground, tmp_path):
    source, bundle = ground
    work = tmp_path / "work"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(tmp_path / "ph")}
    command = [sys.executable, "-m", "flows.cli", "run", str(source), str(work), "--model", str(bundle)]
    command += ["--workers", "1", "--known-lenses", "none"]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert read_attributes(work / "store.zarr").layout == "sglc1-ground"
    assert (work / "scores" / "catalog.fits").is_file()


def test_the_shipped_models_layout_is_named_only_when_it_is_the_model_refused(ground):
    """Fresh-user trial: a user's model trained on sglc1-ground, refused for a euclid-sglc2 store, was told
    "(...; the shipped model is trained on euclid-sglc2 cutouts only)"."""
    from pipeline.errors import BundleError
    from pipeline.models import check_bundle_fits_layout, load_bundle

    _, bundle = ground
    euclid = load_layout("euclid-sglc2")
    mine = load_bundle(bundle)
    with pytest.raises(BundleError) as refused:
        check_bundle_fits_layout(mine, euclid.groups, euclid.name)
    assert "shipped model" not in str(refused.value)
    assert str(refused.value).endswith(f"model {mine.model_id} is trained on layout 'sglc1-ground')")
    shapes = dict.fromkeys(GROUND.groups, (7, 7))  # the groups it reads, at another size
    with pytest.raises(BundleError, match="pixels, but layout 'small' has 7x7") as refused:
        check_bundle_fits_layout(mine, GROUND.groups, "small", shapes=shapes)
    assert "shipped model" not in str(refused.value) and "trained on layout 'sglc1-ground'" in str(
        refused.value
    )
    with pytest.raises(BundleError) as refused:  # the shipped model itself: its layout said
        check_bundle_fits_layout(load_bundle(paths.shipped_model()), GROUND.groups, GROUND.name)
    assert "the shipped model is trained on euclid-sglc2 cutouts only" in str(refused.value)
