"""MixStyle (Zhou et al. 2021, ICLR, "Domain Generalization with MixStyle", arXiv 2104.02008) for the
plain-CNN baseline (``python -m bench.baseline_cnn --mixstyle P``).

In training only, with probability ``P`` per batch, each sample's feature maps are normalised by their
own per-channel mean and standard deviation (over the spatial axes) and re-styled with a mix of those
statistics and another sample's of the same batch (a random permutation):
``mu_mix = l mu_i + (1 - l) mu_j``, ``sigma_mix = l sigma_i + (1 - l) sigma_j``, ``l ~ Beta(0.1, 0.1)`` per
sample; the statistics carry no gradient (the paper's code detaches them). At inference the layer is the
identity. The paper inserts it after the early residual stages, where feature statistics carry the
"style" of a domain (instrument, rendering) rather than the content; the baseline puts it after its first
two conv blocks. Backend-agnostic (``keras.ops``, ``keras.random`` with a ``SeedGenerator``).
"""

from __future__ import annotations

import keras
from keras import ops

MIXSTYLE_ALPHA = 0.1
"""The paper's Beta(alpha, alpha) for the mixing weight."""

MIXSTYLE_EPS = 1e-6
"""Added to the variance before the square root (the paper's code)."""


def feature_statistics(x, eps: float = MIXSTYLE_EPS):
    """Per-sample, per-channel mean and standard deviation over the spatial axes of ``x`` (n, h, w, c),
    each (n, 1, 1, c), without gradient."""
    mean = ops.mean(x, axis=(1, 2), keepdims=True)
    std = ops.sqrt(ops.var(x, axis=(1, 2), keepdims=True) + eps)
    return ops.stop_gradient(mean), ops.stop_gradient(std)


def mix_styles(x, weight, other, eps: float = MIXSTYLE_EPS):
    """``x`` (n, h, w, c) re-styled: each sample i normalised by its own statistics, then scaled and
    shifted by ``weight[i]`` of them and ``1 - weight[i]`` of sample ``other[i]``'s; ``weight`` (n,) in
    [0, 1], ``other`` (n,) integer indices into the batch."""
    mean, std = feature_statistics(x, eps)
    weight = ops.reshape(ops.cast(weight, x.dtype), (-1, 1, 1, 1))
    mean_mix = weight * mean + (1.0 - weight) * ops.take(mean, other, axis=0)
    std_mix = weight * std + (1.0 - weight) * ops.take(std, other, axis=0)
    return (x - mean) / std * std_mix + mean_mix


class MixStyle(keras.layers.Layer):
    """:func:`mix_styles` on a batch with probability ``probability`` in training; the identity at
    inference. ``alpha``: the Beta parameter of the per-sample weight; ``seed``: its
    ``keras.random.SeedGenerator``'s."""

    def __init__(self, probability: float = 0.5, alpha: float = MIXSTYLE_ALPHA, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.probability = float(probability)
        self.alpha = float(alpha)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def draw(self, n):
        """One batch's random draws, in :meth:`call`'s order: (apply: a boolean scalar, weight (n,),
        other (n,)). A weight Beta sampling left undefined (both of its gamma draws underflowing to 0,
        possible at alpha 0.1) is 0.5."""
        apply = keras.random.uniform((), seed=self.seed_generator) < self.probability
        weight = keras.random.beta((n,), self.alpha, self.alpha, seed=self.seed_generator)
        weight = ops.where(ops.isfinite(weight), weight, 0.5)
        other = keras.random.shuffle(ops.arange(n), seed=self.seed_generator)
        return apply, weight, other

    def call(self, x, training=None):
        if not training or self.probability <= 0.0:
            return x
        apply, weight, other = self.draw(ops.shape(x)[0])
        return ops.where(apply, mix_styles(x, weight, other), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "probability": self.probability,
            "alpha": self.alpha,
            "seed": self.seed,
        }
