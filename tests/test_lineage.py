"""Which objects a bundle learned from (pipeline.training.lineage), on real bundle directories' files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.training.lineage import init_chain, learned_ids, seen_objects_warnings

HELD_OUT = (
    "(by object id, from the training/split.json of the model and the bundles it was fine-tuned from): if "
    "they are the same objects, this AUROC is not a held-out measure; if not, give a set simulated apart "
    "ids of its own (lenshunt simulate --first-id)"
)


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
    member = fake_bundle(tmp_path / "ens" / "seed-1", [20], [21])
    assert init_chain(child, print) == [child.resolve(), parent.resolve()]
    trained, validated, unreadable = learned_ids([member, child], print)
    assert trained == {1, 2, 3, 10, 11, 20} and validated == {4, 12, 21} and unreadable == []
    # NumPy ids (what a store holds) match the JSON ones; an id one member validated on and another
    # trained on counts as trained
    ids = np.array([1, 4, 21, 99, 100], dtype=np.int64)
    assert seen_objects_warnings([member, child], ids) == [
        f"of this store's 5 objects, 1 is among the objects it trained on and 2 among those it chose its "
        f"epoch on {HELD_OUT}"
    ]
    assert seen_objects_warnings([parent], np.array([1, 2, 5])) == [
        f"of this store's 3 objects, 2 are among the objects it trained on {HELD_OUT}"
    ]
    assert seen_objects_warnings([child], np.array(["a", "b"])) == []
    strings = fake_bundle(tmp_path / "strings", ["a1"], [])
    assert len(seen_objects_warnings([strings], np.array(["a1", "b"]))) == 1  # string ids too


@pytest.mark.parametrize(
    "config",
    ["{not json", "[1]", '{"init": 5}'],
    ids=["corrupt", "not-a-mapping", "not-a-path"],
)
def test_a_config_that_names_no_parent_readably_is_said_not_raised(tmp_path, config):
    """Review: a hand-edited training/config.json crashed the chain."""
    child = fake_bundle(tmp_path / "child", [1], [2])
    (child / "training" / "config.json").write_text(config)
    lines: list[str] = []
    assert init_chain(child, lines.append) == [child.resolve()]
    assert len(lines) == 1 and "cannot be read" in lines[0] and "are not checked" in lines[0]
    said = seen_objects_warnings([child], [7])
    assert len(said) == 1 and "config.json cannot be read" in said[0]


def test_a_missing_parent_or_corrupt_split_becomes_a_warning_not_a_crash(tmp_path):
    child = fake_bundle(tmp_path / "child", [1], [2], init=tmp_path / "gone")
    lines: list[str] = []
    assert init_chain(child, lines.append) == [child.resolve()]
    gone = (
        f"{child.resolve()} was fine-tuned from {(tmp_path / 'gone').resolve()}, which is not found: its "
        "training objects are not checked"
    )
    assert lines == [gone]
    assert seen_objects_warnings([child], [99]) == [gone]  # said in the domain check's warnings (review)
    for corrupt in ("{not json", "[1, 2]", '{"train_object_ids": "12"}'):
        (child / "training" / "split.json").write_text(corrupt)
        trained, validated, unreadable = learned_ids([child], lines.append)
        assert trained == set() == validated and len(unreadable) == 1 and "split.json" in unreadable[0]
        assert any(
            "split.json" in said and "cannot be read" in said for said in seen_objects_warnings([child], [1])
        )
    # a loop of fine-tunes (a config edited by hand) stops at its first repeat
    a = fake_bundle(tmp_path / "a", [5], [], init=tmp_path / "b")
    fake_bundle(tmp_path / "b", [6], [], init=a)
    assert init_chain(a, print) == [a.resolve(), (tmp_path / "b").resolve()]
