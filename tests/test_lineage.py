"""Which objects a bundle learned from (pipeline.training.lineage), on real bundle directories' files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.training.lineage import PARENT_FILE, init_chain, learned_ids, save_parent, seen_objects

HELD_OUT = (
    "(by object id, from the training/split.json of the model and the bundles it was fine-tuned from): if "
    "they are the same objects, this AUROC is not a held-out measure; if not, simulate separate sets with "
    "ids of their own (lenshunt simulate --first-id)"
)


def fake_bundle(path: Path, train: list, val: list, init: Path | None = None, sha: str = "0" * 64) -> Path:
    """A bundle directory as far as lineage reads it: card.json (sha256), training/split.json and, for a
    fine-tune, training/config.json and training/parent.json (``save_parent``, as `lenshunt train
    --init` writes it)."""
    (path / "training").mkdir(parents=True)
    (path / "training" / "split.json").write_text(
        json.dumps({"train_object_ids": train, "val_object_ids": val})
    )
    (path / "card.json").write_text(json.dumps({"sha256": sha}))
    if init is not None:
        (path / "training" / "config.json").write_text(json.dumps({"init": str(init.resolve())}))
        save_parent(path / "training", init)
    return path


def test_a_fine_tunes_chain_and_an_ensembles_members_are_all_counted(tmp_path):
    parent = fake_bundle(tmp_path / "parent", [1, 2, 3], [4], sha="a" * 64)
    child = fake_bundle(tmp_path / "child", [10, 11], [12], init=parent)
    member = fake_bundle(tmp_path / "ens" / "seed-1", [20], [21])
    assert init_chain(child, print) == [child.resolve(), parent.resolve()]
    trained, validated, problems = learned_ids([member, child])
    assert trained == {1, 2, 3, 10, 11, 20} and validated == {4, 12, 21} and problems == []
    # NumPy ids (what a store holds) match the JSON ones; an id one member validated on and another
    # trained on counts as trained
    ids = np.array([1, 4, 21, 99, 100], dtype=np.int64)
    assert seen_objects([member, child], ids, "a") == (
        {"a_learned_objects": 3.0},
        [
            "of this store's 5 objects, 1 is among the objects it trained on and 2 are among those it "
            f"chose its epoch on {HELD_OUT}"
        ],
    )
    assert seen_objects([parent], np.array([1, 2, 5]), "a_ceiling") == (
        {"a_ceiling_learned_objects": 2.0},
        [f"of this store's 3 objects, 2 are among the objects it trained on {HELD_OUT}"],
    )
    assert seen_objects([parent], np.array([4]), "a") == (
        {"a_learned_objects": 1.0},
        [f"of this store's 1 objects, 1 is among those it chose its epoch on {HELD_OUT}"],
    )
    assert seen_objects([child], np.array(["a", "b"]), "a") == ({}, [])
    strings = fake_bundle(tmp_path / "strings", ["a1"], [])
    assert seen_objects([strings], np.array(["a1", "b"]), "a")[0] == {"a_learned_objects": 1.0}  # strings too


def test_a_parent_retrained_in_place_is_not_taken_for_the_one_the_child_started_from(tmp_path):
    """New-user trial: a parent retrained into its own directory hid what the child had learned."""
    parent = fake_bundle(tmp_path / "parent", [1, 2, 3], [4], sha="a" * 64)
    child = fake_bundle(tmp_path / "child", [10], [11], init=parent)
    card = json.loads((parent / "card.json").read_text())
    (parent / "card.json").write_text(json.dumps({**card, "sha256": "b" * 64}))
    lines: list[str] = []
    assert init_chain(child, lines.append) == [child.resolve()]
    assert lines == [
        f"{child.resolve()} was fine-tuned from model sha256 {'a' * 16}, but the bundle now at "
        f"{parent.resolve()} is {'b' * 16}: the objects its parent learned from are not checked"
    ]
    entries, said = seen_objects([child], [10], "a")
    # the card keeps both (new-user trial: a replaced parent was said in the printed report only)
    assert entries == {"a_learned_objects": 1.0, "a_lineage_unchecked": 1.0} and said[1:] == lines
    assert json.loads((child / "training" / PARENT_FILE).read_text()) == {
        "init": str(parent.resolve()),
        "model_sha256": "a" * 64,
        "training_files": True,
        "kept_start": False,
    }
    # nor one whose model.keras alone was replaced, the card left as it was (last note's known problem)
    (parent / "card.json").write_text(json.dumps(card))
    (parent / "model.keras").write_bytes(b"the model the child started from")
    card = {**card, "sha256": hashlib.sha256(b"the model the child started from").hexdigest()}
    (parent / "card.json").write_text(json.dumps(card))
    save_parent(child / "training", parent)
    assert init_chain(child, print) == [child.resolve(), parent.resolve()]  # the same model: followed
    (parent / "model.keras").write_bytes(b"another model")
    lines.clear()
    assert init_chain(child, lines.append) == [child.resolve()]
    assert lines == [
        f"{child.resolve()} was fine-tuned from model sha256 {card['sha256'][:16]}, but the bundle now at "
        f"{parent.resolve()} is {hashlib.sha256(b'another model').hexdigest()[:16]}: the objects its parent "
        "learned from are not checked"
    ]
    # a fine-tune from before parent.json: the path alone is followed, as before
    (child / "training" / PARENT_FILE).unlink()
    assert init_chain(child, print) == [child.resolve(), parent.resolve()]
    save_parent(child / "training", None)  # a later run without --init removes nothing it needs
    assert not (child / "training" / PARENT_FILE).exists()


def test_a_fine_tune_of_a_bundle_without_training_files_has_nothing_to_check_moved_or_replaced(tmp_path):
    """Review: a fine-tune of the shipped model (no training directory) moved to another clone warned
    that its parent was not found; there was nothing to check there."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "card.json").write_text(json.dumps({"sha256": "c" * 64}))
    child = fake_bundle(tmp_path / "child", [10], [11], init=shipped)
    assert json.loads((child / "training" / PARENT_FILE).read_text())["training_files"] is False
    (shipped / "card.json").write_text(json.dumps({"sha256": "d" * 64}))  # a new release in place
    entries, said = seen_objects([child], [10, 12], "a")
    assert entries == {"a_learned_objects": 1.0} and len(said) == 1  # the child's own split, no parent
    (shipped / "card.json").unlink()
    shipped.rmdir()  # the clone moved
    lines: list[str] = []
    assert init_chain(child, lines.append) == [child.resolve()] and lines == []


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
    entries, said = seen_objects([child], [7], "a")
    assert (
        entries == {"a_lineage_unchecked": 1.0}
        and len(said) == 1
        and "config.json (or parent.json beside it) cannot be read" in said[0]
    )


