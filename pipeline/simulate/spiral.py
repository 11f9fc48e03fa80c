"""Star-forming knots and lopsidedness on drawn spiral discs.

A two-armed logarithmic spiral (two thirds of the simulator's spirals) is point-symmetric, so the
asymmetry channels of a lens finder (:mod:`pipeline.preprocess.asymmetry`) cancel it completely
(median asymmetry index 0.025 rendered; three-armed ones 0.47); real spirals are not: their HII
regions and unequal arms give them a median rotational asymmetry of ~0.15 against ~0.02 for
ellipticals (Conselice 2003, ApJS 147, 1), and a third of discs have an m = 1 lopsidedness above
0.2 (Zaritsky & Rix 1997, ApJ 477, 118). With ``spiral_knots`` 0-15 and ``spiral_lopsided`` 0-0.4
two-armed spirals reach a median of 0.20. The knots share the disc's colour (real HII regions are
bluer: not drawn so far).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from pipeline.simulate.draws import Feature, SpiralDraw

__all__ = ["KNOT_AMPLITUDE", "KNOT_RADIUS", "with_spiral_structure"]

KNOT_RADIUS = (0.5, 3.0)
"""Distance of a knot from the disc's centre in scale lengths, uniform."""

KNOT_AMPLITUDE = (0.5, 4.0)
"""A knot's peak over the disc's smooth surface brightness at its radius, log-uniform."""


def with_spiral_structure(
    features: tuple[Feature, ...],
    rng: np.random.Generator,
    knots: tuple[float, float],
    lopsided: tuple[float, float],
) -> tuple[Feature, ...]:
    """``features`` with every spiral disc given HII knots on its arms and an m = 1 mode.

    Parameters
    ----------
    features
        A scene's features; only :class:`~pipeline.simulate.draws.SpiralDraw` items change.
    rng
        The generator to draw from (a child stream of the object's own).
    knots
        Range of the number of knots per disc, uniform whole numbers; each sits on one of the arms'
        crests at :data:`KNOT_RADIUS` scale lengths with a peak :data:`KNOT_AMPLITUDE` times the
        disc there.
    lopsided
        Range of the m = 1 amplitude, uniform, at a uniform position angle.

    Returns
    -------
    tuple
        The features in their order, spirals replaced.
    """
    out = []
    for feature in features:
        if isinstance(feature, SpiralDraw):
            n_knots = int(rng.integers(round(knots[0]), round(knots[1]) + 1))
            drawn = tuple(
                (
                    float(rng.uniform(*KNOT_RADIUS)),
                    int(rng.integers(feature.n_arms)),
                    float(math.exp(rng.uniform(*np.log(KNOT_AMPLITUDE)))),
                )
                for _ in range(n_knots)
            )
            amplitude, angle = float(rng.uniform(*lopsided)), float(rng.uniform(0.0, 2.0 * math.pi))
            feature = replace(feature, knots=drawn, lopsided=amplitude, lopsided_angle=angle)
        out.append(feature)
    return tuple(out)
