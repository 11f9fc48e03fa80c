"""The plain-CNN baseline against ``lenshunt train``, side by side on the same stores.

The baseline is the 100-line script a new user would write (issue 10): the whole training store
in memory, every cutout normalised by its own statistics (per band: subtract the median, divide
by the robust sigma, asinh), VIS average-pooled 2x and NISP zoomed onto the same 100x100 grid,
a plain 4-block CNN (conv, BatchNorm, ReLU, max-pool; 16-32-64-64 filters; global mean; dense),
random flips and 90-degree rotations, Adam at a constant learning rate, a fixed number of epochs,
no validation, no early stopping. It shares no code with lenshunt's training or preprocessing:
only the store reader and the AUROC function.

Then ``lenshunt train`` with its defaults (or the options given) trains on the same store, and
both models score every test store in this process. Every number is printed with the machine and
the command, for ``bench/RESULTS.md``::

    python -m bench.baseline_cnn TRAIN_STORE --test NAME=STORE [--test NAME=STORE ...] \
        [--epochs 10] [--lenshunt-epochs 10] [--skip-baseline] [--out runs/baseline]

The baseline's JSON row also has ``NAME_KIND``: its AUROC on each test store's lenses against the
non-lenses of each kind, where the store's truth catalog names kinds (``sim_kind`` or ``kind``).
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

from bench.machine import describe_machine
from pipeline.evaluation import auroc
from pipeline.store import open_store

PEAK_PERCENTILE = 99.5
"""``scaling="peak"``: the percentile of a cutout's noise-unit pixels taken as its peak."""

PEAK_LEVEL = 20.0
"""``scaling="peak"``: a peak above this many sigma is divided down to it."""


def normalise(images: np.ndarray, scaling: str = "asinh") -> np.ndarray:
    """Per cutout and band: (x - median) / (1.4826 MAD), asinh; NaN -> 0. Shape kept.

    ``scaling="peak"`` first divides ``z`` by ``max(1, p / PEAK_LEVEL)``, ``p`` the band's
    ``PEAK_PERCENTILE`` percentile of ``z``: objects brighter than ``PEAK_LEVEL`` sigma at their
    peak all look equally bright (only their noise differs), fainter ones stay in noise units.
    """
    flat = images.reshape(*images.shape[:2], -1)
    median = np.nanmedian(flat, axis=-1)[..., None, None]
    mad = np.nanmedian(np.abs(flat - median.reshape(*images.shape[:2], 1)), axis=-1)[..., None, None]
    z = (images - median) / np.where(mad > 0, 1.4826 * mad, 1.0)
    if scaling == "peak":
        peak = np.nanpercentile(z.reshape(*z.shape[:2], -1), PEAK_PERCENTILE, axis=-1)
        z = z / np.maximum(1.0, np.nan_to_num(peak, nan=0.0) / PEAK_LEVEL)[..., None, None]
    return np.nan_to_num(np.arcsinh(z), nan=0.0).astype(np.float32)


def with_asymmetry(x: np.ndarray) -> np.ndarray:
    """``x`` (n, h, w, c) of asinh noise units with c more channels: ``asinh(z - R z)``, ``z = sinh(x)``
    and ``R`` the rotation by 180 degrees about the cutout centre. A point-symmetric object (an
    elliptical, a two-armed spiral, a ring galaxy, an edge-on disc) cancels; arcs and a lens's
    counter-images on one side do not (the rotational asymmetry of Conselice 2003, kept as an image)."""
    z = np.sinh(x)
    return np.concatenate([x, np.arcsinh(z - z[:, ::-1, ::-1]).astype(np.float32)], axis=-1)


COLOUR_APERTURE_PX = 5.0
"""``with_colour_residual``: radius (pixels of the 0.2"/px grid: 1") where VIS is matched to each band."""

COLOUR_SMOOTHING_PX = 1.0
"""``with_colour_residual``: Gaussian sigma (pixels) taking VIS (0.2" FWHM) near NISP's resolution (0.5")."""