def test_a_missing_parent_split_or_a_corrupt_one_becomes_a_warning_not_a_crash(tmp_path):
    parent = fake_bundle(tmp_path / "gone", [], [])
    child = fake_bundle(tmp_path / "child", [1], [2], init=parent)
    (parent / "card.json").unlink()
    (parent / "training" / "split.json").unlink()
    parent.joinpath("training").rmdir()
    parent.rmdir()
    lines: list[str] = []
    assert init_chain(child, lines.append) == [child.resolve()]
    gone = (
        f"{child.resolve()} was fine-tuned from {parent.resolve()}, which is not found: its training "
        "objects are not checked"
    )
    assert lines == [gone]
    assert seen_objects([child], [99], "a") == ({"a_lineage_unchecked": 1.0}, [gone])  # warned (review)
    for corrupt in ("{not json", "[1, 2]", '{"train_object_ids": "12"}'):
        (child / "training" / "split.json").write_text(corrupt)
        trained, validated, problems = learned_ids([child])
        assert (
            trained == set() == validated
            and problems[0] == gone
            and "split.json cannot be read" in problems[1]
        )
    # new-user trial: a trained bundle whose split was deleted passed for one that trained on nothing
    (child / "training" / "split.json").unlink()
    assert learned_ids([child])[2][1] == (
        f"{child.resolve() / 'training' / 'split.json'} is missing: the objects {child.resolve()} learned "
        "from are not checked"
    )
    # a loop of fine-tunes (a config edited by hand) stops at its first repeat
    a = fake_bundle(tmp_path / "a", [5], [])
    b = fake_bundle(tmp_path / "b", [6], [], init=a)
    (a / "training" / "config.json").write_text(json.dumps({"init": str(b.resolve())}))
    assert init_chain(b, print) == [b.resolve(), a.resolve()]


