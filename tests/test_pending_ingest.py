"""A score run of a store half-written by a killed ingest says what it leaves out, and the README's
way of opening the store keeps to the committed rows.

New-user trial: ``lenshunt info`` said an interrupted ingest planned more objects, the score run
said "4/4 scored in all" and nothing of them. Real FITS files, a real ingest on the session's Dask
cluster, a real score run with the shipped model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from cutouts import write_set

from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.sources import discover, labels_for
from pipeline.store.ingestion import ingest, ingest_region, plan_regions, start_plan
from pipeline.store.zarr_store import read_attributes
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(310000, 310012))


def interrupt_ingest(layout, source, store, n_before: int, n_new: int) -> None:
    """What an ingest of ``n_new`` more objects of ``source`` killed with -9 leaves: its plan pending,
    the arrays grown, its first region written but not committed."""
    manifest = discover(layout, source)
    new_ids = manifest.object_ids[n_before:]
    assert len(new_ids) == n_new
    plan_id = start_plan(store, new_ids)
    labels, _ = labels_for(layout, new_ids, source)
    start, stop = plan_regions(n_before, n_new, read_attributes(store).chunk_objects)[0]
    ingest_region(
        str(store),
        read_attributes(store).layout_yaml,
        plan_id,
        0,
        start,
        manifest.select_or_missing(new_ids[: stop - start]),
        labels[: stop - start],
    )


def test_a_score_run_says_what_an_interrupted_ingest_left_uncommitted(tmp_path, dask_client):
    source = write_set(EUCLID, tmp_path / "src", IDS[:4])
    store = tmp_path / "store.zarr"
    ingest(EUCLID, source, store, dask_client, chunk_objects=4)
    write_set(EUCLID, source, IDS[4:])  # 8 more, of which an ingest killed with -9 wrote one region
    interrupt_ingest(EUCLID, source, store, 4, 8)
    result = score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
    assert (result.n_scored, result.n_objects) == (4, 4)
    assert (
        f"  WARNING: an interrupted ingest planned 8 more objects, not committed yet, which this run does "
        f"not score: rerun `lenshunt ingest {source} {store}` to finish it, then score again"
    ) in result.summary()
    # the README's way of opening the store: every row, unless kept to the committed ones
    raw = xr.open_zarr(store, consolidated=False)
    assert raw.sizes["object"] == 12 and (raw["object_id"].values[8:] == -1).all()
    committed = raw.isel(object=slice(0, raw.attrs["n_objects"]))
    assert committed["object_id"].values.tolist() == IDS[:4]

    finished = ingest(EUCLID, source, store, dask_client)
    assert finished.n_resumed == 8
    rerun = score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
    assert rerun.n_pending == 0 and "interrupted ingest" not in rerun.summary()


def _killed_before_a_region(tmp_path, what: str) -> tuple[Path, str]:
    """A store whose first ingest of 6 objects was killed before a region committed, and the refusal
    of a command that needs objects (``what`` it has nothing for)."""
    from pipeline.store.zarr_store import create_store

    source = write_set(EUCLID, tmp_path / "src", IDS[:6])
    store = tmp_path / "store.zarr"
    create_store(store, EUCLID, source=str(source), chunk_objects=16)
    start_plan(store, discover(EUCLID, source).object_ids, source=str(source))  # killed before a region
    return store, (
        f"{store} holds no committed object yet (an interrupted ingest planned 6 objects: rerun "
        f"`lenshunt ingest {source} {store}` to finish it): {what}"
    )


def test_a_store_whose_first_ingest_was_killed_is_nothing_to_score_in_one_line(tmp_path, dask_client):
    """Trial: an ingest killed before its first region committed left a store of 0 objects and a plan;
    ``lenshunt score`` of it failed with ``KeyError: 'flags_added'`` and a traceback."""
    from test_cli_process import _assert_one_line_errors_before_prefect

    from pipeline.errors import StoreError

    store, expected = _killed_before_a_region(tmp_path, "nothing to score")
    with pytest.raises(StoreError) as refused:
        score_store(store, shipped_model(), tmp_path / "run", dask_client, known_lenses=None)
    assert str(refused.value) == expected
    _assert_one_line_errors_before_prefect([(("score", str(store), "--out", str(tmp_path / "o")), expected)])
    assert not (tmp_path / "run").exists() and not (tmp_path / "o").exists()


@pytest.mark.prefect
def test_train_and_cutout_say_what_an_interrupted_ingest_left_uncommitted(
    prefect_harness, tmp_path, dask_client, capsys
):
    """Trial: ``lenshunt score`` said so; ``lenshunt train`` trained on the committed objects unsaid and
    ``lenshunt cutout`` of an uncommitted object said it was not in the store."""
    import json

    from test_training import LAYOUT

    from flows.cli import main

    ids = list(range(520000, 520032))
    labels = {object_id: index % 2 for index, object_id in enumerate(ids)}
    source = write_set(LAYOUT, tmp_path / "src", ids[:24], labels)
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=4)
    write_set(LAYOUT, source, ids[24:], labels)  # 8 more, of which the killed ingest wrote 4
    interrupt_ingest(LAYOUT, source, store, 24, 8)
    warning = (
        "an interrupted ingest planned 8 more objects, not committed yet, {}: rerun "
        f"`lenshunt ingest {source} {store}` to finish it, then {{}}"
    )

    out = tmp_path / "cut"
    assert main(["cutout", str(store), str(ids[0]), "--out", str(out), "--bands", "VIS"]) == 0
    capsys.readouterr()
    for object_id in (ids[25], ids[30]):  # its region written, and not
        assert main(["cutout", str(store), str(object_id), "--out", str(out)]) == 1
        said = capsys.readouterr().err.strip()
        assert said == f"lenshunt cutout: error: object {object_id} is not in {store} yet: " + warning.format(
            f"among them {object_id}", "write its cutouts again"
        )
    assert main(["cutout", str(store), "1", "--out", str(out)]) == 1  # in no plan: not in the store
    assert capsys.readouterr().err.strip() == (
        f"lenshunt cutout: error: object 1 is not in {store}; `lenshunt info {store}` shows what it holds"
    )
    assert sorted(path.name for path in out.iterdir()) == [f"{ids[0]}_VIS.fits"]

    model = tmp_path / "model"
    options = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--downsample", "4"]
    assert main(["train", str(store), str(model), *options]) == 0
    printed = capsys.readouterr().out.splitlines()
    said = "  WARNING: " + warning.format("which this training leaves out", "train again")
    assert printed[-1] == said, printed
    split = json.loads((model / "training" / "split.json").read_text())
    assert sorted(split["train_object_ids"] + split["val_object_ids"]) == ids[:24]  # the committed ones

    assert main(["info", str(store)]) == 0  # in the same words
    pending = "pending    " + warning.format("left out by score, train and cutout", "")
    assert pending.removesuffix(", then ") in capsys.readouterr().out.splitlines()

    ingest(LAYOUT, source, store, dask_client)  # finished: nothing said any more
    assert main(["cutout", str(store), str(ids[30]), "--out", str(out), "--bands", "VIS"]) == 0
    assert main(["train", str(store), str(model), "--overwrite", *options]) == 0
    assert "interrupted ingest" not in capsys.readouterr().out


def test_a_store_whose_first_ingest_was_killed_is_nothing_to_train_on_in_one_line(tmp_path):
    from test_cli_process import _assert_one_line_errors_before_prefect

    store, expected = _killed_before_a_region(tmp_path, "nothing to train on")
    _assert_one_line_errors_before_prefect([(("train", str(store), str(tmp_path / "m")), expected)])
    assert not (tmp_path / "m").exists()


def test_info_of_a_work_directorys_store_says_its_next_run_finishes_the_ingest(tmp_path, capsys):
    """Trial: ``lenshunt info WORKDIR/store.zarr`` after a killed ``lenshunt run`` told only to rerun
    ``lenshunt ingest SRC STORE``; the next run (or serve firing) of the work directory finishes it too.
    A store elsewhere is told the ingest alone."""
    import numpy as np

    from flows.cli import main
    from pipeline.paths import output_lock_file
    from pipeline.store.zarr_store import create_store

    source = tmp_path / "src"
    source.mkdir()
    workdir = tmp_path / "work"
    store = workdir / "store.zarr"
    create_store(store, EUCLID, source=str(source))
    start_plan(store, np.arange(100000, 100007), source=str(source))  # a run killed in its ingest
    output_lock_file(workdir, "run").touch()  # kept by every run of a work directory
    assert main(["info", str(store)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("pending")]
    assert line.endswith(
        f"rerun `lenshunt ingest {source} {store}` to finish it (so does the next `lenshunt run {source} "
        f"{workdir}`, or a firing of the `lenshunt serve` of that work directory)"
    ), line
    output_lock_file(workdir, "run").unlink()  # a store named so, never a run's
    assert main(["info", str(store)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("pending")]
    assert line.endswith(f"rerun `lenshunt ingest {source} {store}` to finish it"), line
