"""Unsupervised domain adaptation measured on the plain-CNN baseline: does the target domain's
unlabelled cutouts close the transfer gap (issue 10)?

A user who runs lenshunt on a new survey always holds that survey's cutouts, only not their labels.
Domain-adversarial training (DANN: Ganin et al. 2016, JMLR 17, 59, arXiv 1505.07818) uses them:
beside the lens/non-lens head, a domain head learns to tell the training store's cutouts from the
unlabelled store's through a gradient-reversal layer, so the shared features are pushed to carry
nothing that tells the two domains apart. The reversal's weight rises as ``2 / (1 + exp(-10 p)) - 1``
over the training fraction ``p`` (their schedule) up to ``--dann-weight``.

The baseline (``bench.baseline_cnn``: the same inputs, 4-block CNN, flips and rotations, Adam at
1e-3, 32 labelled cutouts a step) is trained with 32 unlabelled cutouts beside each batch, then
scored on every test store::

    python -m bench.baseline_dann TRAIN_STORE --unlabelled STORE --dann-weight 0.3 \
        [--asymmetry] [--seed 0] --test NAME=STORE [--test NAME=STORE ...]

``--dann-weight 0`` is the control: the same steps, the unlabelled cutouts only passing through
the BatchNorm layers' batch statistics. The unlabelled store's labels are never read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.baseline_cnn import conv_features, load_inputs, non_negative, score_baseline
from bench.machine import describe_machine


def reverse_gradient(x, weight):
    """Identity forward; the gradient multiplied by ``-weight`` backward (a scalar tensor)."""
    import tensorflow as tf

    return tf.stop_gradient((1.0 + weight) * x) - weight * x


def reversal_weight(weight: float, progress: float) -> float:
    """The gradient reversal's weight at training fraction ``progress`` in [0, 1]: ``weight`` times
    ``2 / (1 + exp(-10 progress)) - 1`` (Ganin et al. 2016, section 5.2.2): 0 at the start, rising
    to 0.987 ``weight`` halfway and 0.9999 ``weight`` at the end."""
    return weight * (2.0 / (1.0 + np.exp(-10.0 * progress)) - 1.0)


def build(shape: tuple[int, ...]):
    """(features, label head, domain head): the baseline's 4 blocks and global mean; its dropout and
    sigmoid; a 64-unit ReLU layer and a sigmoid for the domain."""
    import keras

    inputs = keras.Input(shape)
    features = keras.Model(inputs, conv_features(inputs))
    head_in = keras.Input((64,))
    label = keras.Model(
        head_in, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(0.2)(head_in))
    )
    domain_in = keras.Input((64,))
    hidden = keras.layers.Dense(64, activation="relu")(domain_in)
    domain = keras.Model(domain_in, keras.layers.Dense(1, activation="sigmoid")(hidden))
    return features, label, domain


class Scorer:
    """The trained features and label head as one ``predict_on_batch`` for ``score_baseline``."""

    def __init__(self, features, label):
        self.features, self.label = features, label

    def predict_on_batch(self, x):
        return self.label(self.features(x, training=False), training=False).numpy()


def train_dann(
    x: np.ndarray, y: np.ndarray, target: np.ndarray, epochs: int, seed: int, weight: float
) -> tuple[Scorer, float, list[float]]:
    """Train; returns (scorer, seconds, the domain head's accuracy over each epoch's last 50 steps).

    ``x`` (n, h, w, c) and ``y`` (n,) the labelled store (labels < 0 dropped); ``target`` (m, h, w, c)
    the unlabelled store. Each step (a ``tf.GradientTape``: TensorFlow backend only): 32 labelled
    and 32 unlabelled cutouts (each with its own flip and quarter turn) through the features
    together; loss = BCE(label) + BCE(domain) where the domain head's gradient reaches the features
    reversed and scaled by :func:`reversal_weight`.

    Raises
    ------
    ValueError
        With fewer than 32 labelled cutouts (no whole batch).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    features, label, domain = build(x.shape[1:])
    labelled = y >= 0
    x, y = x[labelled], y[labelled].astype(np.float32)
    variables = features.trainable_variables + label.trainable_variables + domain.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    bce = keras.losses.BinaryCrossentropy()
    domain_truth = tf.constant(np.r_[np.zeros(32), np.ones(32)].astype(np.float32)[:, None])

    @tf.function
    def step(batch, labels, scale):
        with tf.GradientTape() as tape:
            feats = features(batch, training=True)
            loss = bce(labels[:, None], label(feats[:32], training=True))
            guess = domain(reverse_gradient(feats, scale), training=True)
            loss += bce(domain_truth, guess)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.reduce_mean(tf.cast((guess > 0.5) == (domain_truth > 0.5), tf.float32))

    def augment(images):
        images = np.rot90(images, k=int(rng.integers(4)), axes=(1, 2))
        return images[:, :, ::-1] if rng.random() < 0.5 else images

    steps = len(x) // 32
    if steps == 0:
        raise ValueError(f"{len(x)} labelled cutouts: at least 32 (one batch) are needed")
    accuracy: list[float] = []
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        hits = []
        for index in range(steps):
            chosen = order[index * 32 : (index + 1) * 32]
            batch = np.concatenate([augment(x[chosen]), augment(target[rng.integers(0, len(target), 32)])])
            progress = (epoch * steps + index) / (epochs * steps)
            scale = tf.constant(reversal_weight(weight, progress), tf.float32)
            hit = step(np.ascontiguousarray(batch), y[chosen], scale)
            hits.append(float(hit))
        accuracy.append(float(np.mean(hits[-50:])))
        print(f"epoch {epoch + 1}/{epochs} domain accuracy {accuracy[-1]:.3f}", flush=True)
    return Scorer(features, label), time.perf_counter() - started, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_store", type=Path)
    parser.add_argument("--unlabelled", type=Path, required=True, help="the target domain's store")
    parser.add_argument("--dann-weight", type=non_negative, default=0.3)
    parser.add_argument("--test", action="append", default=[], metavar="NAME=STORE")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--asymmetry", action="store_true")
    args = parser.parse_args(argv)
    print(describe_machine(), flush=True)
    print("command: python -m bench.baseline_dann " + " ".join(argv or sys.argv[1:]), flush=True)
    x, y = load_inputs(args.train_store, asymmetry=args.asymmetry)
    target, _ = load_inputs(args.unlabelled, asymmetry=args.asymmetry)
    scorer, seconds, accuracy = train_dann(x, y, target, args.epochs, args.seed, args.dann_weight)
    row: dict[str, object] = {"train_seconds": round(seconds), "domain_accuracy": accuracy}
    for name, store in dict(item.split("=", 1) for item in args.test).items():
        row[name], kinds = score_baseline(scorer, store, by_kind=True, asymmetry=args.asymmetry)
        row.update({f"{name}_{kind}": value for kind, value in kinds.items()})
    print("dann", json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
