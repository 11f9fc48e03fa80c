"""The public API takes the common argument types a new user passes, or refuses them before any write.

Fresh-user trial: a ``Path`` in a path option of TrainConfig was "not a valid string"; a ``client`` of
None (or ``connect("local")`` without ``with``) failed after the store or the score run's record was
written; a layout name to ``ingest`` and a dict to ``train`` failed deep inside on a missing attribute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cutouts import write_set
from test_training import LAYOUT

import pipeline.compute
from pipeline import paths
from pipeline.compute import Profile, check_client
from pipeline.models import load_bundle
from pipeline.scoring import score_store
from pipeline.simulate import simulate_set
from pipeline.store import create_store, ingest, read_attributes
from pipeline.training import TrainConfig, TrainingError, train
from pipeline.training.finetune import saved_config
from schemas.catalog import Provenance
from schemas.layout import LAYOUTS_DIR, as_layout, load_layout, parse_layout
from schemas.store import StoreAttributes

IDS = list(range(700000, 700016))
NEEDED = r"a distributed\.Client, e\.g\. `with pipeline\.compute\.connect\('local'\) as client:`"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, dask_client) -> Path:
    """A real store of 16 objects, half lenses, of the training tests' tiny layout."""
    root = tmp_path_factory.mktemp("api")
    source = write_set(
        LAYOUT, root / "src", IDS, {object_id: index % 2 for index, object_id in enumerate(IDS)}
    )
    ingest(LAYOUT, source, root / "store.zarr", dask_client)
    return root / "store.zarr"


@pytest.fixture(scope="module")
def euclid_store(tmp_path_factory, dask_client) -> Path:
    """A real store of 4 objects of the layout the shipped model is trained on (it scores them)."""
    root, euclid = tmp_path_factory.mktemp("euclid"), load_layout("euclid-sglc2")
    ids = [100001, 100002, 100003, 100004]
    ingest(
        euclid,
        write_set(euclid, root / "src", ids, dict(zip(ids, [1, 0, 1, 0]))),
        root / "s.zarr",
        dask_client,
    )
    return root / "s.zarr"


def test_train_config_path_options_take_paths_and_save_as_strings_did(tmp_path):
    grades = tmp_path / "runs" / "graded"
    as_paths = TrainConfig(
        init=paths.shipped_model(),
        target_catalog=tmp_path / "truth.csv",
        grades=(grades,),
        store_id=tmp_path / "sim.zarr",
        epochs=1,
    )
    as_strings = TrainConfig(
        init=str(paths.shipped_model()),
        target_catalog=str(tmp_path / "truth.csv"),
        grades=(str(grades),),
        store_id=str(tmp_path / "sim.zarr"),
        epochs=1,
    )
    assert as_paths == as_strings and isinstance(as_paths.init, str) and isinstance(as_paths.grades[0], str)
    # training/config.json as train_bundle writes it: the same file either way, and it reads back
    saved = saved_config(as_paths).model_dump_json(indent=1)
    assert saved == saved_config(as_strings).model_dump_json(indent=1)
    assert json.loads(saved)["init"] == str(paths.shipped_model().resolve())
    (tmp_path / "config.json").write_text(saved)
    assert TrainConfig.from_saved(tmp_path / "config.json") == saved_config(as_strings)
    assert TrainConfig.from_options(init=paths.shipped_model()).init == str(paths.shipped_model())
    with pytest.raises(TrainingError, match="init"):  # a non-path is still refused, by its option
        TrainConfig.from_options(init=3)


def test_the_other_public_configs_take_paths_in_their_path_fields(tmp_path, small_store):
    profile = Profile(
        kind="slurm",
        name="p",
        memory="4GB",
        cores=1,
        local_directory=tmp_path / "scratch",
        log_directory=tmp_path / "logs",
        python=Path("/usr/bin/python3"),
    )
    assert profile.local_directory == str(tmp_path / "scratch") and profile.python == "/usr/bin/python3"
    card = load_bundle(paths.shipped_model()).card
    with_path = type(card).model_validate(card.model_dump() | {"training_store": small_store})
    assert (
        with_path.model_dump_json()
        == card.model_copy(update={"training_store": str(small_store)}).model_dump_json()
    )
    attributes = read_attributes(small_store)
    moved = StoreAttributes.model_validate(attributes.model_dump() | {"source": tmp_path / "src"})
    assert moved.source == str(tmp_path / "src")
    layout = LAYOUT.model_dump()
    layout["bands"][0]["path"] = Path("VIS") / "v-{id}.fits"
    assert parse_layout(layout) == LAYOUT
    fields = Provenance.model_fields
    assert "store" in fields  # the scored store's path, as score_store writes it
    provenance = Provenance.model_validate(
        {
            "model_id": "m",
            "model_sha256": "0" * 64,
            "store": small_store,
            "layout": LAYOUT.name,
            "code_version": "0",
            "date": "2026-01-01T00:00:00Z",
            "threshold": 0.5,
            "tta": False,
            "n_objects": 16,
            "n_scored": 16,
        }
    )
    assert provenance.store == str(small_store)