def with_colour_residual(x: np.ndarray) -> np.ndarray:
    """``x`` (n, h, w, c) bands (no other channels) in asinh noise units, band 0 VIS, with c - 1 more
    channels: for each other
    band b, ``asinh(G z_0 - a_b z_b)``, ``z = sinh(x)``, ``G`` a Gaussian of ``COLOUR_SMOOTHING_PX``
    and ``a_b`` the least-squares scale of ``z_b`` onto ``G z_0`` within ``COLOUR_APERTURE_PX`` of the
    array centre. The central galaxy's light cancels whatever its colour, the bands' depths or units
    (``a_b`` is fitted per cutout); light bluer than it (lensed star-forming sources) stays positive,
    redder light negative. The lens-light subtraction of RingFinder (Gavazzi et al. 2014, ApJ 785,
    144), which scales a redder band to the lens's core and subtracts it from a bluer one."""
    from scipy.ndimage import gaussian_filter

    z = np.sinh(x.astype(np.float64))
    vis = gaussian_filter(z[..., 0], sigma=(0, COLOUR_SMOOTHING_PX, COLOUR_SMOOTHING_PX))
    h, w = x.shape[1:3]
    yy, xx = np.mgrid[:h, :w]
    core = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= COLOUR_APERTURE_PX**2
    out = []
    for band in range(1, x.shape[-1]):
        other = z[..., band]
        scale = (vis[:, core] * other[:, core]).sum(axis=1) / np.maximum(
            (other[:, core] ** 2).sum(axis=1), 1e-12
        )
        out.append(np.arcsinh(vis - scale[:, None, None] * other))
    return np.concatenate([x, np.stack(out, axis=-1).astype(np.float32)], axis=-1)


def network_inputs(bands: np.ndarray, asymmetry: bool | str, colour: bool) -> np.ndarray:
    """The network's channels from the scaled ``bands`` (n, h, w, c), band 0 VIS: those of
    :func:`asymmetry_inputs`, then with ``colour`` the c - 1 residuals of :func:`with_colour_residual`,
    computed from the bands alone (review: they were computed from the asymmetry channels too, VIS
    minus each of those scaled to a core where they are about zero: copies of VIS)."""
    x = asymmetry_inputs(bands, asymmetry)
    if not colour:
        return x
    return np.concatenate([x, with_colour_residual(bands)[..., bands.shape[-1] :]], axis=-1)


