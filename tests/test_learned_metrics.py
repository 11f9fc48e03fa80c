"""The evaluation of a run says when its labelled objects are ones the scoring model trained or validated
on (new-user trial: a model trained on a labelled set and run on that set reported its AUROC, TPR0
and TPR10 as normal; ``metrics.json`` had ``"notes": []``).

Real ring-lens stores of ``test_training`` (the same objects by id, and other ids), a real bundle
trained on the first, scored by the real pipeline on the session's Dask cluster, and the real
evaluation (``metrics.json``, the report, the command's summary).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_adaptation import CARTESIAN, QUICK
from test_training import ring_store, store  # noqa: F401 - the store fixture of the training tests

from flows.evaluate import evaluation_summary
from pipeline import paths
from pipeline.catalog import read_catalog, read_provenance, write_catalog
from pipeline.catalog.columns import LAYOUT_ATTR
from pipeline.evaluation import evaluate, evaluate_run, read_metrics
from pipeline.models import save_ensemble
from pipeline.scoring.run import score_store
from pipeline.training import TrainConfig, train

NOT_HELD_OUT = "if they are the same objects, these metrics are not held-out"


@pytest.fixture(scope="module")
def bundle(store, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("learned") / "g1"
    train(store, out, TrainConfig(seed=5, **QUICK, **CARTESIAN), log=str)
    return out


def split_ids(bundle: Path) -> tuple[set[int], set[int]]:
    split = json.loads((bundle / "training" / "split.json").read_text())
    return set(split["train_object_ids"]), set(split["val_object_ids"])


def scored_and_evaluated(scored: Path, model: Path, out: Path, client):
    score_store(scored, model, out, client, batch_size=16)
    return evaluate_run(out, scored)


def test_a_run_on_the_models_own_training_objects_says_so(store, bundle, tmp_path, dask_client):  # noqa: F811
    result = scored_and_evaluated(store, bundle, tmp_path / "run", dask_client)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "run"))
    labelled = set(catalog.loc[catalog["label"] >= 0, "object_id"].tolist())
    trained, validated = split_ids(bundle)
    n_trained, n_validated = len(labelled & trained), len(labelled & validated - trained)
    assert n_trained > 0 and n_validated > 0
    metrics = read_metrics(paths.metrics_file(tmp_path / "run"))
    assert (metrics.n_learned_trained, metrics.n_learned_validated) == (n_trained, n_validated)
    assert metrics.held_out is None  # the labelled objects it never learned from are unscored (damaged)
    [note] = [note for note in metrics.notes if NOT_HELD_OUT in note]
    assert note.startswith(
        f"{n_trained} of the {len(labelled)} labelled objects have the ids of objects the model "
        f"{metrics_model(tmp_path / 'run')} ({bundle.resolve()}) trained on, and {n_validated} others it "
        "validated on"  # disjoint counts (trial: "of those" read as a subset)
    )
    assert "every scored labelled object is one it learned from" in note
    assert result.warnings == (note,)
    page = result.report_path.read_text()
    assert (
        "Objects the model learned from:" in page and f"{n_trained} of the {len(labelled)} labelled" in page
    )
    assert "Never learned from" not in page
    summary = evaluation_summary(result)  # what `lenshunt evaluate` prints: a warning line, once
    assert summary.count(f"warning: {note}") == 1 and f"note:    {note}" not in summary


def metrics_model(run: Path) -> str:
    return read_provenance(paths.catalog_parquet(run)).model_id


def test_an_ensemble_member_that_learned_some_of_them_gets_metrics_on_the_others(
    store,  # noqa: F811
    bundle,
    tmp_path,
    dask_client,
):
    """A store that holds 32 of the training store's objects (by id) and 32 others; scored by an
    ensemble whose member is the trained bundle (with its training files)."""
    shifted = ring_store(tmp_path / "shifted", dask_client, offset=32)
    ensemble = tmp_path / "ens"
    shutil.copytree(bundle, ensemble / "seed-5")
    save_ensemble(ensemble, [ensemble / "seed-5"], model_id="ens")
    result = scored_and_evaluated(shifted, ensemble, tmp_path / "run", dask_client)
    catalog = read_catalog(paths.catalog_parquet(tmp_path / "run"))
    trained, validated = split_ids(bundle)
    learned = catalog["object_id"].isin(trained | validated).to_numpy()
    labelled = catalog["label"].to_numpy() >= 0
    metrics = read_metrics(paths.metrics_file(tmp_path / "run"))
    assert metrics.n_learned_trained + metrics.n_learned_validated == int((learned & labelled).sum()) > 0
    # the held-out metrics are those of the objects it never learned from, alone
    others = catalog[~learned]
    expected = evaluate(others["label"].to_numpy(), others["score"].to_numpy(), threshold=metrics.threshold)
    assert metrics.held_out == expected and expected.n_pos > 0 and expected.n_neg > 0
    assert metrics.auroc is not None and metrics.n_pos + metrics.n_neg > expected.n_pos + expected.n_neg
    [note] = result.warnings
    assert NOT_HELD_OUT in note and note in metrics.notes
    assert f"its metrics on the {expected.n_pos + expected.n_neg} scored labelled objects it never" in note
    page = result.report_path.read_text()
    assert "Never learned from" in page and note.split(":")[0] in page


def test_a_model_that_never_saw_them_and_an_older_catalog_get_no_note(store, bundle, tmp_path, dask_client):  # noqa: F811
    other = ring_store(tmp_path / "other", dask_client, offset=1000)
    result = scored_and_evaluated(other, bundle, tmp_path / "run", dask_client)
    metrics = read_metrics(paths.metrics_file(tmp_path / "run"))
    assert (metrics.n_learned_trained, metrics.n_learned_validated, metrics.held_out) == (0, 0, None)
    assert result.warnings == () and not any("learned" in note for note in metrics.notes)
    assert "Objects the model learned from" not in result.report_path.read_text()

    # a catalog of the model's own store written before the bundle's path was recorded: not checked,
    # no false note (and none of the new counts)
    score_store(store, bundle, tmp_path / "own", dask_client, batch_size=16)
    older = rewritten(tmp_path / "own", tmp_path / "older", drop="model_path")
    result = evaluate_run(older, store)
    metrics = read_metrics(paths.metrics_file(older))
    assert result.warnings == () and metrics.n_learned_trained is None and metrics.held_out is None
    assert not any(NOT_HELD_OUT in note for note in metrics.notes)

    # a bundle moved away since: said to be unchecked, no counts
    moved = rewritten(tmp_path / "own", tmp_path / "moved", model_path=str(tmp_path / "gone"))
    [note] = evaluate_run(moved, store).warnings
    assert note.startswith("whether the labelled objects are ones the model") and "not checked" in note
    assert read_metrics(paths.metrics_file(moved)).n_learned_trained is None


def rewritten(run: Path, out: Path, *, drop: str | None = None, **extras: str) -> Path:
    """``run``'s catalog written again into ``out`` with its provenance's ``extras`` changed."""
    catalog = read_catalog(paths.catalog_parquet(run))
    catalog.attrs = {LAYOUT_ATTR: catalog.attrs[LAYOUT_ATTR]}
    provenance = read_provenance(paths.catalog_parquet(run))
    changed = {key: value for key, value in provenance.extras.items() if key != drop} | extras
    write_catalog(
        catalog, out, provenance.model_copy(update={"extras": changed}), expected_n=len(catalog), hats=False
    )
    assert np.array_equal(read_catalog(paths.catalog_parquet(out))["object_id"], catalog["object_id"])
    return out


def test_lenshunt_runs_summary_says_the_note_as_a_warning_line():
    from flows.run import RunSummary

    note = "48 of the 60 labelled objects have the ids of objects the model g1 trained on ..."
    metrics = {"auroc": 0.82, "notes": [note, "2 lenses were not scored (flagged)"]}
    lines = RunSummary(
        store="s.zarr", n_objects=60, n_new_objects=60, n_scored_new=60, n_scored=60, n_reread=0,
        n_rewritten=0, catalog_fits="c.fits", catalog_parquet="c.parquet", report="r.html", metrics=metrics,
        warnings=(note,),
    ).summary().splitlines()  # fmt: skip
    assert lines[-2:] == [f"warning: {note}", "note:    2 lenses were not scored (flagged)"]
