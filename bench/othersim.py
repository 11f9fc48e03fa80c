"""An independent Euclid-like lens simulator, for checking lens finders outside their own simulator.

Deliberately unlike ``pipeline.simulate`` (lenstronomy, Gaussian space PSFs, flux units, its own
populations) and sharing no code with it: pure NumPy (plus fitsio to write files), direct ray
shooting through a singular isothermal ellipsoid (Kormann et al. 1994 deflections) plus external
shear, elliptical exponential or Gaussian sources with an optional off-centre knot, de Vaucouleurs
lens light with a redshift-dependent colour table, Moffat PSFs whose width varies per object,
its own noise levels and shot-noise model per band, pixel values in counts with an AB zero point
of 30 (or flux with zero point 0), Einstein radii 0.4-2.5" (log-uniform), and non-lenses drawn its
own way: ellipticals, ring galaxies, two-armed spirals and ellipticals with a blue companion
(arc-like hard negatives), all with field galaxies and stars around them.

It writes the ``euclid-sglc2`` layout exactly: ``Public/EUC_<band>/imageEUC_<band>-<ID>.fits``
(VIS 200x200 at 0.1"/px; NISP Y, J, H 66x66 at 0.3"/px; float32 primary HDU with a TAN WCS in
CD-matrix form and RA/DEC cards in degrees) and ``image_catalog_othersim.csv`` with ``ID`` and
the columns of the second challenge's label rule (``n_source_im > 0 and mag_eff > 1.6 and
n_pix_source > 20``), computed as the challenge defines them: images of the source centre, lensed
over unlensed source flux, and VIS pixels where the noiseless PSF-convolved source exceeds the
1-sigma sky noise.

Objects depend only on ``(seed, id)``: the same call gives the same bytes for any ``--jobs``.

Usage::

    python -m bench.othersim OUT --n 2000 --seed 7 [--noise 1.0] [--psf-scale 1.0]
        [--units counts|flux] [--first-id 200000] [--lens-fraction 0.5] [--jobs 2]
    lenshunt ingest OUT STORE --layout euclid-sglc2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BANDS = ("VIS", "Y", "J", "H")
PIXEL_ARCSEC = {"VIS": 0.1, "Y": 0.3, "J": 0.3, "H": 0.3}
SHAPE = {"VIS": 200, "Y": 66, "J": 66, "H": 66}
ID_DIGITS = 6
CATALOG_NAME = "image_catalog_othersim.csv"
LABEL_RULE = "n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20"
ZERO_POINT = {"counts": 30.0, "flux": 0.0}

# Instrument (its own numbers): sky sigma per pixel in flux units of zero point 0, shot-noise
# variance per unit flux, Moffat FWHM and beta.
SKY_SIGMA = {"VIS": 1.6e-12, "Y": 6.5e-12, "J": 7.0e-12, "H": 8.0e-12}
SHOT_VARIANCE_PER_FLUX = {"VIS": 2e-14, "Y": 1e-13, "J": 1e-13, "H": 1e-13}
PSF_FWHM_ARCSEC = {"VIS": 0.20, "Y": 0.42, "J": 0.45, "H": 0.50}
PSF_BETA = {"VIS": 2.5, "Y": 3.2, "J": 3.2, "H": 3.2}
PSF_SCATTER = 0.06

FINE_ARCSEC = 0.1  # light of unlensed components: VIS pixels, NISP pixels are 3x3 of them
RAY_ARCSEC = 0.05  # ray-shooting step for the lensed source
THETA_E_RANGE = (0.4, 2.5)
KINDS = ("elliptical", "ring", "spiral", "companion")
KIND_WEIGHTS = (0.4, 0.15, 0.25, 0.2)
COLUMNS = (
    "ID",
    "n_source_im",
    "mag_eff",
    "n_pix_source",
    "kind",
    "theta_e",
    "z_lens",
    "z_source",
    "mag_lens",
    "mag_source",
    "r_source",
    "n_neighbours",
    "psf_fwhm_vis",
    "noise_vis",
)


@dataclass(frozen=True)
class Settings:
    """How a set is observed: noise and PSF factors, pixel units, and the lens fraction."""

    seed: int = 0
    noise: float = 1.0
    psf_scale: float = 1.0
    units: str = "counts"
    lens_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.units not in ZERO_POINT:
            raise ValueError(f"units must be one of {sorted(ZERO_POINT)}, got {self.units!r}")
        if self.noise <= 0 or self.psf_scale <= 0 or not 0 <= self.lens_fraction <= 1:
            raise ValueError("need --noise > 0, --psf-scale > 0 and 0 <= --lens-fraction <= 1")

    def flux(self, mag: float) -> float:
        """Pixel-value total of an object of AB magnitude ``mag`` in these units."""
        return 10.0 ** (-0.4 * (mag - ZERO_POINT[self.units]))

    def unit_factor(self) -> float:
        """Pixel value of unit flux of zero point 0."""
        return 10.0 ** (0.4 * ZERO_POINT[self.units])


# ---------------------------------------------------------------- grids and profiles


@lru_cache(maxsize=4)
def _grid(n: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x along columns, y along rows) in arcsec, centred on the image."""
    axis = (np.arange(n) - (n - 1) / 2.0) * step
    x, y = np.meshgrid(axis, axis)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _frame(x, y, x0: float, y0: float, phi: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(phi), math.sin(phi)
    dx, dy = x - x0, y - y0
    return c * dx + s * dy, -s * dx + c * dy


def _elliptical_radius(x, y, p: dict) -> np.ndarray:
    u, v = _frame(x, y, p["x"], p["y"], p["phi"])
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
    u, v = _frame(x, y, p["x"], p["y"], p["phi"])
    v = v / p["q"]
    radius, angle = np.hypot(u, v), np.arctan2(v, u)
    modulation = 1.0 + sum(a * np.cos(k * angle + ph) for k, (a, ph) in enumerate(p["modes"], 1))
    return np.exp(-0.5 * ((radius - p["radius"]) / p["width"]) ** 2) * np.maximum(modulation, 0.05)


def spiral(x, y, p: dict) -> np.ndarray:
    """An exponential disc whose light sits in two logarithmic arms of fixed width in arcsec."""
    u, v = _frame(x, y, p["x"], p["y"], p["phi"])
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
    x, y = _grid(SHAPE["VIS"], FINE_ARCSEC)
    image = PROFILES[component["profile"]](x, y, component)
    total = image.sum()
    return image / total if total > 0 else image


# ---------------------------------------------------------------- lensing


def deflection(x, y, lens: dict) -> tuple[np.ndarray, np.ndarray]:
    """SIE (major axis along ``phi``, Einstein radius ``theta_e``) plus external shear."""
    q = lens["q"]
    b = lens["theta_e"] / math.sqrt(q)
    u, v = _frame(x, y, lens["x"], lens["y"], lens["phi"])
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
    x, y = _grid(2 * half * sub, RAY_ARCSEC)
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
    x, y = _grid(2 * math.ceil(half_width / step), step)
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


# ---------------------------------------------------------------- population


def _colours(kind: str, z: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """VIS-Y, Y-J, J-H colours (AB mag) of a component."""
    if kind == "red":  # early type: a redshift-dependent table
        return (
            0.55 + 0.9 * z + rng.normal(0, 0.08),
            0.28 + 0.25 * z + rng.normal(0, 0.05),
            0.30 + 0.1 * z + rng.normal(0, 0.05),
        )
    if kind == "blue":  # star-forming
        return (rng.uniform(-0.2, 0.4), rng.uniform(-0.1, 0.3), rng.uniform(-0.1, 0.3))
    if kind == "disc":
        return (rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.3), rng.uniform(0.1, 0.3))
    return (rng.uniform(-0.3, 1.5), rng.uniform(-0.1, 0.5), rng.uniform(-0.1, 0.4))  # anything


def _band_mags(vis_mag: float, colours: tuple[float, float, float]) -> dict[str, float]:
    mags = {"VIS": vis_mag}
    mags["Y"] = vis_mag - colours[0]
    mags["J"] = mags["Y"] - colours[1]
    mags["H"] = mags["J"] - colours[2]
    return mags


def _early_type(rng: np.random.Generator, z: float, theta_e: float) -> dict:
    """A de Vaucouleurs galaxy whose brightness and size follow its (hidden) Einstein radius."""
    return {
        "profile": "devauc",
        "x": rng.normal(0, 0.04),
        "y": rng.normal(0, 0.04),
        "r": float(np.clip(0.8 * theta_e * rng.uniform(0.7, 1.4), 0.25, 3.0)),
        "q": rng.uniform(0.5, 1.0),
        "phi": rng.uniform(0, math.pi),
        "mags": _band_mags(
            19.5 - 2.2 * math.log10(theta_e) + 1.5 * (z - 0.45) + rng.normal(0, 0.35), _colours("red", z, rng)
        ),
    }


def draw_object(object_id: int, settings: Settings) -> dict:
    """Everything of one object, from its own stream ``SeedSequence(seed, spawn_key=(id,))``."""
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(int(object_id),)))
    z_lens = rng.uniform(0.15, 0.8)
    theta_e = math.exp(rng.uniform(*np.log(THETA_E_RANGE)))
    obj = {
        "id": int(object_id),
        "ra": 52.0 + rng.uniform(-1.5, 1.5),
        "dec": -28.0 + rng.uniform(-1.5, 1.5),
        "z_lens": z_lens,
        "psf_deviate": rng.normal(0, 1, size=len(BANDS)),
        "lens": None,
        "source": None,
    }
    central = _early_type(rng, z_lens, theta_e)
    components = [central]
    if rng.random() < settings.lens_fraction:
        obj["kind"] = "lens"
        gamma, gamma_angle = rng.uniform(0, 0.1), rng.uniform(0, math.pi)
        obj["lens"] = {
            "theta_e": theta_e,
            "q": float(np.clip(central["q"] + rng.normal(0, 0.05), 0.45, 0.98)),
            "phi": central["phi"] + rng.normal(0, 0.15),
            "x": central["x"],
            "y": central["y"],
            "gamma1": gamma * math.cos(2 * gamma_angle),
            "gamma2": gamma * math.sin(2 * gamma_angle),
        }
        offset = theta_e * math.sqrt(rng.uniform(0, 1)) * 1.25
        angle = rng.uniform(0, 2 * math.pi)
        radius = math.exp(rng.uniform(math.log(0.1), math.log(0.5)))
        source = {
            "profile": "exp" if rng.random() < 0.6 else "gauss",
            "x": central["x"] + offset * math.cos(angle),
            "y": central["y"] + offset * math.sin(angle),
            "r": radius,
            "q": rng.uniform(0.3, 1.0),
            "phi": rng.uniform(0, math.pi),
            "z": z_lens + rng.uniform(0.5, 2.5),
            "mags": _band_mags(rng.uniform(22.3, 26.5), _colours("blue", 0, rng)),
        }
        if rng.random() < 0.5:
            knot_angle = rng.uniform(0, 2 * math.pi)
            source["knot"] = {
                "x": source["x"] + 0.8 * radius * math.cos(knot_angle),
                "y": source["y"] + 0.8 * radius * math.sin(knot_angle),
                "r": 0.3 * radius,
                "q": 1.0,
                "phi": 0.0,
                "amplitude": rng.uniform(0.5, 3.0),
            }
        obj["source"] = source
    else:
        obj["kind"] = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
        components = _negative(obj["kind"], rng, z_lens, central)
    obj["components"] = components + _field(rng)
    obj["stars"] = [
        (
            rng.uniform(-9.5, 9.5),
            rng.uniform(-9.5, 9.5),
            _band_mags(rng.uniform(17.5, 24.0), _colours("any", 0, rng)),
        )
        for _ in range(rng.poisson(0.4))
    ]
    obj["n_neighbours"] = len(obj["components"]) - len(components)
    return obj


