"""Moffat PSFs, FFT convolution, resampling to the NISP pixels, noise: one object's images and
catalog row."""

from __future__ import annotations

import math

import numpy as np

from bench.othersim.lensing import count_images, lensed_source, ray_window
from bench.othersim.profiles import unit_template
from bench.othersim.settings import (
    BANDS,
    FINE_ARCSEC,
    PIXEL_ARCSEC,
    PSF_BETA,
    PSF_FWHM_ARCSEC,
    PSF_SCATTER,
    SHAPE,
    SHOT_VARIANCE_PER_FLUX,
    SKY_SIGMA,
    Settings,
)


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
