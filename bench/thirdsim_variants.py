"""thirdsim's scenes drawn again with one of its choices changed: what in it costs a model AUROC.

``python -m bench.thirdsim_variants OUT --variant NAME --n N [--seed 31] [--first-id 700000]``
writes the same N scenes as ``python -m bench.thirdsim OUT --n N --seed S --first-id I`` (every
random number is drawn as there, in one process), with one choice replaced:

- ``none``: nothing (the first N objects of that set, bit for bit);
- ``no-gradient``: every early-type component (lens galaxies, ellipticals, the bulges of spirals
  and early-type neighbours) has its bluer envelope take its bulge's colour (no colour gradient);
- ``single-sersic``: those are their bulge Sersic alone, carrying the whole flux (bulge and
  envelope);
- ``gaussian-psf``: every PSF a circular Gaussian of that draw's own pixel FWHM (no Airy rings, no
  Moffat halo);
- ``smooth-sources``: lensed sources without star-forming knots (their disc with all the flux);
- ``bright-sources``: lensed sources 1 mag brighter (the catalog's ``mag_source`` stays the
  magnitude drawn before).

Labels follow thirdsim's own catalog (``n_pix_source`` is counted again), so a variant may have
other lenses by the challenge rule. ``bench/RESULTS.md`` ("what in the second independent
simulator costs the AUROC") scores them with the plain-CNN baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # as python -m bench.thirdsim: before NumPy starts its threads

import numpy as np

from bench.thirdsim import galaxies, nonlenses, population
from bench.thirdsim import simulate as thirdsim
from bench.thirdsim.instrument import observe
from bench.thirdsim.render import Component

BRIGHTER_MAG = 1.0
"""How much brighter ``bright-sources`` draws every lensed source, in mag."""


def _early_type(envelope_colour: bool) -> Callable:
    def components(rng, name, vis, re, z, q, pa, x0=0.0, y0=0.0, colour=None):
        bulge, envelope = galaxies.etg_components(rng, name, vis, re, z, q, pa, x0, y0, colour)
        vis_minus_h = bulge.mags["VIS"] - bulge.mags["H"]
        if envelope_colour:
            return [
                bulge,
                Component(envelope.name, envelope.fn, galaxies.colours(envelope.mags["VIS"], vis_minus_h)),
            ]
        return [Component(bulge.name, bulge.fn, galaxies.colours(vis, vis_minus_h))]

    return components


def _lensed_source(smooth: bool) -> Callable:
    def components(rng, name, vis, re, q, pa, x0, y0, colour, z, lensed):
        brighter = vis - BRIGHTER_MAG if lensed and not smooth else vis
        comps, extra = galaxies.clumpy_components(rng, name, brighter, re, q, pa, x0, y0, colour, z, lensed)
        if smooth and lensed:
            disc = comps[0]
            return [Component(disc.name, disc.fn, galaxies.colours(vis, colour), lensed=True)], extra
        return comps, extra

    return components


def _gaussian_observe(band, rng):
    observation = observe(band, rng)  # the instrument's own, with the same draws
    size = observation.psf_fine.shape[0]
    fine_scale = band.scale / band.fine
    # the fine-grid Gaussian whose pixel-integrated FWHM is the draw's (a box of one pixel adds
    # scale^2 / 12 to the variance)
    sigma_arcsec = np.sqrt(
        max((observation.fwhm / 2.3548) ** 2 - band.scale**2 / 12, (0.3 * band.scale) ** 2)
    )
    u = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-0.5 * (u[:, None] ** 2 + u[None, :] ** 2) / (sigma_arcsec / fine_scale) ** 2)
    return dataclasses.replace(observation, psf_fine=kernel / kernel.sum())


VARIANTS: dict[str, list[tuple[object, str, Callable]]] = {
    "none": [],
    "no-gradient": [
        (population, "etg_components", _early_type(True)),
        (nonlenses, "etg_components", _early_type(True)),
    ],
    "single-sersic": [
        (population, "etg_components", _early_type(False)),
        (nonlenses, "etg_components", _early_type(False)),
    ],
    "gaussian-psf": [(thirdsim, "observe", _gaussian_observe)],
    "smooth-sources": [(population, "clumpy_components", _lensed_source(True))],
    "bright-sources": [(population, "clumpy_components", _lensed_source(False))],
}
"""Each variant: the thirdsim module attributes it replaces, and with what."""


def simulate_variant(out: Path, variant: str, n: int, seed: int, first_id: int) -> None:
    """Write thirdsim's ``n`` objects from ``first_id`` with ``variant``'s change (one process; the
    replaced functions are put back afterwards).

    Raises
    ------
    KeyError
        An unknown variant.
    """
    replaced = [(module, name, getattr(module, name)) for module, name, _ in VARIANTS[variant]]
    try:
        for module, name, function in VARIANTS[variant]:
            setattr(module, name, function)
        thirdsim.simulate_set(out, n, seed, first_id, workers=1, log=lambda *args: None)
    finally:
        for module, name, original in replaced:
            setattr(module, name, original)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--first-id", type=int, default=700000)
    args = parser.parse_args(argv)
    for name, value, least in (
        ("--n", args.n, 1),
        ("--seed", args.seed, 0),
        ("--first-id", args.first_id, 0),
    ):
        if value < least:
            parser.error(f"{name} must be at least {least}, got {value}")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(
            f"{args.out} exists and is not an empty directory: its old files would mix with the new set"
        )
    simulate_variant(args.out, args.variant, args.n, args.seed, args.first_id)
    print(f"thirdsim, {args.variant}: {args.n} objects in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