def asymmetry_inputs(x: np.ndarray, asymmetry: bool | str) -> np.ndarray:
    """The network's channels from ``x`` (n, h, w, c): ``x`` itself (False), with the asymmetry
    channels of :func:`with_asymmetry` (True), or those alone (``"only"``: no symmetric light, and so
    none of the lens galaxy's profile, reaches the network); (n, h, w, c), (n, h, w, 2c) or (n, h, w, c)."""
    if not asymmetry:
        return x
    x = with_asymmetry(x)
    return np.ascontiguousarray(x[..., x.shape[-1] // 2 :]) if asymmetry == "only" else x


def load_inputs(
    store: str | Path,
    view: str = "pool",
    scaling: str = "asinh",
    asymmetry: bool | str = False,
    colour: bool = False,
    bands: str = "all",
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, 100, 100, c), labels (n,)) of every usable object of a Euclid-like store: c = 4
    bands, with the asymmetry channels 8, or 4 for those alone (:func:`asymmetry_inputs`); with
    ``colour`` 3 more (:func:`network_inputs`).

    ``bands``: ``"all"`` (VIS, Y, J, H), ``"vis"`` (VIS alone: c = 1, 2 with the asymmetry channel)
    or ``"nir"`` (Y, J, H alone: c = 3 or 6); ``colour`` needs ``"all"``. Objects are kept on the
    object-level flags either way, so every choice trains and scores the same objects.

    ``view="pool"``: the whole 20" cutout, VIS average-pooled 2x; ``"crop"``: the central 10" at
    VIS's full 0.1"/px (NISP's central 34 pixels zoomed onto the same grid).
    ``"polar"`` (and ``"polar-circular"``): the pooled view about the centre in polar coordinates
    (:func:`to_polar`), (n, POLAR_RADII, POLAR_ANGLES, c).
    """
    from scipy.ndimage import zoom

    data = open_store(store, chunks=None)
    keep = (data["flags"].values & 0xFF) == 0
    vis = data["vis"].values[keep]
    nir = data["nir"].values[keep]
    if view == "crop":
        vis, nir = vis[:, :, 50:150, 50:150], nir[:, :, 16:50, 16:50]
    else:
        vis = vis.reshape(len(vis), 1, 100, 2, 100, 2).mean(axis=(3, 5))
    nir = np.stack(
        [zoom(np.nan_to_num(image), (1, 100 / nir.shape[-2], 100 / nir.shape[-1]), order=1) for image in nir]
    )
    if colour and bands != "all":
        raise ValueError(f"the colour residual needs every band, not bands={bands!r}")
    parts = {"all": [vis, nir], "vis": [vis], "nir": [nir]}[bands]
    x = np.concatenate([normalise(part, scaling) for part in parts], axis=1).transpose(0, 2, 3, 1)
    x = network_inputs(x, asymmetry, colour)
    if view in POLAR_VIEWS:
        x = to_polar(x, log_radii=view == "logpolar")
    return np.ascontiguousarray(x), data["label"].values[keep]


POLAR_RADII = 50
"""``view="polar"``: radial samples, one per pooled pixel (0.2") from the centre to the cutout's edge."""

POLAR_ANGLES = 128
"""``view="polar"``: position angles sampled per turn (2.8 degrees apart: about a pooled pixel at 4")."""

POLAR_WRAP = 16
"""``view="polar"``: angle samples repeated on each side before the network (:func:`wrap_angles`),
so its convolutions see across position angle 0 as anywhere else."""


def to_polar(
    x: np.ndarray, grid: tuple[int, int] = (POLAR_RADII, POLAR_ANGLES), log_radii: bool = False
) -> np.ndarray:
    """``x`` (n, h, w, c) resampled about the array centre onto (n, r, a, c), ``(r, a) = grid``:
    row i at radius i + 0.5 pixels, column j at position angle 2 pi j / a, bilinear
    (``scipy.ndimage.map_coordinates``, order 1). A lensed arc at the Einstein radius becomes a
    segment along one row and its counter-image another half a row along; a rotation of the sky is
    a cyclic shift of the columns, so the network, with :func:`wrap_angles`, is close to equivariant to
    every rotation, not only the four right angles (the polar transform of rotation-invariant CNNs, e.g.
    Esteves et al. 2018, ICLR, arXiv 1709.01889).

    ``log_radii`` (``view="logpolar"``): the rows at radii spaced evenly in log radius from 0.5 to
    ``grid[0] - 0.5`` pixels, so that a change of scale (another Einstein radius, a larger galaxy)
    is a shift along the rows as a rotation is along the columns (log-polar CNNs: Esteves et al.
    2018)."""
    from scipy.ndimage import map_coordinates

    n, h, w, c = x.shape
    radius = np.arange(grid[0]) + 0.5
    if log_radii:
        radius = np.geomspace(0.5, grid[0] - 0.5, grid[0])
    angle = 2 * np.pi * np.arange(grid[1]) / grid[1]
    rows = (h - 1) / 2 + radius[:, None] * np.sin(angle)[None, :]
    cols = (w - 1) / 2 + radius[:, None] * np.cos(angle)[None, :]
    out = np.empty((n, *grid, c), np.float32)
    for i in range(n):
        for k in range(c):
            out[i, :, :, k] = map_coordinates(x[i, :, :, k], [rows, cols], order=1, mode="nearest")
    return out


POLAR_VIEWS = ("polar", "polar-circular", "logpolar")
"""Views in polar coordinates: the angle axis wrapped once before the network (:func:`wrap_angles`), or
padded circularly before every convolution (:func:`circular_pad`)."""


def circular_pad(x):
    """A Keras tensor (n, r, a, c) padded by one column on each end of the angle axis from the other
    end, and by one zero row on each end of the radius axis: what a 3x3 ``"valid"`` convolution needs to
    be exactly equivariant to cyclic shifts of the angle columns (``view="polar-circular"``)."""
    import keras

    wrapped = keras.layers.Lambda(lambda t: keras.ops.concatenate([t[:, :, -1:], t, t[:, :, :1]], axis=2))(x)
    return keras.layers.ZeroPadding2D(((1, 1), (0, 0)))(wrapped)


def wrap_angles(x: np.ndarray) -> np.ndarray:
    """Polar inputs (n, r, a, c) with their last and first POLAR_WRAP angle columns repeated
    before and after: (n, r, a + 2 POLAR_WRAP, c)."""
    return np.concatenate([x[:, :, -POLAR_WRAP:], x, x[:, :, :POLAR_WRAP]], axis=2)


MIXSTYLE_BLOCKS = 2
"""``--mixstyle``: a :class:`bench.mixstyle.MixStyle` layer after each of the first this many conv blocks."""


def conv_features(
    inputs,
    seeds: list[int] | None = None,
    circular: bool = False,
    mixstyle: float = 0.0,
    mixstyle_seeds: list[int] | None = None,
):
    """The baseline's four conv blocks (conv, BatchNorm, ReLU, max-pool; 16-32-64-64 filters) and
    global mean: a Keras tensor ``(n, 64)`` of the input tensor ``inputs``. ``seeds``: the four
    kernel initializers' seeds (default: Keras draws them from Python's global ``random``).
    ``circular``: each convolution pads its input with :func:`circular_pad` instead of zeros (polar
    inputs, not wrapped: the blocks are then exactly equivariant to turns by 16 angle columns).
    ``mixstyle`` > 0: MixStyle (:mod:`bench.mixstyle`) with that probability per batch after each of the
    first ``MIXSTYLE_BLOCKS`` blocks, in training only; ``mixstyle_seeds`` seed their generators."""
    import keras

    x = inputs
    for index, filters in enumerate((16, 32, 64, 64)):
        init = keras.initializers.GlorotUniform(seed=seeds[index]) if seeds else "glorot_uniform"
        padding = "valid" if circular else "same"
        x = circular_pad(x) if circular else x
        x = keras.layers.Conv2D(filters, 3, padding=padding, use_bias=False, kernel_initializer=init)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
        if mixstyle > 0 and index < MIXSTYLE_BLOCKS:
            from bench.mixstyle import MixStyle

            x = MixStyle(mixstyle, seed=mixstyle_seeds[index] if mixstyle_seeds else None)(x)
    return keras.layers.GlobalAveragePooling2D()(x)


def plain_cnn(shape: tuple[int, ...], seed: int = 0, circular: bool = False, mixstyle: float = 0.0):
    """Four conv blocks and a sigmoid: the baseline model (``mixstyle``: :func:`conv_features`).

    Its six random draws (four conv kernels, the dropout, the dense kernel) are seeded from
    ``random.Random(seed)`` in the order Keras draws them from Python's global ``random`` after
    ``keras.utils.set_random_seed(seed)``: the same weights as before, but no longer changed by
    another thread drawing from the global generator meanwhile (a Dask client or Prefect server in
    the same process; the test suite's weight-averaging test saw kernels 0.53 apart)."""
    import random

    import keras

    rng = random.Random(seed)
    seeds = [rng.randint(1, int(1e9)) for _ in range(6)]
    mixstyle_seeds = [rng.randint(1, int(1e9)) for _ in range(MIXSTYLE_BLOCKS)]  # after the six: kept
    inputs = keras.Input(shape)
    x = conv_features(inputs, seeds[:4], circular, mixstyle, mixstyle_seeds)
    x = keras.layers.Dropout(0.2, seed=seeds[4])(x)
    dense = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[5])
    )
    model = keras.Model(inputs, dense(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def random_convolution(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RandConv (Xu et al. 2021, ICLR, arXiv 2007.13003): the batch through one random convolution,
    mixed with itself: ``a x + (1 - a) conv(x)``, ``a`` uniform in [0, 1], the kernel size drawn from
    1, 3, 5, 7 and its weights normal with variance 1 / fan-in (fan-in: size x size x channels; the
    paper's choice, LeCun-normal), mixing all channels into all channels. Shape (n, h, w, c) kept."""
    import tensorflow as tf

    channels = batch.shape[-1]
    size = int(rng.choice((1, 3, 5, 7)))
    kernel = rng.normal(0.0, np.sqrt(1.0 / (size * size * channels)), (size, size, channels, channels))
    convolved = tf.nn.conv2d(batch, kernel.astype(np.float32), strides=1, padding="SAME").numpy()
    mix = np.float32(rng.uniform())
    return mix * batch + (1.0 - mix) * convolved


def band_jitter(batch: np.ndarray, dex: float, rng: np.random.Generator) -> np.ndarray:
    """Each cutout's bands rescaled apart in noise units: ``asinh(f sinh(x))``, ``f = 10**u`` with
    ``u`` uniform in [-dex, dex] per cutout and band (a colour and per-band depth change; the
    inputs are already asinh of noise units). Shape (n, h, w, c) kept."""
    factor = 10.0 ** rng.uniform(-dex, dex, (len(batch), 1, 1, batch.shape[-1]))
    return np.arcsinh(factor * np.sinh(batch)).astype(np.float32)


def mixup(
    batch: np.ndarray, labels: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018, ICLR, arXiv 1710.09412): each cutout and label blended with another
    of the batch, ``l x_i + (1 - l) x_j``, one ``l ~ Beta(alpha, alpha)`` per cutout, soft labels."""
    weight = rng.beta(alpha, alpha, len(batch)).astype(np.float32)
    other = rng.permutation(len(batch))
    mixed = weight[:, None, None, None] * batch + (1.0 - weight[:, None, None, None]) * batch[other]
    return mixed, weight * labels + (1.0 - weight) * labels[other]


def train_baseline(
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    seed: int,
    randconv: float = 0.0,
    *,
    mixup_alpha: float = 0.0,
    jitter_dex: float = 0.0,
    swa_epochs: int = 0,
    polar: bool = False,
    circular: bool = False,
    mixstyle: float = 0.0,
) -> tuple[object, float, float]:
    """Train the baseline; returns (model, seconds, images/s). ``randconv``: the share of batches
    passed through :func:`random_convolution`; ``mixup_alpha`` > 0: :func:`mixup`; ``jitter_dex``
    > 0: :func:`band_jitter`; ``swa_epochs`` > 0: the weights averaged over the ends of the last
    that many epochs, BatchNorm statistics then recomputed on 100 training batches (stochastic
    weight averaging at a constant learning rate; Izmailov et al. 2018, arXiv 1803.05407). With
    ``polar`` (inputs of :func:`to_polar`), each batch is turned by a random angle (a cyclic shift
    of the angle columns: every rotation, not only right angles) and mirrored with probability 1/2
    (the angle axis reversed), then :func:`wrap_angles` (with ``circular``, not wrapped: the network
    pads circularly, :func:`conv_features`). ``mixstyle`` > 0: MixStyle layers in the network
    (:func:`conv_features`), applied to a batch with that probability."""
    import keras

    from pipeline.training.batchnorm import recalibrate_batch_norm

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    wrap = wrap_angles if polar and not circular else np.asarray
    model = plain_cnn(wrap(x[:1]).shape[1:], seed, circular, mixstyle)
    labelled = y >= 0
    x, y = x[labelled], y[labelled].astype(np.float32)
    averaged: list[np.ndarray] | None = None
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(order) - 31, 32):
            batch, labels = x[order[start : start + 32]], y[order[start : start + 32]]
            if polar:
                batch = np.roll(batch, int(rng.integers(batch.shape[2])), axis=2)
            else:
                batch = np.rot90(batch, k=int(rng.integers(4)), axes=(1, 2))
            if rng.random() < 0.5:
                batch = batch[:, :, ::-1]
            if randconv and rng.random() < randconv:
                batch = random_convolution(np.ascontiguousarray(batch), rng)
            if jitter_dex:
                batch = band_jitter(batch, jitter_dex, rng)
            if mixup_alpha:
                batch, labels = mixup(np.ascontiguousarray(batch), labels, mixup_alpha, rng)
            model.train_on_batch(np.ascontiguousarray(wrap(batch)), labels)
        if swa_epochs and epoch >= epochs - swa_epochs:
            weights = model.get_weights()
            k = epoch - (epochs - swa_epochs)  # epochs averaged so far
            averaged = (
                weights if averaged is None else [(a * k + w) / (k + 1) for a, w in zip(averaged, weights)]
            )
    if averaged is not None:
        model.set_weights(averaged)
        order = rng.permutation(len(x))[: 100 * 32]
        recalibrate_batch_norm(
            model,
            (wrap(x[order[i : i + 32]]) for i in range(0, len(order), 32)),
        )
    seconds = time.perf_counter() - started
    return model, seconds, epochs * (len(x) // 32) * 32 / seconds


def score_baseline(
    model,
    store: str | Path,
    view: str = "pool",
    by_kind: bool = False,
    scaling: str = "asinh",
    asymmetry: bool | str = False,
    colour: bool = False,
    save_to: Path | None = None,
    bands: str = "all",
):
    """AUROC of ``model`` on ``store``; with ``by_kind`` also {kind: AUROC of all lenses against the
    non-lenses of that kind} from the store's truth catalog (``sim_kind`` or ``kind``; {} without).

    ``save_to``: also write the scores there (:func:`save_scores`), for ensembles of runs
    (``python -m bench.ensemble_scores``)."""
    x, y = load_inputs(store, view, scaling, asymmetry, colour, bands)
    if view in ("polar", "logpolar"):  # "polar-circular" pads in the network
        x = wrap_angles(x)
    scores = np.concatenate(
        [model.predict_on_batch(x[i : i + 128]).reshape(-1) for i in range(0, len(x), 128)]
    )
    labelled = y >= 0
    total = float(auroc(y[labelled], scores[labelled]))
    kinds = store_kinds(store)
    if save_to is not None:
        save_scores(save_to, store, scores, y, kinds)
    if not by_kind:
        return total
    from pipeline.evaluation.breakdown import auroc_by_kind

    if kinds is None:
        return total, {}
    return total, {kind: value for kind, (_, value) in auroc_by_kind(y, scores, kinds).items()}


def kept_rows(store: str | Path) -> np.ndarray:
    """Boolean mask (n_objects,) of the rows :func:`load_inputs` keeps (no object-level flag)."""
    return (open_store(store, chunks=None)["flags"].values & 0xFF) == 0


def store_kinds(store: str | Path) -> np.ndarray | None:
    """Each kept object's kind (strings, shape (n_kept,)) from the store's truth catalog, or None
    where it names no kinds."""
    from pipeline.training.domain_breakdown import KIND_COLUMN, truth_columns

    columns, _ = truth_columns(store)
    if KIND_COLUMN not in columns:
        return None
    return np.asarray(columns[KIND_COLUMN], dtype=object)[kept_rows(store)].astype(str)


def save_scores(
    path: Path, store: str | Path, scores: np.ndarray, labels: np.ndarray, kinds: np.ndarray | None
) -> None:
    """Write one run's scores of a store's kept objects to ``path`` (``.npz``): ``object_id``,
    ``label``, ``score`` and, where the truth catalog names them, ``kind``; shapes (n_kept,)."""
    ids = open_store(store, chunks=None)["object_id"].values[kept_rows(store)]
    arrays = {"object_id": ids, "label": labels, "score": np.asarray(scores, dtype=np.float64)}
    if kinds is not None:
        arrays["kind"] = kinds.astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def score_lenshunt(bundle_path: Path, store: str | Path) -> float:
    from pipeline.models import load_bundle
    from pipeline.training.heldout import score_store_in_process

    scored = score_store_in_process(load_bundle(bundle_path), store)
    keep = (scored.label >= 0) & np.isfinite(scored.score)
    return float(auroc(scored.label[keep], scored.score[keep]))


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def non_negative(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float(text)
    if not 0.0 <= value < float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_store", type=Path)
    parser.add_argument(
        "--test", action="append", default=[], metavar="NAME=STORE", help="a labelled test store"
    )
    parser.add_argument("--epochs", type=int, default=10, help="baseline epochs (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/baseline"),
        help="where the lenshunt train side writes its bundle (OUT/lenshunt; unused with --skip-lenshunt)",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--save-scores",
        type=Path,
        metavar="DIR",
        help="write the baseline's scores of each test store to DIR/NAME.npz (bench.ensemble_scores)",
    )
    parser.add_argument(
        "--view",
        choices=("pool", "crop", *POLAR_VIEWS),
        default="pool",
        help='baseline input: whole cutout pooled 2x, central 10", or the pooled cutout in polar coordinates '
        "(polar-circular: padded circularly before every convolution instead of wrapped once; logpolar: "
        "the radii spaced evenly in log radius)",
    )
    parser.add_argument(
        "--scaling",
        choices=("asinh", "peak"),
        default="asinh",
        help="baseline scaling: noise units, or noise units with bright peaks divided down (normalise)",
    )
    parser.add_argument(
        "--randconv",
        type=fraction,
        default=0.0,
        help="share of baseline batches through a random convolution, in [0, 1]",
    )
    parser.add_argument("--mixup", type=non_negative, default=0.0, help="baseline mixup Beta alpha (0: off)")
    parser.add_argument(
        "--band-jitter", type=non_negative, default=0.0, help="baseline per-band rescaling, +- dex (0: off)"
    )
    parser.add_argument(
        "--mixstyle",
        type=fraction,
        default=0.0,
        metavar="P",
        help="baseline MixStyle after the first two conv blocks, applied to a batch with probability P "
        "(training only; 0: off)",
    )
    parser.add_argument(
        "--swa-epochs", type=int, default=0, help="baseline weights averaged over the last N epochs"
    )
    parser.add_argument(
        "--asymmetry",
        action="store_true",
        help="baseline input also has each band minus its 180-degree rotation",
    )
    parser.add_argument(
        "--asymmetry-only",
        dest="asymmetry",
        action="store_const",
        const="only",
        help="baseline input is each band minus its 180-degree rotation alone",
    )
    parser.add_argument(
        "--colour-residual",
        action="store_true",
        help="baseline input also has VIS minus each other band scaled to the central galaxy",
    )
    parser.add_argument(
        "--bands",
        choices=("all", "vis", "nir"),
        default="all",
        help="baseline input bands: VIS and NISP Y, J, H (default), VIS alone, or NISP alone",
    )
    parser.add_argument("--skip-lenshunt", action="store_true")
    parser.add_argument(
        "--lenshunt-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="TrainConfig field, e.g. epochs=12",
    )
    args = parser.parse_args(argv)
    if args.colour_residual and args.bands != "all":
        parser.error("--colour-residual needs --bands all")
    if not 0 <= args.swa_epochs <= args.epochs:
        parser.error(f"--swa-epochs must lie in [0, --epochs {args.epochs}], got {args.swa_epochs}")
    bad = [item for item in args.test if "=" not in item or not Path(item.split("=", 1)[1]).is_dir()]
    if bad:
        parser.error(f"--test takes NAME=STORE, an existing store directory: got {', '.join(bad)}")
    tests = dict(item.split("=", 1) for item in args.test)
    if args.save_scores is not None and args.save_scores.exists() and not args.save_scores.is_dir():
        parser.error(f"--save-scores {args.save_scores} exists and is not a directory")
    if args.save_scores is not None and (args.skip_baseline or not tests):
        parser.error(
            "--save-scores saves the baseline's scores of the --test stores: give --test, and no "
            "--skip-baseline"
        )
    rows: dict[str, dict[str, float]] = {}
    print(describe_machine(), flush=True)
    print("command: python -m bench.baseline_cnn " + " ".join(argv or sys.argv[1:]), flush=True)
    if not args.skip_baseline:
        x, y = load_inputs(
            args.train_store, args.view, args.scaling, args.asymmetry, args.colour_residual, args.bands
        )
        model, seconds, speed = train_baseline(
            x,
            y,
            args.epochs,
            args.seed,
            args.randconv,
            mixup_alpha=args.mixup,
            jitter_dex=args.band_jitter,
            swa_epochs=args.swa_epochs,
            polar=args.view in POLAR_VIEWS,
            circular=args.view == "polar-circular",
            mixstyle=args.mixstyle,
        )
        row = {"train_seconds": seconds, "images_per_s": speed}
        for name, store in tests.items():
            row[name], kinds = score_baseline(
                model,
                store,
                args.view,
                by_kind=True,
                scaling=args.scaling,
                asymmetry=args.asymmetry,
                colour=args.colour_residual,
                bands=args.bands,
                save_to=args.save_scores / f"{name}.npz" if args.save_scores else None,
            )
            row.update({f"{name}_{kind}": value for kind, value in kinds.items()})
        defaults = {"view": "pool", "scaling": "asinh", "randconv": 0.0, "epochs": 10, "seed": 0}
        defaults |= {"mixup": 0.0, "band_jitter": 0.0, "swa_epochs": 0, "asymmetry": False}
        defaults |= {"colour_residual": False, "mixstyle": 0.0, "bands": "all"}
        flags = {"asymmetry": {True: " --asymmetry", "only": " --asymmetry-only"}.get(args.asymmetry, "")}
        flags["colour_residual"] = " --colour-residual"
        options = "".join(
            flags.get(name, f" --{name.replace('_', '-')} {getattr(args, name)}")
            for name, value in defaults.items()
            if getattr(args, name) != value
        )
        rows["plain CNN baseline" + options] = row
        print("baseline", json.dumps(row), flush=True)
    if not args.skip_lenshunt:
        from pipeline.training import TrainConfig, train

        options = {
            key: json.loads(value) for key, value in (item.split("=", 1) for item in args.lenshunt_option)
        }
        config = TrainConfig(seed=args.seed, **options)
        result = train(args.train_store, args.out / "lenshunt", config, overwrite=True, log=print)
        row = {"train_seconds": result.seconds, "images_per_s": result.images_per_s}
        row.update({name: score_lenshunt(args.out / "lenshunt", store) for name, store in tests.items()})
        label = "lenshunt train " + (" ".join(args.lenshunt_option) or "(defaults)")
        rows[label] = row
        print("lenshunt", json.dumps(row), flush=True)
    names = list(tests)
    print("\n| model | " + " | ".join(f"AUROC {name}" for name in names) + " | train s | images/s |")
    print("|---|" + "---|" * (len(names) + 2))
    for label, row in rows.items():
        values = " | ".join(f"{row[name]:.3f}" for name in names)
        print(f"| {label} | {values} | {row['train_seconds']:.0f} | {row['images_per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
