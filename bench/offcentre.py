"""Bundles' AUROC on a Euclid-like store whose cutouts are moved off-centre, as survey cutouts are.

Simulated cutouts are centred on their object to a fraction of a pixel; survey cutouts are cut
around catalogue positions. Every band of every cutout is moved by the same offset on the sky,
``S`` VIS pixels (0.1" each) along both axes (so ``S sqrt 2`` from the centre), NISP by
``S / 3`` of its 0.3" pixels, by a phase ramp in Fourier space (exact for whole pixels,
band-limited in between; periodic edges, which are sky). Missing pixels are set to the cutout's
median first. Each bundle scores every shifted copy in this process::

    python -m bench.offcentre STORE BUNDLE [BUNDLE ...] [--shifts 0 0.5 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine
from pipeline.evaluation import auroc
from pipeline.preprocess.arrays import usable_objects
from pipeline.store import open_store, read_flags

VIS_PER_NISP_PIXEL = 3.0
"""NISP's 0.3" pixel over VIS's 0.1" (the euclid-sglc2 layout)."""


def shift_images(images: np.ndarray, shift_px: float) -> np.ndarray:
    """``(..., y, x)`` images moved by ``shift_px`` pixels along both axes (Fourier phase ramp);
    NaN pixels are given the image's median of its finite pixels first. float32, shape kept."""
    flat = images.reshape(-1, *images.shape[-2:])
    median = np.nan_to_num(np.nanmedian(flat.reshape(len(flat), -1), axis=1))[:, None, None]
    filled = np.where(np.isfinite(flat), flat, median).reshape(images.shape)
    n_y, n_x = images.shape[-2:]
    phase = np.exp(
        -2j * np.pi * (np.fft.fftfreq(n_y)[:, None] * shift_px + np.fft.rfftfreq(n_x)[None, :] * shift_px)
    )
    return np.fft.irfft2(np.fft.rfft2(filled) * phase, s=(n_y, n_x)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="a labelled euclid-sglc2 store")
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument(
        "--shifts", nargs="+", type=float, default=[0.0, 0.5, 1.0, 2.0, 3.0], help="VIS pixels"
    )
    args = parser.parse_args(argv)
    from pipeline.models import load_bundle

    print(describe_machine(), flush=True)
    print("command: python -m bench.offcentre " + " ".join(argv or sys.argv[1:]), flush=True)
    data = open_store(args.store, chunks=None)
    keep = np.asarray(usable_objects(read_flags(data, store=args.store))) & (data["label"].values >= 0)
    vis, nir, labels = data["vis"].values[keep], data["nir"].values[keep], data["label"].values[keep]
    print("\n| bundle | " + " | ".join(f'{s:g} px ({0.1 * s:.2g}")' for s in args.shifts) + " |")
    print("|---|" + "---|" * len(args.shifts))
    for path in args.bundles:
        bundle = load_bundle(path).on_store(data.attrs["groups"])  # each band by its name
        row = []
        for shift in args.shifts:
            groups = {"vis": shift_images(vis, shift), "nir": shift_images(nir, shift / VIS_PER_NISP_PIXEL)}
            scores = bundle.predict_groups_outputs(groups, batch_size=64)["score"].reshape(-1)
            row.append(f"{auroc(labels, scores):.3f}")
        print(f"| {path} ({bundle.card.model_id}) | " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
