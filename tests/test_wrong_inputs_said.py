"""Wrong inputs a fresh-user trial gave the command line and the Python API: each is one clear error,
before anything is written.

Trial findings: ``info --layout-yaml BUNDLE > m.yaml`` wrote the model's summary (exit 0);
``simulate`` wrote a set into a store and into a model bundle (exit 0); ``load_layout`` of a folder
raised ``IsADirectoryError`` and of a dict ``expected str, bytes or os.PathLike``; ``ingest`` of a
missing source a bare ``FileNotFoundError``; ``score_store(threshold=2)`` made the output folder and
its lock file first; ``simulate_set(layout, "5", ...)`` a ``'<=' not supported`` TypeError. Real
FITS sets, real Zarr stores, a real Dask cluster, the real CLI in process.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from cutouts import write_set

from flows.cli import main
from pipeline import paths
from pipeline.errors import LenshuntError, OptionValueError, SourceNotFoundError
from pipeline.scoring import score_store
from pipeline.simulate import simulate_set
from pipeline.store import ingest
from schemas.layout import LayoutError, load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = [100001, 100002]


@pytest.fixture(scope="module")
def store(tmp_path_factory, dask_client):
    root = tmp_path_factory.mktemp("wrong")
    ingest(EUCLID, write_set(EUCLID, root / "set", IDS, {100001: 1, 100002: 0}), root / "s.zarr", dask_client)
    return root / "s.zarr"


def test_info_layout_yaml_of_a_bundle_is_its_layout_or_one_error(tmp_path, capsys):
    written = tmp_path / "m.yaml"
    assert main(["info", "--layout-yaml", str(paths.shipped_model())]) == 0
    written.write_text(capsys.readouterr().out)
    assert load_layout(written) == EUCLID  # the layout it was trained on, as a file
    assert yaml.safe_load(written.read_text())["name"] == "euclid-sglc2"
    model = tmp_path / "mine"
    shutil.copytree(paths.shipped_model(), model)
    recipe = json.loads((model / "recipe.json").read_text())
    (model / "recipe.json").write_text(json.dumps({**recipe, "layout": "my-survey"}))
    assert main(["info", "--layout-yaml", str(model)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"model {model} was trained on layout 'my-survey' from a layout file" in captured.err


def test_simulate_refuses_an_output_folder_in_a_store_or_a_bundle(store, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(paths.shipped_model(), model)
    for out, said in (
        (store, f"output folder {store} is a Zarr store"),
        (store / "set", f"output folder {store / 'set'} lies inside the Zarr store {store}"),
        (model, f"output folder {model} is the model bundle {model}"),
        (model / "set", f"output folder {model / 'set'} lies inside the model bundle {model}"),
    ):
        before = sorted(p.name for p in out.parent.rglob("*"))
        assert main(["simulate", "--n", "2", "--first-id", "500000", str(out)]) == 1
        assert said in capsys.readouterr().err
        assert sorted(p.name for p in out.parent.rglob("*")) == before


def test_load_layout_says_what_a_folder_or_an_object_is(store, tmp_path):
    with pytest.raises(LayoutError, match=r"is a folder, neither a layout YAML file, a lenshunt store"):
        load_layout(tmp_path)
    with pytest.raises(
        LayoutError, match=r"new\.zarr does not exist \(no layout YAML file, no store there\)"
    ):
        load_layout(tmp_path / "new.zarr")
    with pytest.raises(
        TypeError, match=r"load_layout: layout must be a schemas\.layout\.Layout.*got builtins\.dict"
    ):
        load_layout({"name": "x"})
    assert load_layout(EUCLID) is EUCLID
    assert load_layout(store) == EUCLID


def test_ingest_of_a_missing_source_is_a_lenshunt_error(tmp_path, dask_client):
    for source in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(SourceNotFoundError) as raised:
            ingest(EUCLID, source, tmp_path / "s.zarr", dask_client)
        assert isinstance(raised.value, LenshuntError) and isinstance(raised.value, FileNotFoundError)
        assert not (tmp_path / "s.zarr").exists()


def test_a_bad_threshold_or_count_is_refused_before_a_folder_is_made(store, tmp_path, dask_client):
    with pytest.raises(OptionValueError, match=r"threshold 2 is not a probability in \[0, 1\]"):
        score_store(store, paths.shipped_model(), tmp_path / "run", dask_client, threshold=2)
    assert not (tmp_path / "run").exists()
    with pytest.raises(TypeError, match=r"n_objects must be an integer; got str '5'"):
        simulate_set(EUCLID, "5", tmp_path / "sim")
    assert not (tmp_path / "sim").exists()
