"""Counts of 1 in the rarer messages of training's batches and reads: "1 lens", "1 object ... has".

Trial: "got 1 lenses and 0 non-lenses", "1 objects to train on (rows [10]...) have a band without
pixels". The reads are of a real store (``test_training``'s) with a chunk file deleted.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_training import store  # noqa: F401 - the training tests' store fixture

from pipeline.errors import StoreError
from pipeline.store import open_store
from pipeline.training.dataset import BatchPlan, BlockReader


def test_a_batch_plan_of_one_class_counts_one_lens_in_the_singular():
    with pytest.raises(ValueError, match=r"^balanced batches need both classes; got 1 lens and 0 non-lenses"):
        BatchPlan(np.arange(0), np.array([7]), 10, 16, seed=0)
    with pytest.raises(ValueError, match=r"; got 0 lenses and 1 non-lens$"):
        BatchPlan(np.array([7]), np.arange(0), 10, 16, seed=0)


def test_objects_that_lost_their_pixels_are_counted_in_the_singular_for_one(store, tmp_path):  # noqa: F811
    broken = shutil.copytree(store, tmp_path / "broken.zarr")
    shards = sorted(path for path in (broken / "vis" / "c").rglob("*") if path.is_file())
    shards[0].unlink()  # the first objects' VIS pixels: read as NaN (the fill value)
    reader = BlockReader(open_store(broken, chunks=None), ["vis", "nir"])
    with pytest.raises(StoreError) as raised:
        reader.read_usable(np.array([10, 40, 41]))
    assert str(raised.value).startswith(
        "1 object to train on (row [10]) has a band without pixels in the store although ingest read it"
    )
    with pytest.raises(StoreError) as raised:
        reader.read_usable(np.arange(4, 12))
    said = str(raised.value)
    assert said.startswith("8 objects to train on (rows [4, 5, 6, 7, 8]...) have a band without pixels"), said
