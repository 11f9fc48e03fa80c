"""Unlensed light on a pixel grid: central and field galaxies, stars, hard-negative features.

Every function returns a *template*: flux per pixel of the grid for an object of unit total flux
(before the PSF). Sersic profiles are normalised analytically (light falling outside the cutout
is lost, as it is on the sky); rings, spiral discs and tidal arcs are normalised over the grid,
which holds them whole. Pure numpy: the Sersic is lenstronomy's ``SERSIC_ELLIPSE`` (same
product-average radius; a test checks they agree) at a quarter of its cost, which dominated the
render time. The lensed source is in :mod:`pipeline.simulate.lensing`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from pipeline.simulate.draws import ArcDraw, Feature, RingDraw, SersicDraw, SpiralDraw, StarDraw
from pipeline.simulate.instrument import Grid


@lru_cache(maxsize=256)
def _sersic_constants(n: float) -> tuple[float, float]:
    """(b_n, total flux of I(R) = exp(-b_n ((R/1)^(1/n) - 1)) for R_eff = 1)."""
    from scipy.special import gamma, gammaincinv

    b_n = float(gammaincinv(2.0 * n, 0.5))
    total = 2.0 * math.pi * n * math.exp(b_n) * b_n ** (-2.0 * n) * float(gamma(2.0 * n))
    return b_n, total


def rotate(x: np.ndarray, y: np.ndarray, x0: float, y0: float, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates relative to (x0, y0) in a frame whose first axis points along angle ``phi``."""
    dx, dy = x - x0, y - y0
    c, s = math.cos(phi), math.sin(phi)
    return c * dx + s * dy, -s * dx + c * dy


def sersic_sb(x: np.ndarray, y: np.ndarray, draw: SersicDraw) -> np.ndarray:
    """Surface brightness of a unit-flux elliptical Sersic, radius sqrt(q x'^2 + y'^2 / q)."""
    b_n, total = _sersic_constants(round(draw.n, 4))
    xp, yp = rotate(x, y, draw.x, draw.y, draw.phi)
    radius = np.sqrt(draw.q * xp * xp + yp * yp / draw.q) / draw.r_eff
    radius = np.maximum(radius, 1e-4)
    return np.exp(-b_n * (radius ** (1.0 / draw.n) - 1.0)) / (total * draw.r_eff**2)