def _negative(kind: str, rng: np.random.Generator, z: float, central: dict) -> list[dict]:
    if kind == "elliptical":
        return [central]
    if kind == "companion":  # a red galaxy with a small blue neighbour: arc-like hard negative
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 2.5)
        blue = {
            "profile": "exp",
            "x": central["x"] + distance * math.cos(angle),
            "y": central["y"] + distance * math.sin(angle),
            "r": rng.uniform(0.15, 0.4),
            "q": rng.uniform(0.25, 0.8),
            "phi": angle + math.pi / 2 + rng.normal(0, 0.3),  # roughly tangential
            "mags": _band_mags(rng.uniform(22.0, 24.5), _colours("blue", 0, rng)),
        }
        return [central, blue]
    bulge = {
        "profile": "devauc",
        "x": rng.normal(0, 0.04),
        "y": rng.normal(0, 0.04),
        "r": rng.uniform(0.3, 0.8),
        "q": rng.uniform(0.6, 1.0),
        "phi": rng.uniform(0, math.pi),
        "mags": _band_mags(rng.uniform(20.5, 22.5), _colours("red", z, rng)),
    }
    shape = {"x": bulge["x"], "y": bulge["y"], "q": rng.uniform(0.5, 1.0), "phi": rng.uniform(0, math.pi)}
    if kind == "ring":
        extra = {
            "profile": "ring",
            "radius": rng.uniform(1.0, 3.0),
            "width": rng.uniform(0.1, 0.35),
            "modes": [(rng.uniform(0, 0.5), rng.uniform(0, 2 * math.pi)) for _ in range(3)],
            "mags": _band_mags(bulge["mags"]["VIS"] + rng.uniform(-0.5, 1.5), _colours("blue", 0, rng)),
        }
    else:
        extra = {
            "profile": "spiral",
            "h": rng.uniform(0.5, 1.5),
            "pitch": math.radians(rng.uniform(10, 30)),
            "phase": rng.uniform(0, 2 * math.pi),
            "arm_width": rng.uniform(0.15, 0.35),
            "mags": _band_mags(bulge["mags"]["VIS"] - rng.uniform(0, 1.2), _colours("disc", 0, rng)),
        }
    return [bulge, {**shape, **extra}]