def test_a_fine_tune_does_not_validate_a_start_whose_lineage_cannot_be_checked(tmp_path):
    """New-user trial: a missing parent was only logged and the start validated anyway; an unreadable
    split gave the card the reason of an overlap."""
    from pipeline.training.config import TrainConfig
    from pipeline.training.finetune import UNFAIR_START, fair_start

    parent = fake_bundle(tmp_path / "parent", [1, 2], [3])
    config = TrainConfig(init=str(parent), keep_start=True)
    lines: list[str] = []
    assert fair_start(config, np.array([7, 8]), lines.append) == (config, None) and lines == []
    fitting, reason = fair_start(config, np.array([3, 8]), lines.append)  # a validation object of its
    assert not fitting.keep_start and reason == UNFAIR_START and len(lines) == 1
    (parent / "training" / "split.json").write_text("{not json")
    lines.clear()
    fitting, reason = fair_start(config, np.array([7, 8]), lines.append)
    assert not fitting.keep_start and reason.startswith("what --init, or a bundle it came from, learned from")
    assert (
        lines[0].startswith("the starting weights are not validated: ")
        and "split.json cannot be read" in lines[0]
    )
    child = fake_bundle(tmp_path / "child", [5], [6], init=fake_bundle(tmp_path / "gone", [], []))
    for path in sorted((tmp_path / "gone").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (tmp_path / "gone").rmdir()
    fitting, reason = fair_start(config.model_copy(update={"init": str(child)}), np.array([7]), lines.append)
    assert not fitting.keep_start and reason is not None and "which is not found" in lines[-1]


def test_a_parent_that_lost_its_training_files_is_said_and_a_bare_parent_s_card_is_read(tmp_path):
    """New-user trial: a fine-tune scored on the training store of the bundle it was fine-tuned from
    was not warned about, where that parent had no training files (its card names the store), or had
    them when the fine-tune started and has them no more (its objects were silently not checked)."""
    from types import SimpleNamespace

    from pipeline.training.lineage import fine_tuned_from, learned_from_store

    target = tmp_path / "set.zarr"
    target.mkdir()
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "card.json").write_text(json.dumps({"sha256": "c" * 64, "training_store": str(target)}))
    child = fake_bundle(tmp_path / "child", [10], [11], init=bare)

    def loaded(path: Path) -> SimpleNamespace:
        return SimpleNamespace(path=path, card=SimpleNamespace(training_store="elsewhere", metrics={}))

    assert init_chain(child, print) == [child.resolve()]  # nothing to count objects by
    assert fine_tuned_from(loaded(child)) == [bare.resolve()]
    entries, said = learned_from_store(loaded(child), target, [1, 2], "a")
    assert entries == {"a_trained_on_store": 1.0}
    assert said == [
        f"the card of {bare.resolve()} (a bundle it was fine-tuned from) names this very store ({target}) "
        "as its training store: no held-out AUROC"
    ]
    assert learned_from_store(loaded(child), tmp_path, [1, 2], "a") == ({}, [])  # another store: nothing
    (bare / "card.json").write_text(json.dumps({"sha256": "d" * 64, "training_store": str(target)}))
    assert fine_tuned_from(loaded(child)) == []  # replaced in place (a new release): another model's card
    # a parent with training files when the fine-tune started, and none now
    parent = fake_bundle(tmp_path / "parent", [1, 2], [3], sha="a" * 64)
    tuned = fake_bundle(tmp_path / "tuned", [10], [11], init=parent)
    (parent / "training" / "split.json").unlink()
    (parent / "training").rmdir()
    lines: list[str] = []
    assert init_chain(tuned, lines.append) == [tuned.resolve(), parent.resolve()]
    assert lines == [
        f"{tuned.resolve()} was fine-tuned from {parent.resolve()}, which had training files then and has "
        "none now: the objects it learned from are not checked"
    ]
    entries, said = seen_objects([tuned], [1, 10], "a")
    assert entries == {"a_learned_objects": 1.0, "a_lineage_unchecked": 1.0} and said[1:] == lines
