"""Which objects a bundle learned from (pipeline.training.lineage), on real bundle directories' files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.training.lineage import init_chain, learned_ids, seen_objects_warning


def fake_bundle(path: Path, train: list, val: list, init: Path | None = None) -> Path:
    (path / "training").mkdir(parents=True)
    (path / "training" / "split.json").write_text(
        json.dumps({"train_object_ids": train, "val_object_ids": val})
    )
    if init is not None:
        (path / "training" / "config.json").write_text(json.dumps({"init": str(init.resolve())}))
    return path


def test_a_fine_tunes_chain_and_an_ensembles_members_are_all_counted(tmp_path):
    parent = fake_bundle(tmp_path / "parent", [1, 2, 3], [4])
    child = fake_bundle(tmp_path / "child", [10, 11], [12], init=parent)
    other = fake_bundle(tmp_path / "ens" / "seed-1", [20], [21])
    (tmp_path / "ens" / "ensemble.json").write_text(
        json.dumps({"members": [{"path": "seed-1"}, {"path": "../child"}]})
    )
    assert init_chain(child, print) == [child.resolve(), parent.resolve()]
    trained, validated, unreadable = learned_ids(tmp_path / "ens", print)
    assert trained == {1, 2, 3, 10, 11, 20} and validated == {4, 12, 21} and unreadable == []
    assert other.exists()
    # NumPy ids (what a store holds) match the JSON ones; an id validated by one member and trained on
    # by another counts as trained
    warning = seen_objects_warning(tmp_path / "ens", np.array([1, 4, 21, 99, 100], dtype=np.int64))
    assert warning == (
        "of this store's 5 objects, 1 are among the objects it trained on and 2 among those it chose its "
        "epoch on (by object id, from the training/split.json of the model, its members and the bundles it "
        "was fine-tuned from): if they are the same objects, this AUROC is not a held-out measure"
    )
    assert seen_objects_warning(child, np.array(["a", "b"])) is None
    assert seen_objects_warning(tmp_path / "parent", np.array([3])).endswith(
        "this AUROC is not a held-out measure"
    )


def test_a_missing_parent_is_logged_and_a_corrupt_split_is_named_not_raised(tmp_path):
    child = fake_bundle(tmp_path / "child", [1], [2], init=tmp_path / "gone")
    lines: list[str] = []
    assert init_chain(child, lines.append) == [child.resolve()]
    assert lines == [
        f"{child.resolve()} was fine-tuned from {(tmp_path / 'gone').resolve()}, which is not "
        "found: its training objects are not checked"
    ]
    (child / "training" / "split.json").write_text("{not json")
    trained, validated, unreadable = learned_ids(child, lines.append)
    assert trained == set() == validated and len(unreadable) == 1 and "split.json" in unreadable[0]
    warning = seen_objects_warning(child, [1], log=lines.append)
    assert warning is not None and warning.startswith("training/split.json not read: ")
    # a loop of fine-tunes (a config edited by hand) stops at its first repeat
    a = fake_bundle(tmp_path / "a", [5], [], init=tmp_path / "b")
    fake_bundle(tmp_path / "b", [6], [], init=a)
    assert init_chain(a, print) == [a.resolve(), (tmp_path / "b").resolve()]
