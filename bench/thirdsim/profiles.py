"""Surface-brightness profiles of thirdsim, evaluated with NumPy on arcsec coordinates.

Every profile returns surface brightness per arcsec^2. ``sersic`` and ``gaussian`` are normalised to
unit total flux analytically; the structured ones (spiral arms, rings, tails) are unnormalised and
get normalised numerically on the first grid they are rendered on (see :mod:`bench.thirdsim.render`).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def _rotate(x, y, x0, y0, pa):
    c, s = np.cos(pa), np.sin(pa)
    dx, dy = x - x0, y - y0
    return c * dx + s * dy, -s * dx + c * dy


def sersic(x, y, re, n, q, pa, x0=0.0, y0=0.0):
    """Elliptical Sersic of circularised half-light radius ``re`` (arcsec), unit total flux."""
    xr, yr = _rotate(x, y, x0, y0, pa)
    r = np.sqrt(q * xr**2 + yr**2 / q)
    b = special.gammaincinv(2 * n, 0.5)
    norm = 2 * np.pi * re**2 * n * np.exp(b) * b ** (-2 * n) * special.gamma(2 * n)
    return np.exp(-b * ((r / re) ** (1.0 / n) - 1.0)) / norm


def gaussian(x, y, sigma, q=1.0, pa=0.0, x0=0.0, y0=0.0):
    """Elliptical Gaussian, ``sigma`` along the major axis times sqrt(q) (circularised), unit flux."""
    xr, yr = _rotate(x, y, x0, y0, pa)
    r2 = q * xr**2 + yr**2 / q
    return np.exp(-0.5 * r2 / sigma**2) / (2 * np.pi * sigma**2)


def spiral_arms(x, y, rd, q, pa, n_arms, pitch_deg, phase, width, x0=0.0, y0=0.0):
    """Exponential disc modulated by ``n_arms`` logarithmic spiral arms (unnormalised).

    In the disc plane the arm ridge is theta = phase + ln(r / rd) / tan(pitch); the modulation is
    a von-Mises-like bump exp(k (cos(m (theta - ridge)) - 1)) with k set by ``width`` (radians),
    suppressed inside 0.4 rd where the bulge and bar dominate.
    """
    xr, yr = _rotate(x, y, x0, y0, pa)
    yd = yr / q  # de-project the inclined disc
    r = np.hypot(xr, yd) + 1e-6
    theta = np.arctan2(yd, xr)
    ridge = phase + np.log(r / rd) / np.tan(np.radians(pitch_deg))
    k = 1.0 / max(width, 0.05) ** 2
    mod = np.exp(k * (np.cos(n_arms * (theta - ridge)) - 1.0))
    inner = 1.0 - np.exp(-((r / (0.4 * rd)) ** 2))
    return np.exp(-r / rd) * mod * inner


def ring(x, y, radius, width, q, pa, x0=0.0, y0=0.0, clump_phases=(), clump_width=0.4, clump_amp=0.0):
    """A Gaussian ring of ``radius`` in the disc plane, optionally clumpy in azimuth (unnormalised)."""
    xr, yr = _rotate(x, y, x0, y0, pa)
    yd = yr / q
    r = np.hypot(xr, yd)
    base = np.exp(-0.5 * ((r - radius) / width) ** 2)
    if clump_amp and len(clump_phases):
        theta = np.arctan2(yd, xr)
        k = 1.0 / clump_width**2
        mod = sum(np.exp(k * (np.cos(theta - p) - 1.0)) for p in clump_phases)
        base = base * (1.0 + clump_amp * mod)
    return base


def arc_stream(x, y, points, widths, weights):
    """Sum of round Gaussians along a curve: tidal tails, shells, streams (unnormalised)."""
    out = np.zeros(np.broadcast(x, y).shape)
    for (px, py), w, a in zip(points, widths, weights):
        out += a * np.exp(-0.5 * ((x - px) ** 2 + (y - py) ** 2) / w**2)
    return out


def dust_lane(x, y, height, tau, pa, x0=0.0, y0=0.0):
    """Transmission exp(-tau exp(-y'^2 / 2 h^2)) of a mid-plane dust lane (multiplicative)."""
    _, yr = _rotate(x, y, x0, y0, pa)
    return np.exp(-tau * np.exp(-0.5 * (yr / height) ** 2))
