"""Seeded Keras models that stay seeded while other threads draw random numbers.

Keras 3 gives every initializer and ``SeedGenerator`` built without a seed one drawn from Python's
global :mod:`random` (``keras.src.random.seed_generator.make_default_seed``), which
``keras.utils.set_random_seed`` seeds. Other threads of the process draw from that same generator
(Dask's and Prefect's, in a flow run or a test session), so one draw of theirs between the seeding
and the model's construction gave the same seed other weights (trial: two trainings with seed 5
differed in 2 of 2 full test runs, never alone). :func:`seeded_keras` hands Keras its own
``random.Random(seed)`` meanwhile: the same draws as the global generator seeded alike, which no
other thread takes from.

Relies on ``keras.src.backend.random.make_default_seed`` and ``keras.src.random.seed_generator``
(Keras 3.x, pinned in the lock); tests/test_theta_e_training.py fails when they change.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from unittest import mock

__all__ = ["seeded_keras"]


@contextlib.contextmanager
def seeded_keras(seed: int) -> Iterator[None]:
    """Seed Keras (``keras.utils.set_random_seed``) and draw its default seeds from a private generator.

    Parameters
    ----------
    seed : int
        The training seed.
    """
    import keras
    from keras.src.backend import random as backend_random
    from keras.src.random import seed_generator

    keras.utils.set_random_seed(seed)
    private = random.Random(seed)

    def make_default_seed() -> int:
        return private.randint(1, int(1e9))

    with (
        mock.patch.object(backend_random, "make_default_seed", make_default_seed),
        mock.patch.object(seed_generator, "make_default_seed", make_default_seed),
    ):
        yield
