"""SIE plus external shear by direct ray shooting; lensed source images and image counts."""

from __future__ import annotations

import math

import numpy as np

from bench.othersim.profiles import PROFILES, gaussian, pixel_grid, rotate_frame
from bench.othersim.settings import FINE_ARCSEC, RAY_ARCSEC, SHAPE


def deflection(x, y, lens: dict) -> tuple[np.ndarray, np.ndarray]:
    """SIE (major axis along ``phi``, Einstein radius ``theta_e``) plus external shear."""
    q = lens["q"]
    b = lens["theta_e"] / math.sqrt(q)
    u, v = rotate_frame(x, y, lens["x"], lens["y"], lens["phi"])
    s = math.sqrt(1.0 - q * q)
    psi = np.maximum(np.sqrt(q * q * u * u + v * v), 1e-9)
    au = b * q / s * np.arctan(s * u / psi)
    av = b * q / s * np.arctanh(np.clip(s * v / psi, -0.999999, 0.999999))
    c, si = math.cos(lens["phi"]), math.sin(lens["phi"])
    g1, g2 = lens["gamma1"], lens["gamma2"]
    return c * au - si * av + g1 * x + g2 * y, si * au + c * av + g2 * x - g1 * y


def source_plane(x, y, lens: dict) -> tuple[np.ndarray, np.ndarray]:
    ax, ay = deflection(x, y, lens)
    return x - ax, y - ay


def source_light(bx, by, source: dict) -> np.ndarray:
    """Source surface brightness (unnormalised) at source-plane positions: body plus knot."""
    light = PROFILES[source["profile"]](bx, by, source)
    knot = source.get("knot")
    if knot:
        light = light + knot["amplitude"] * gaussian(bx, by, knot)
    return light


def ray_window(lens: dict, source: dict) -> int:
    """Half-width, in VIS pixels, of the central square that holds every image of the source."""
    reach = 1.3 * lens["theta_e"] + math.hypot(source["x"], source["y"]) + 5.0 * source["r"] + 0.5
    return int(min(SHAPE["VIS"] // 2, math.ceil(reach / FINE_ARCSEC)))


def lensed_source(lens: dict, source: dict) -> tuple[np.ndarray, float]:
    """The lensed source on the 0.1" grid in units of the unlensed flux, and its magnification.

    Rays are shot at 0.05" through the central window of :func:`ray_window` only.
    """
    half = ray_window(lens, source)
    sub = round(FINE_ARCSEC / RAY_ARCSEC)
    x, y = pixel_grid(2 * half * sub, RAY_ARCSEC)
    lensed = source_light(*source_plane(x, y, lens), source)
    unlensed = source_light(x, y, source).sum()
    image = np.zeros((SHAPE["VIS"], SHAPE["VIS"]))
    centre = SHAPE["VIS"] // 2
    window = np.s_[centre - half : centre + half, centre - half : centre + half]
    image[window] = lensed.reshape(2 * half, sub, 2 * half, sub).sum(axis=(1, 3))
    return image / unlensed, float(lensed.sum() / unlensed)


def count_images(lens: dict, beta: tuple[float, float], half_width: float) -> int:
    """Images of the point ``beta`` within ``half_width`` of the centre with magnification above
    0.1: grid minima of |source plane - beta| refined by Newton steps; solutions closer than
    0.01" are one image."""
    step = 0.05
    x, y = pixel_grid(2 * math.ceil(half_width / step), step)
    bx, by = source_plane(x, y, lens)
    d2 = (bx - beta[0]) ** 2 + (by - beta[1]) ** 2
    inner = d2[1:-1, 1:-1]
    is_min = inner < 0.3**2
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx or dy:
                is_min &= inner <= d2[1 + dy : d2.shape[0] - 1 + dy, 1 + dx : d2.shape[1] - 1 + dx]
    rows, cols = np.nonzero(is_min)
    found: list[tuple[float, float]] = []
    for row, col in zip(rows + 1, cols + 1, strict=True):
        point = np.array([x[row, col], y[row, col]])
        residual = np.array(source_plane(point[0], point[1], lens)) - beta
        for _ in range(30):
            if np.hypot(*residual) < 1e-9:
                break
            try:
                point = point - np.linalg.solve(_jacobian(point, lens), residual)
            except np.linalg.LinAlgError:
                break
            residual = np.array(source_plane(point[0], point[1], lens)) - beta
        inside = np.all(np.abs(point) < half_width)
        magnified = abs(np.linalg.det(_jacobian(point, lens))) < 10.0
        converged = np.hypot(*residual) < 1e-5 and inside and magnified
        if converged and all(math.hypot(point[0] - a, point[1] - b) > 0.01 for a, b in found):
            found.append((float(point[0]), float(point[1])))
    return len(found)


def _jacobian(point: np.ndarray, lens: dict, h: float = 1e-5) -> np.ndarray:
    columns = []
    for offset in ((h, 0.0), (0.0, h)):
        plus = np.array(source_plane(point[0] + offset[0], point[1] + offset[1], lens))
        minus = np.array(source_plane(point[0] - offset[0], point[1] - offset[1], lens))
        columns.append((plus - minus) / (2 * h))
    return np.array(columns).T