def _not_clients():
    """What the trial passed as a client: None, ``connect("local")`` without ``with``, an address."""
    return [None, pipeline.compute.connect("local"), "local"]


def test_score_store_refuses_what_is_no_client_before_writing(euclid_store, tmp_path):
    out = tmp_path / "runs" / "x4"
    for client in _not_clients():
        with pytest.raises(TypeError, match=rf"^score_store needs {NEEDED}; got ") as caught:
            score_store(euclid_store, paths.shipped_model(), out, client, known_lenses="none")
        assert not out.exists() and not (tmp_path / "runs").exists()  # no score-run.json to refuse the next
    assert str(caught.value).endswith(
        "got the string 'local' (a cluster: `with connect('local') as client:` gives its client)"
    )
    with pytest.raises(TypeError, match=r"got None$"):
        score_store(euclid_store, paths.shipped_model(), out, None)
    with pytest.raises(TypeError, match=r"_GeneratorContextManager \(a context manager: use it in a `with`"):
        score_store(euclid_store, paths.shipped_model(), out, pipeline.compute.connect("local"))


def test_ingest_refuses_what_is_no_client_before_creating_the_store(tmp_path):
    source = write_set(LAYOUT, tmp_path / "src", IDS[:2], {IDS[0]: 1, IDS[1]: 0})
    for client in _not_clients():
        with pytest.raises(TypeError, match=rf"^ingest needs {NEEDED}; got "):
            ingest(LAYOUT, source, tmp_path / "sim.zarr", client)
        assert not (tmp_path / "sim.zarr").exists()


def test_simulate_set_refuses_a_context_manager_for_a_client_before_writing(tmp_path):
    with pytest.raises(
        TypeError, match=rf"^simulate_set needs {NEEDED} or None \(run in this process\); got "
    ):
        simulate_set("sglc1-space", 2, tmp_path / "sim", client=pipeline.compute.connect("local"))
    with pytest.raises(
        TypeError, match=r"config=pipeline\.simulate\.SimulationConfig\(\.\.\.\) or None; got builtins.dict"
    ):
        simulate_set("sglc1-space", 2, tmp_path / "sim", config={"lens_fraction": 0.5})
    assert not (tmp_path / "sim").exists()


def test_check_client_takes_a_real_client(dask_client):
    from distributed import Client

    check_client(dask_client, "ingest")
    check_client(None, "simulate_set", optional=True)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as closed:
        check_client(closed, "ingest")
    with pytest.raises(TypeError, match=r"ingest needs an open distributed\.Client; this one is closed"):
        check_client(closed, "ingest")  # a client used after its `with` block (trial: accepted)


def test_a_layout_is_taken_by_name_or_yaml_path_and_anything_else_refused(tmp_path, dask_client):
    euclid = load_layout("euclid-sglc2")
    source = write_set(euclid, tmp_path / "src", [100001, 100002], {100001: 1, 100002: 0})
    report = ingest("euclid-sglc2", source, tmp_path / "by-name.zarr", dask_client)  # trial: no 'bands'
    assert report.n_after == 2 and read_attributes(tmp_path / "by-name.zarr").layout == "euclid-sglc2"
    report = ingest(LAYOUTS_DIR / "euclid-sglc2.yaml", source, tmp_path / "by-path.zarr", dask_client)
    assert report.n_after == 2
    refused = r"^ingest: layout must be a schemas\.layout\.Layout, a shipped layout's name \(e\.g\. "
    refused += r"'euclid-sglc2'\) or a layout YAML path; got builtins\.dict$"
    with pytest.raises(TypeError, match=refused):
        ingest(euclid.model_dump(), source, tmp_path / "dict.zarr", dask_client)
    assert not (tmp_path / "dict.zarr").exists()
    with pytest.raises(TypeError, match=r"^create_store: layout must be"):
        create_store(tmp_path / "none.zarr", None, source=str(source))
    assert not (tmp_path / "none.zarr").exists()
    assert as_layout(str(tmp_path / "by-name.zarr")) == load_layout(tmp_path / "by-name.zarr")


def test_train_takes_a_mapping_of_options_and_refuses_anything_else(small_store, tmp_path):
    with pytest.raises(
        TypeError, match=r"^train needs a pipeline\.training\.TrainConfig or a mapping of its options"
    ):
        train(small_store, tmp_path / "m", ["epochs", 1])
    with pytest.raises(TrainingError, match=r"invalid training options: epochs: 0 is not >= 1"):
        train(small_store, tmp_path / "m", {"epochs": 0})
    assert not (tmp_path / "m").exists()
    options = {
        "epochs": 1,
        "steps_per_epoch": 1,
        "batch_size": 4,
        "downsample": 4,
        "bn_calibration_batches": 0,
    }
    result = train(small_store, tmp_path / "m", options, log=lambda line: None)  # trial: no attribute 'init'
    saved = TrainConfig.from_saved(tmp_path / "m" / "training" / "config.json")
    assert saved.epochs == 1 and saved.steps_per_epoch == 1 and result.epochs_run == 1