def _field(rng: np.random.Generator) -> list[dict]:
    """Field galaxies at least 2" from the centre."""
    galaxies = []
    for _ in range(rng.poisson(2.5)):
        while True:
            x, y = rng.uniform(-10, 10, size=2)
            if math.hypot(x, y) > 2.0:
                break
        galaxies.append(
            {
                "profile": "exp" if rng.random() < 0.6 else "devauc",
                "x": x,
                "y": y,
                "r": math.exp(rng.uniform(math.log(0.1), math.log(0.8))),
                "q": rng.uniform(0.3, 1.0),
                "phi": rng.uniform(0, math.pi),
                "mags": _band_mags(rng.uniform(21.0, 25.5), _colours("any", 0, rng)),
            }
        )
    return galaxies


# ---------------------------------------------------------------- observing


def moffat_kernel(band: str, fwhm_arcsec: float) -> np.ndarray:
    """Pixel-integrated Moffat PSF on the band's pixels (odd size, normalised)."""
    scale, beta = PIXEL_ARCSEC[band], PSF_BETA[band]
    half = int(min(math.ceil(4.0 * fwhm_arcsec / scale), SHAPE[band] // 2 - 1))
    sub = 5
    axis = ((np.arange((2 * half + 1) * sub) + 0.5) / sub - (half + 0.5)) * scale
    x, y = np.meshgrid(axis, axis)
    alpha = fwhm_arcsec / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    profile = (1.0 + (x * x + y * y) / alpha**2) ** -beta
    n = 2 * half + 1
    kernel = profile.reshape(n, sub, n, sub).sum(axis=(1, 3))
    return kernel / kernel.sum()


def kernel_transform(kernel: np.ndarray, image_shape: tuple[int, int]) -> tuple[np.ndarray, tuple]:
    """The kernel's FFT for same-size linear convolutions of images of ``image_shape``."""
    shape = (image_shape[0] + kernel.shape[0] - 1, image_shape[1] + kernel.shape[1] - 1)
    return np.fft.rfft2(kernel, shape), kernel.shape


def convolve(image: np.ndarray, transform: tuple[np.ndarray, tuple]) -> np.ndarray:
    """Same-size linear convolution by FFT (zero outside the image)."""
    kernel_fft, (ky, kx) = transform
    ny, nx = image.shape
    shape = (ny + ky - 1, nx + kx - 1)
    full = np.fft.irfft2(np.fft.rfft2(image, shape) * kernel_fft, shape)
    return full[ky // 2 : ky // 2 + ny, kx // 2 : kx // 2 + nx]


def _to_band(fine: np.ndarray, band: str) -> np.ndarray:
    """A 0.1" image on the band's pixels (NISP: 3x3 sums of the central 198x198)."""
    if band == "VIS":
        return fine
    n = SHAPE[band]
    return fine[1 : 1 + 3 * n, 1 : 1 + 3 * n].reshape(n, 3, n, 3).sum(axis=(1, 3))


def render(obj: dict, settings: Settings) -> tuple[dict[str, np.ndarray], dict[str, object], dict]:
    """Images per band (float32, in the set's units), the catalog row, and per-band header facts."""
    noise_rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(obj["id"], 1)))
    templates = [unit_template(c) for c in obj["components"]]
    lens, source = obj["lens"], obj["source"]
    lensed, magnification = lensed_source(lens, source) if lens else (None, 0.0)
    unit = settings.unit_factor()
    images, facts = {}, {}
    n_pix_source = 0
    for index, band in enumerate(BANDS):
        fine = np.zeros((SHAPE["VIS"], SHAPE["VIS"]))
        for component, template in zip(obj["components"], templates, strict=True):
            fine += settings.flux(component["mags"][band]) * template
        for x, y, mags in obj["stars"]:
            row, col = round(y / FINE_ARCSEC + 99.5), round(x / FINE_ARCSEC + 99.5)
            if 0 <= row < SHAPE["VIS"] and 0 <= col < SHAPE["VIS"]:
                fine[row, col] += settings.flux(mags[band])
        fwhm = PSF_FWHM_ARCSEC[band] * settings.psf_scale * math.exp(PSF_SCATTER * obj["psf_deviate"][index])
        transform = kernel_transform(moffat_kernel(band, fwhm), (SHAPE[band], SHAPE[band]))
        sigma = SKY_SIGMA[band] * settings.noise * unit
        if lensed is not None:
            source_flux = settings.flux(source["mags"][band]) * lensed
            if band == "VIS":
                n_pix_source = int(np.count_nonzero(convolve(source_flux, transform) > sigma))
            fine += source_flux
        clean = convolve(_to_band(fine, band), transform)
        variance = sigma**2 + settings.noise**2 * unit * SHOT_VARIANCE_PER_FLUX[band] * np.maximum(clean, 0.0)
        images[band] = (clean + np.sqrt(variance) * noise_rng.standard_normal(clean.shape)).astype(np.float32)
        facts[band] = {"fwhm": fwhm, "sigma": sigma}
    if lens:
        half_width = min(10.0, ray_window(lens, source) * FINE_ARCSEC)
        n_images = count_images(lens, (source["x"], source["y"]), half_width)
    else:
        n_images = 0
    row = {
        "ID": obj["id"],
        "n_source_im": n_images,
        "mag_eff": magnification,
        "n_pix_source": n_pix_source,
        "kind": obj["kind"],
        "theta_e": lens["theta_e"] if lens else math.nan,
        "z_lens": obj["z_lens"],
        "z_source": source["z"] if source else math.nan,
        "mag_lens": obj["components"][0]["mags"]["VIS"],
        "mag_source": source["mags"]["VIS"] if source else math.nan,
        "r_source": source["r"] if source else math.nan,
        "n_neighbours": obj["n_neighbours"],
        "psf_fwhm_vis": facts["VIS"]["fwhm"],
        "noise_vis": facts["VIS"]["sigma"],
    }
    return images, row, facts


# ---------------------------------------------------------------- files


def band_path(band: str, object_id: int) -> str:
    return f"Public/EUC_{band}/imageEUC_{band}-{object_id:0{ID_DIGITS}d}.fits"


def header_cards(obj: dict, band: str, facts: dict, settings: Settings) -> list[dict]:
    """fitsio header records: a TAN WCS in CD-matrix form, RA/DEC in degrees, units and PSF."""
    n, degrees = SHAPE[band], PIXEL_ARCSEC[band] / 3600.0
    zero_point = ZERO_POINT[settings.units]
    return [
        {"name": "CTYPE1", "value": "RA---TAN"},
        {"name": "CTYPE2", "value": "DEC--TAN"},
        {"name": "CRPIX1", "value": (n + 1) / 2.0},
        {"name": "CRPIX2", "value": (n + 1) / 2.0},
        {"name": "CRVAL1", "value": obj["ra"], "comment": "[deg]"},
        {"name": "CRVAL2", "value": obj["dec"], "comment": "[deg]"},
        {"name": "CD1_1", "value": -degrees},
        {"name": "CD1_2", "value": 0.0},
        {"name": "CD2_1", "value": 0.0},
        {"name": "CD2_2", "value": degrees},
        {"name": "CUNIT1", "value": "deg"},
        {"name": "CUNIT2", "value": "deg"},
        {"name": "RADESYS", "value": "ICRS"},
        {"name": "EQUINOX", "value": 2000.0},
        {"name": "RA", "value": obj["ra"], "comment": "[deg] object right ascension"},
        {"name": "DEC", "value": obj["dec"], "comment": "[deg] object declination"},
        {"name": "OBJECT", "value": str(obj["id"])},
        {"name": "FILTER", "value": band},
        {"name": "MAGZP", "value": zero_point, "comment": "AB magnitude of a pixel sum of 1"},
        {"name": "BUNIT", "value": settings.units},
        {"name": "SKYSIG", "value": float(np.float32(facts["sigma"])), "comment": "sky noise per pixel"},
        {"name": "PSFFWHM", "value": round(facts["fwhm"], 5), "comment": "[arcsec] Moffat FWHM"},
        {"name": "PSFBETA", "value": PSF_BETA[band]},
        {"name": "ORIGIN", "value": "othersim", "comment": "lenshunt bench/othersim.py"},
    ]


def simulate_ids(object_ids: list[int], out: str, settings: Settings) -> list[dict]:
    """Render and write the objects ``object_ids``; their catalog rows."""
    import fitsio

    rows = []
    for object_id in object_ids:
        obj = draw_object(object_id, settings)
        images, row, facts = render(obj, settings)
        for band in BANDS:
            path = Path(out) / band_path(band, object_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fitsio.write(
                str(path), images[band], header=header_cards(obj, band, facts[band], settings), clobber=True
            )
        rows.append(row)
    return rows


def _format(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_catalog(out: Path, rows: list[dict], settings: Settings, first_id: int) -> Path:
    path = out / CATALOG_NAME
    lines = [
        "# othersim: an independent Euclid-like simulation (lenshunt bench/othersim.py)",
        f"# seed={settings.seed} first_id={first_id} n_objects={len(rows)} noise={settings.noise:g} "
        f"psf_scale={settings.psf_scale:g} units={settings.units} lens_fraction={settings.lens_fraction:g}",
        f"# label rule: {LABEL_RULE}; pixel values in {settings.units}, AB zero point "
        f"{ZERO_POINT[settings.units]:g}",
        ",".join(COLUMNS),
    ]
    lines += [",".join(_format(row[c]) for c in COLUMNS) for row in sorted(rows, key=lambda r: r["ID"])]
    path.write_text("\n".join(lines) + "\n")
    return path


def is_lens(row: dict) -> bool:
    """The second challenge's rule, as the layout applies it."""
    return row["n_source_im"] > 0 and row["mag_eff"] > 1.6 and row["n_pix_source"] > 20


def simulate(out: Path, n: int, settings: Settings, first_id: int = 200000, jobs: int = 1) -> list[dict]:
    """Write ``n`` objects with ids ``first_id...`` and the catalog under ``out``; the rows."""
    if n <= 0 or first_id < 0 or len(str(first_id + n - 1)) > ID_DIGITS:
        raise ValueError(f"need n > 0 and ids of at most {ID_DIGITS} digits; got n={n}, first id {first_id}")
    out.mkdir(parents=True, exist_ok=True)
    if (out / CATALOG_NAME).exists():
        raise FileExistsError(f"{out / CATALOG_NAME} exists: simulate into a new directory")
    ids = list(range(first_id, first_id + n))
    chunks = [ids[i : i + 16] for i in range(0, n, 16)]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.starmap(simulate_ids, [(chunk, str(out), settings) for chunk in chunks])
    else:
        parts = [simulate_ids(chunk, str(out), settings) for chunk in chunks]
    rows = [row for part in parts for row in part]
    write_catalog(out, rows, settings, first_id)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.othersim", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="root of the set (euclid-sglc2 layout)")
    parser.add_argument("--n", type=int, required=True, help="number of objects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.0, help="factor on every band's noise")
    parser.add_argument("--psf-scale", type=float, default=1.0, help="factor on every band's PSF FWHM")
    parser.add_argument("--units", choices=sorted(ZERO_POINT), default="counts", help="pixel units")
    parser.add_argument("--first-id", type=int, default=200000)
    parser.add_argument("--lens-fraction", type=float, default=0.5, help="fraction drawn as lenses")
    parser.add_argument("--jobs", type=int, default=1, help="processes")
    args = parser.parse_args(argv)
    try:
        settings = Settings(args.seed, args.noise, args.psf_scale, args.units, args.lens_fraction)
        started = time.perf_counter()
        rows = simulate(args.out, args.n, settings, args.first_id, max(1, args.jobs))
    except (ValueError, FileExistsError) as exc:
        print(f"othersim: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    n_lenses = sum(is_lens(row) for row in rows)
    print(
        f"othersim: {len(rows)} objects ({n_lenses} lenses by the rule) in {args.out} "
        f"in {seconds:.1f} s ({len(rows) / seconds:.0f} objects/s, {args.jobs} job(s), pid {os.getpid()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
