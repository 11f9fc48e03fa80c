"""Observation effects: PSF kernels and convolution, sky and shot noise, sky offset and pixel units,
masked regions."""

from __future__ import annotations

import math

import numpy as np

from pipeline.simulate.domain import BandDomain
from pipeline.simulate.draws import MaskDraw
from pipeline.simulate.instrument import BandModel, Grid

_KERNEL_SUPERSAMPLE = 5


def psf_fwhm(model: BandModel, deviate: float) -> float:
    """This object's PSF FWHM: the band's median times a log-normal deviate."""
    return model.psf_fwhm_arcsec * math.exp(model.fwhm_scatter * deviate)


def psf_kernel(model: BandModel, fwhm_arcsec: float) -> np.ndarray:
    """Normalised PSF kernel on the band's pixels (odd size; pixel-integrated by supersampling)."""
    scale = model.pixel_scale_arcsec
    reach = (3.0 if model.psf_profile == "gaussian" else 5.0) * fwhm_arcsec
    half = int(min(math.ceil(reach / scale), max(1, (min(model.shape) - 1) // 2)))
    s = _KERNEL_SUPERSAMPLE
    axis = (np.arange((2 * half + 1) * s) + 0.5) / s * scale - (half + 0.5) * scale
    x, y = np.meshgrid(axis, axis)
    r2 = x * x + y * y
    if model.psf_profile == "gaussian":
        sigma = fwhm_arcsec / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        profile = np.exp(-0.5 * r2 / sigma**2)
    else:
        beta = model.moffat_beta
        alpha = fwhm_arcsec / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
        profile = (1.0 + r2 / alpha**2) ** -beta
    n = 2 * half + 1
    kernel = profile.reshape(n, s, n, s).sum(axis=(1, 3))
    return kernel / kernel.sum()


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-size convolution (FFT), zero outside the image."""
    from scipy.signal import fftconvolve

    return fftconvolve(image, kernel, mode="same")


def add_noise(
    image: np.ndarray, model: BandModel, rng: np.random.Generator, noise_scale: float = 1.0
) -> np.ndarray:
    """Image plus Gaussian sky noise and Gaussian-approximated shot noise of the object light.

    ``noise_scale`` multiplies the sky sigma and the shot-noise variance per unit flux (which the
    band model ties to the sky sigma); the deviates drawn are the same whatever the scale.
    """
    variance = (model.noise_sigma * noise_scale) ** 2 + model.poisson_scale * noise_scale * np.maximum(
        image, 0.0
    )
    return image + np.sqrt(variance) * rng.standard_normal(image.shape)


def observe(image: np.ndarray, model: BandModel, observed: BandDomain) -> np.ndarray:
    """A noisy flux image in the object's pixel units: plus its sky offset, times its flux scale.

    The offset is ``sky_offset`` times the band's scaled sky sigma; identity operations are
    skipped, so the standard instrument leaves the pixels bit for bit as they were.
    """
    if observed.sky_offset != 0.0:
        image = image + observed.sky_offset * model.noise_sigma * observed.noise_scale
    if observed.flux_scale != 1.0:
        image = image * observed.flux_scale
    return image


def mask_pixels(grid: Grid, mask: MaskDraw) -> np.ndarray:
    """Boolean pixel mask of one masked region on ``grid``."""
    x, y = grid.pixel_coordinates()
    if mask.kind == "circle":
        return (x - mask.x) ** 2 + (y - mask.y) ** 2 <= mask.size**2
    coordinate = y if mask.horizontal else x
    return np.abs(coordinate - (mask.y if mask.horizontal else mask.x)) <= 0.5 * mask.size
