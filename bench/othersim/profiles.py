"""Pixel grids and unnormalised surface-brightness profiles (pure NumPy)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from bench.othersim.settings import FINE_ARCSEC, SHAPE


@lru_cache(maxsize=4)
def pixel_grid(n: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x along columns, y along rows) in arcsec, centred on the image."""
    axis = (np.arange(n) - (n - 1) / 2.0) * step
    x, y = np.meshgrid(axis, axis)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def rotate_frame(x, y, x0: float, y0: float, phi: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(phi), math.sin(phi)
    dx, dy = x - x0, y - y0
    return c * dx + s * dy, -s * dx + c * dy


def _elliptical_radius(x, y, p: dict) -> np.ndarray:
    u, v = rotate_frame(x, y, p["x"], p["y"], p["phi"])
    return np.sqrt(p["q"] * u * u + v * v / p["q"])


def devaucouleurs(x, y, p: dict) -> np.ndarray:
    """Unnormalised de Vaucouleurs surface brightness, half-light radius ``p['r']``."""
    r = _elliptical_radius(x, y, p) / p["r"]
    return np.exp(-7.669 * (np.sqrt(np.sqrt(r)) - 1.0))


def exponential(x, y, p: dict) -> np.ndarray:
    """Unnormalised exponential disc, half-light radius ``p['r']``."""
    return np.exp(-1.678 * _elliptical_radius(x, y, p) / p["r"])


def gaussian(x, y, p: dict) -> np.ndarray:
    """Unnormalised elliptical Gaussian, half-light radius ``p['r']``."""
    r = _elliptical_radius(x, y, p) / p["r"]
    return np.exp(-0.6931 * r * r)


def ring(x, y, p: dict) -> np.ndarray:
    """A Gaussian ring with low-order azimuthal modulation (lopsided, clumpy)."""
    u, v = rotate_frame(x, y, p["x"], p["y"], p["phi"])
    v = v / p["q"]
    radius, angle = np.hypot(u, v), np.arctan2(v, u)
    modulation = 1.0 + sum(a * np.cos(k * angle + ph) for k, (a, ph) in enumerate(p["modes"], 1))
    return np.exp(-0.5 * ((radius - p["radius"]) / p["width"]) ** 2) * np.maximum(modulation, 0.05)


def spiral(x, y, p: dict) -> np.ndarray:
    """An exponential disc whose light sits in two logarithmic arms of fixed width in arcsec."""
    u, v = rotate_frame(x, y, p["x"], p["y"], p["phi"])
    v = v / p["q"]
    radius = np.maximum(np.hypot(u, v), 0.05)
    angle = np.arctan2(v, u)
    arm = p["phase"] + np.log(radius) / math.tan(p["pitch"])
    delta = np.mod(angle - arm + math.pi / 2, math.pi) - math.pi / 2  # two arms, pi apart
    arms = np.exp(-0.5 * (delta * radius / p["arm_width"]) ** 2)
    return np.exp(-radius / p["h"]) * (0.3 + arms)


PROFILES = {"devauc": devaucouleurs, "exp": exponential, "gauss": gaussian, "ring": ring, "spiral": spiral}


def unit_template(component: dict) -> np.ndarray:
    """Light of a component on the 0.1" grid, summing to 1 over the cutout (cut-off light is lost)."""
    x, y = pixel_grid(SHAPE["VIS"], FINE_ARCSEC)
    image = PROFILES[component["profile"]](x, y, component)
    total = image.sum()
    return image / total if total > 0 else image
