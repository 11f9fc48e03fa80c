"""Dihedral transforms (pipeline.preprocess.augment): group properties, batch augmentation, TTA summaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from arrays import host

from pipeline.preprocess.augment import (
    N_DIHEDRAL,
    all_dihedral,
    compose_dihedral,
    dihedral,
    invert_dihedral,
    random_dihedral,
    tta_mean_spread,
)


@pytest.fixture
def batch(xp):
    return xp.asarray(np.random.default_rng(0).normal(size=(3, 5, 5, 2)).astype(np.float32))


def test_identity_and_eight_distinct_transforms(batch):
    np.testing.assert_array_equal(host(dihedral(batch, 0)), host(batch))
    images = [host(dihedral(batch, k)).tobytes() for k in range(N_DIHEDRAL)]
    assert len(set(images)) == N_DIHEDRAL


def test_transforms_match_numpy_rotations_and_flips(batch):
    x = host(batch)
    np.testing.assert_array_equal(host(dihedral(batch, 1)), np.rot90(x, 1, axes=(1, 2)))
    np.testing.assert_array_equal(host(dihedral(batch, 4)), x[:, :, ::-1])
    np.testing.assert_array_equal(host(dihedral(batch, 6)), x[:, ::-1, :])  # flip x + half turn = flip y


def test_composition_and_inverse_follow_the_group_law(batch):
    for first, second in itertools.product(range(N_DIHEDRAL), repeat=2):
        twice = dihedral(dihedral(batch, first), second)
        np.testing.assert_array_equal(host(twice), host(dihedral(batch, compose_dihedral(first, second))))
    for k in range(N_DIHEDRAL):
        assert compose_dihedral(k, invert_dihedral(k)) == 0
        np.testing.assert_array_equal(host(dihedral(dihedral(batch, k), invert_dihedral(k))), host(batch))


def test_transforms_keep_pixel_values_and_channels(batch):
    for k in range(N_DIHEDRAL):
        out = host(dihedral(batch, k))
        np.testing.assert_array_equal(np.sort(out, axis=None), np.sort(host(batch), axis=None))
        np.testing.assert_allclose(out.sum(axis=(1, 2)), host(batch).sum(axis=(1, 2)), rtol=1e-5)


def test_all_dihedral_stacks_the_eight(batch):
    stacked = all_dihedral(batch)
    assert stacked.shape == (8, 3, 5, 5, 2)
    np.testing.assert_array_equal(host(stacked[5]), host(dihedral(batch, 5)))
    with pytest.raises(ValueError, match="square"):
        all_dihedral(batch[:, :4])


def test_random_dihedral_turns_all_inputs_of_an_object_together(xp):
    rng = np.random.default_rng(1)
    # two branches of the same sky: the coarse one is the fine one averaged over 2x2 blocks
    fine = rng.normal(size=(32, 8, 8, 1)).astype(np.float32)
    coarse = fine.reshape(32, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    out = random_dihedral({"vis": xp.asarray(fine), "nir": xp.asarray(coarse)}, np.random.default_rng(2))
    out_fine, out_coarse = host(out["vis"]), host(out["nir"])
    np.testing.assert_allclose(out_fine.reshape(32, 4, 2, 4, 2, 1).mean(axis=(2, 4)), out_coarse, atol=1e-6)
    ks = [
        next(
            k
            for k in range(8)
            if np.array_equal(host(dihedral(xp.asarray(fine[i : i + 1]), k))[0], out_fine[i])
        )
        for i in range(32)
    ]
    assert len(set(ks)) > 4  # objects get different transforms
    again = random_dihedral({"vis": xp.asarray(fine), "nir": xp.asarray(coarse)}, np.random.default_rng(2))
    np.testing.assert_array_equal(host(again["vis"]), out_fine)
    with pytest.raises(ValueError, match="one length"):
        random_dihedral({"vis": xp.asarray(fine), "nir": xp.asarray(coarse[:3])}, rng)


def test_tta_mean_spread(xp):
    scores = xp.asarray(np.array([[0.2, 0.9]] * 4 + [[0.4, 0.9]] * 4, dtype=np.float32))
    mean, spread = tta_mean_spread(scores)
    np.testing.assert_allclose(host(mean), [0.3, 0.9], atol=1e-7)
    np.testing.assert_allclose(host(spread), [0.1, 0.0], atol=1e-7)


def test_rejects_bad_index(batch):
    with pytest.raises(ValueError, match=r"in 0\.\.7"):
        dihedral(batch, 8)
