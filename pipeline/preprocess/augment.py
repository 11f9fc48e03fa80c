"""The eight dihedral transforms of square images (rotations by 90 degrees, with or without a flip).

Lens finding is invariant under them, so they serve as training augmentation
(:func:`random_dihedral`) and as test-time augmentation (:func:`all_dihedral`, then
:func:`tta_mean_spread` over the eight scores). All functions act on NHWC batches (axes 1 and 2
are the image) and run on NumPy and CuPy arrays alike.

Transform ``k`` (0..7) flips the x axis when ``k >= 4``, then rotates by ``k % 4`` quarter turns;
0 is the identity. :func:`compose_dihedral` and :func:`invert_dihedral` give the group law.

Examples
--------
>>> import numpy as np
>>> x = np.arange(4.0).reshape(1, 2, 2, 1)
>>> dihedral(x, 1)[0, :, :, 0].tolist()
[[1.0, 3.0], [0.0, 2.0]]
>>> compose_dihedral(1, 3), invert_dihedral(1), invert_dihedral(5)
(0, 3, 5)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.preprocess.arrays import Array, array_namespace

N_DIHEDRAL = 8
_IMAGE_AXES = (1, 2)


def _check_k(k: int) -> None:
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"dihedral transform index must be in 0..7, got {k}")


def dihedral(x: Array, k: int) -> Array:
    """Transform ``k`` of an NHWC batch (a view where the array library allows)."""
    _check_k(k)
    xp = array_namespace(x)
    if k >= 4:
        x = xp.flip(x, axis=2)
    return xp.rot90(x, k % 4, axes=_IMAGE_AXES)


def compose_dihedral(first: int, second: int) -> int:
    """Index of the transform "apply ``first``, then ``second``"."""
    _check_k(first)
    _check_k(second)
    flip_1, turns_1 = divmod(first, 4)
    flip_2, turns_2 = divmod(second, 4)
    # flipping reverses the sense of the rotations applied before it
    turns = (turns_2 + (-turns_1 if flip_2 else turns_1)) % 4
    return 4 * (flip_1 ^ flip_2) + turns


def invert_dihedral(k: int) -> int:
    """Index of the transform that undoes ``k`` (reflections are their own inverse)."""
    _check_k(k)
    return k if k >= 4 else (-k) % 4


def all_dihedral(x: Array) -> Array:
    """The eight transforms of a square NHWC batch stacked on a new leading axis: ``(8, n, h, w, c)``."""
    _check_square(x)
    xp = array_namespace(x)
    return xp.stack([dihedral(x, k) for k in range(N_DIHEDRAL)])


def random_dihedral(inputs: Mapping[str, Array], rng: np.random.Generator) -> dict[str, Array]:
    """A random transform per object, the same one for every input of the object.

    ``inputs`` maps model input names to square NHWC batches of equal length (the branches of
    one object cover the same sky, so they turn together). Returns new arrays.
    """
    lengths = {len(x) for x in inputs.values()}
    if len(lengths) != 1:
        raise ValueError(f"random_dihedral needs inputs of one length, got lengths {sorted(lengths)}")
    n = lengths.pop()
    ks = rng.integers(0, N_DIHEDRAL, size=n)
    out = {}
    for name, x in inputs.items():
        _check_square(x)
        xp = array_namespace(x)
        result = xp.empty_like(x)
        for k in np.unique(ks):
            rows = xp.asarray(np.flatnonzero(ks == k))
            result[rows] = dihedral(x[rows], int(k))
        out[name] = result
    return out


def tta_mean_spread(scores: Array) -> tuple[Array, Array]:
    """Mean and standard deviation over the leading (transform) axis of ``(8, n)`` scores."""
    xp = array_namespace(scores)
    return xp.mean(scores, axis=0), xp.std(scores, axis=0)


def _check_square(x: Array) -> None:
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(
            f"dihedral augmentation needs square NHWC batches, got shape {tuple(x.shape)}; "
            "quarter turns of a non-square image change its shape"
        )