def sersic_template(grid: Grid, draw: SersicDraw, cut_r_eff: float = 12.0) -> np.ndarray:
    """Unit-flux template of a Sersic, evaluated in a window of ``cut_r_eff`` effective radii."""
    x, y = grid.sub_coordinates()
    reach = max(cut_r_eff * draw.r_eff / math.sqrt(draw.q), 1.0)
    sub = grid.sub_scale_arcsec
    ny, nx = x.shape
    cols = _index_range(draw.x, reach, sub, nx, x[0, 0])
    rows = _index_range(draw.y, reach, sub, ny, y[0, 0])
    s = grid.supersample
    sb = np.zeros_like(x)
    if cols is None or rows is None:
        return grid.bin(sb)
    # align the window with whole pixels so binning stays exact
    r0, r1 = (rows[0] // s) * s, -(-rows[1] // s) * s
    c0, c1 = (cols[0] // s) * s, -(-cols[1] // s) * s
    window = np.s_[r0:r1, c0:c1]
    sb[window] = sersic_sb(x[window], y[window], draw)
    return grid.bin(sb)


def _index_range(
    centre: float, reach: float, step: float, size: int, origin: float
) -> tuple[int, int] | None:
    lo = math.floor((centre - reach - origin) / step)
    hi = math.ceil((centre + reach - origin) / step) + 1
    lo, hi = max(lo, 0), min(hi, size)
    return (lo, hi) if hi > lo else None


def ring_sb(x: np.ndarray, y: np.ndarray, ring: RingDraw) -> np.ndarray:
    """Unnormalised surface brightness of a knotty, lopsided elliptical ring."""
    xp, yp = rotate(x, y, ring.x, ring.y, ring.phi)
    yq = yp / ring.q
    radius = np.hypot(xp, yq)
    angle = np.arctan2(yq, xp)
    profile = np.exp(-0.5 * ((radius - ring.radius) / ring.width) ** 2)
    modulation = 1.0 + ring.lopsided * np.cos(angle - ring.lopsided_angle)
    knot_width = 2.0 * ring.width / ring.radius
    for knot_angle, amplitude in ring.knots:
        delta = np.mod(angle - knot_angle + math.pi, 2.0 * math.pi) - math.pi
        modulation = modulation + amplitude * np.exp(-0.5 * (delta / knot_width) ** 2)
    return profile * modulation


KNOT_WIDTH = 0.12
"""Gaussian sigma of a spiral's HII knots in disc scale lengths (0.05-0.15" for the drawn discs; HII
complexes of nearby spirals are 0.1-1 kpc, Kennicutt et al. 1989, ApJ 337, 761)."""


def spiral_sb(x: np.ndarray, y: np.ndarray, disc: SpiralDraw) -> np.ndarray:
    """Unnormalised surface brightness of an exponential disc with logarithmic arms."""
    xp, yp = rotate(x, y, disc.x, disc.y, disc.phi)
    yq = yp / disc.q
    radius = np.maximum(np.hypot(xp, yq), 1e-3)
    angle = np.arctan2(yq, xp)
    winding = np.log(radius / disc.scale_length) / math.tan(disc.pitch)
    arms = (0.5 * (1.0 + np.cos(disc.n_arms * (angle - winding) - disc.arm_phase))) ** disc.sharpness
    light = np.exp(-radius / disc.scale_length) * (0.25 + 0.75 * arms)
    if disc.lopsided:
        light = light * (1.0 + disc.lopsided * np.cos(angle - disc.lopsided_angle))
    for knot_radius, arm, amplitude in disc.knots:
        # on the arm's crest: n_arms (angle - winding) - arm_phase = 2 pi arm
        r_k = knot_radius * disc.scale_length
        a_k = (
            math.log(knot_radius) / math.tan(disc.pitch)
            + (disc.arm_phase + 2.0 * math.pi * arm) / disc.n_arms
        )
        width = KNOT_WIDTH * disc.scale_length
        distance2 = (xp - r_k * math.cos(a_k)) ** 2 + (yq - r_k * math.sin(a_k)) ** 2
        light = light + amplitude * math.exp(-knot_radius) * np.exp(-0.5 * distance2 / width**2)
    return light


def arc_sb(x: np.ndarray, y: np.ndarray, arc: ArcDraw) -> np.ndarray:
    """Unnormalised surface brightness of a tapered tidal arc."""
    dx, dy = x - arc.cx, y - arc.cy
    radius = np.hypot(dx, dy)
    along = np.mod(np.arctan2(dy, dx) - arc.angle_start, 2.0 * math.pi)
    inside = along < arc.angle_span
    taper = np.where(inside, np.sin(math.pi * np.minimum(along, arc.angle_span) / arc.angle_span), 0.0)
    return np.exp(-0.5 * ((radius - arc.radius) / arc.width) ** 2) * taper


_FEATURE_PROFILES = {RingDraw: ring_sb, SpiralDraw: spiral_sb, ArcDraw: arc_sb}


def feature_template(grid: Grid, feature: Feature) -> np.ndarray:
    """Unit-flux template of a ring, spiral disc, tidal arc or companion galaxy (normalised over the grid)."""
    if isinstance(feature, SersicDraw):
        return sersic_template(grid, feature)
    x, y = grid.sub_coordinates()
    binned = grid.bin(_FEATURE_PROFILES[type(feature)](x, y, feature))
    total = binned.sum()
    return binned / total if total > 0 else binned


def star_template(grid: Grid, star: StarDraw) -> np.ndarray:
    """Unit flux split bilinearly over the four pixels around the star (the PSF does the rest)."""
    ny, nx = grid.shape
    col = star.x / grid.pixel_scale_arcsec + (nx - 1) / 2.0
    row = star.y / grid.pixel_scale_arcsec + (ny - 1) / 2.0
    template = np.zeros(grid.shape)
    c0, r0 = math.floor(col), math.floor(row)
    fc, fr = col - c0, row - r0
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            if 0 <= r < ny and 0 <= c < nx:
                template[r, c] += wr * wc
    return template
