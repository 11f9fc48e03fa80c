"""Hard negatives resized on the sky (``SimulationConfig.negative_scale``), optionally brightened,
and shifted in brightness alone (``SimulationConfig.negative_mag_offset``).

Pure functions on the draws of :mod:`pipeline.simulate.draws`; the population module decides
which objects and by what factor.
"""

from __future__ import annotations

import math
from dataclasses import replace

from pipeline.simulate.draws import Feature, RingDraw, SersicDraw, SpiralDraw

__all__ = ["brightened", "rescaled", "shifted_mag"]


def rescaled(
    central: tuple[SersicDraw, ...], features: tuple[Feature, ...], scale: float, brighten: bool = False
) -> tuple[tuple[SersicDraw, ...], tuple[Feature, ...]]:
    """The scene ``scale`` times as large on the sky about the first central galaxy.

    Parameters
    ----------
    central, features
        The hard negative's galaxies and features (positions and sizes in arcsec).
    scale
        Factor on every size and every distance from ``central[0]``.
    brighten
        False: fluxes kept (a larger scene has a lower surface brightness). True: every component
        ``5 log10(scale)`` mag brighter, i.e. ``scale**2`` times the flux on ``scale**2`` times the
        area: the same surface brightness, as for the same galaxy nearer (cosmological dimming and
        K-corrections ignored).
    """
    if scale == 1.0:
        return central, features
    x0, y0 = central[0].x, central[0].y
    delta_mag = -5.0 * math.log10(scale) if brighten else 0.0

    def moved(x: float, y: float) -> dict[str, float]:
        return {"x": x0 + scale * (x - x0), "y": y0 + scale * (y - y0)}

    def one(item):  # type: ignore[no-untyped-def]
        return brightened(resized(item), delta_mag)

    def resized(item):  # type: ignore[no-untyped-def]
        if isinstance(item, SersicDraw):
            return replace(item, **moved(item.x, item.y), r_eff=item.r_eff * scale)
        if isinstance(item, RingDraw):
            sizes = {"radius": item.radius * scale, "width": item.width * scale}
            return replace(item, **moved(item.x, item.y), **sizes)
        if isinstance(item, SpiralDraw):
            return replace(item, **moved(item.x, item.y), scale_length=item.scale_length * scale)
        centre = moved(item.cx, item.cy)  # a tidal arc
        sizes = {"radius": item.radius * scale, "width": item.width * scale}
        return replace(item, cx=centre["x"], cy=centre["y"], **sizes)

    return tuple(one(galaxy) for galaxy in central), tuple(one(feature) for feature in features)


def shifted_mag(items: tuple, delta_mag: float) -> tuple:
    """Every draw of ``items`` with its magnitude changed by ``delta_mag`` (sizes and places kept)."""
    return tuple(brightened(item, delta_mag) for item in items)


def brightened(item, delta_mag: float):  # type: ignore[no-untyped-def]
    """``item`` with its magnitude changed by ``delta_mag`` (negative: brighter)."""
    if delta_mag == 0.0:
        return item
    return replace(item, sed=replace(item.sed, mag=item.sed.mag + delta_mag))
