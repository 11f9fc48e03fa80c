"""The asymmetry channels' half-turn: ours against the naive full-grid complex128 phase, side by side.

:func:`pipeline.preprocess.asymmetry.rotate_half_turn` applies the sub-pixel shift as the outer
product of two 1-D phase ramps in the spectrum's precision (complex64 for float32 images). The
naive way (the first implementation) builds the whole 2-D phase in complex128, which upcasts the
spectrum. Both on the same batch, best of 7, in this process; and the whole asymmetry step with and
without its smoothing (the same two transforms, the rotated spectrum taken from the conjugate of the
image's own, then the taper)::

    python -m bench.bench_asymmetry [--n 256] [--side 100] [--channels 4]
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from bench.machine import record_header
from pipeline.preprocess.asymmetry import add_rotational_asymmetry, rotate_half_turn

CLIP_SIGMA = (-10.0, 1000.0)
SOFTENING_SIGMA = 1.0


def naive_rotate_half_turn(images: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The first implementation: the full ``(n, y, x // 2 + 1)`` phase in complex128."""
    n_y, n_x = images.shape[1:3]
    flipped = np.flip(images, axis=(1, 2))
    shift = 2.0 * centre - np.asarray([n_y - 1, n_x - 1], dtype=np.float64)
    k_y = np.fft.fftfreq(n_y)[None, :, None, None]
    k_x = np.fft.rfftfreq(n_x)[None, None, :, None]
    phase = np.exp(-2j * np.pi * (k_y * shift[:, 0, None, None, None] + k_x * shift[:, 1, None, None, None]))
    spectrum = np.fft.rfft2(flipped, axes=(1, 2)) * phase
    return np.fft.irfft2(spectrum, s=(n_y, n_x), axes=(1, 2)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="objects per batch")
    parser.add_argument("--side", type=int, default=100, help="pixels per side (the shipped model: 100)")
    parser.add_argument("--channels", type=int, default=4)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = (0.1 * rng.normal(size=(args.n, args.side, args.side, args.channels))).astype(np.float32)
    centre = (args.side - 1) / 2 + rng.uniform(-0.5, 0.5, size=(args.n, 2))
    naive = min(timeit.repeat(lambda: naive_rotate_half_turn(images, centre), number=1, repeat=7))
    ours = min(timeit.repeat(lambda: rotate_half_turn(images, centre), number=1, repeat=7))
    options = {"clip_sigma": CLIP_SIGMA, "softening_sigma": SOFTENING_SIGMA}
    channels = min(timeit.repeat(lambda: add_rotational_asymmetry(images, **options), number=1, repeat=7))
    smooth = {**options, "smoothing_px": 0.7}
    smoothed = min(timeit.repeat(lambda: add_rotational_asymmetry(images, **smooth), number=1, repeat=7))
    difference = np.abs(naive_rotate_half_turn(images, centre) - rotate_half_turn(images, centre)).max()
    print(record_header("Asymmetry channels: the half-turn against the naive complex128 phase"))
    print(f"| {args.n} x {args.side} x {args.side} x {args.channels} float32 | ms per batch |")
    print("|---|---|")
    print(f"| naive: full 2-D complex128 phase | {1000 * naive:.0f} |")
    print(f"| ours: two 1-D ramps, complex64 | {1000 * ours:.0f} ({naive / ours:.2f}x) |")
    print(f"| ours, the whole asymmetry step (centre, rotation, stretch) | {1000 * channels:.0f} |")
    ratio = smoothed / channels
    print(f"| the same, smoothed (`asymmetry_smoothing_px` 0.7) | {1000 * smoothed:.0f} ({ratio:.2f}x) |")
    print(f"\nlargest difference between the two rotations: {difference:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
