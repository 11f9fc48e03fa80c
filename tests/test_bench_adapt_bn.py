"""Test-time BatchNorm adaptation (bench/adapt_bn.py), which a RESULTS section was measured with."""

from __future__ import annotations

import numpy as np
import pytest
from bundles import make_bundle
from cutouts import write_set

from bench.adapt_bn import adapted_scores, main, target_batches
from pipeline.store import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")


def test_batches_cover_the_rows_once_in_whole_batches():
    inputs = {"image": np.arange(10)[:, None]}
    batches = list(target_batches(inputs, np.arange(2, 9), 3, seed=0))
    assert [len(batch["image"]) for batch in batches] == [3, 3]  # 7 rows: the last one dropped
    seen = np.concatenate([batch["image"][:, 0] for batch in batches])
    assert len(set(seen)) == 6 and set(seen) <= set(range(2, 9))


def test_adaptation_moves_the_scores_and_restores_the_trained_statistics(tmp_path, dask_client, capsys):
    from pipeline.models import load_bundle
    from pipeline.store import open_store
    from pipeline.training.batchnorm import batch_norm_layers

    ids = list(range(800000, 800016))
    source = write_set(EUCLID, tmp_path / "src", ids, {i: i % 2 for i in ids})
    ingest(EUCLID, source, tmp_path / "s.zarr", dask_client)
    bundle = load_bundle(make_bundle(tmp_path / "s.zarr", tmp_path / "b"))
    dataset = open_store(tmp_path / "s.zarr", chunks=None)
    inputs = bundle.prepare({group: dataset[group].values for group in bundle.groups})
    trained = bundle.predict_outputs(inputs)["score"].reshape(-1)
    before = [layer.moving_mean.numpy().copy() for layer in batch_norm_layers(bundle.model)]
    adapted = adapted_scores(bundle, inputs, np.arange(16), batch_size=8)
    assert adapted.shape == (16,) and not np.allclose(adapted, trained)  # untrained: mean 0, variance 1
    after = [layer.moving_mean.numpy() for layer in batch_norm_layers(bundle.model)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    np.testing.assert_array_equal(bundle.predict_outputs(inputs)["score"].reshape(-1), trained)
    with pytest.raises(ValueError, match="give no batch of 64"):
        adapted_scores(bundle, inputs, np.arange(16))
    assert main([str(tmp_path / "b"), f"tiny={tmp_path / 's.zarr'}", "--batch-size", "4"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith("| tiny | 16 | ") and row.count("|") == 7
