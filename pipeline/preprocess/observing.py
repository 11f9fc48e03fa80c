"""Augmentations that change how a cutout was observed, not what it shows: noise, PSF, units, sky, pointing.

A simulator draws one instrument per training set; a survey that is deeper, blurrier or in other
units is a shift the model never saw. These augmentations, applied to raw store pixels before the
recipe, cost nothing to simulate and widen the training domain per object. A fraction
``probability`` of the objects (half by default) is observed anew, the rest is kept as stored, so
the model also sees the training set's own conditions:

- **extra noise**: Gaussian noise that raises the cutout's own noise by a factor drawn
  log-uniformly in ``[1, noise_factor_max]`` per band (the noise is measured on the cutout,
  :func:`~pipeline.preprocess.robust.cutout_statistics`);
- **extra blur**: a Gaussian of FWHM drawn uniformly in ``[0, blur_fwhm_max_px]`` pixels of each
  group's own grid (added in quadrature: 1.5 pixels widen a 2-pixel PSF by 25 %);
- **shift** of the whole object, uniform in ``[-shift_max_px, shift_max_px]`` pixels of the finest
  grid in x and y, the same on the sky for every group (3 px, 0.3" on VIS: cutouts are seldom centred
  better than that, and training with 0.05" lost 0.03-0.08 AUROC at 0.3" off-centre where 0.3" lost
  0.004-0.05 and nothing centred; bench/RESULTS.md, "shifts in training");
- **flux rescaling**: one factor per object, log-uniform over ``+-flux_scale_dex`` decades, times a
  per-band colour jitter of ``+-colour_jitter`` (relative);
- **sky offset**: a constant per band, uniform in ``+-sky_offset_sigma`` times the cutout's noise.

Blur and shift are one multiplication in Fourier space, so edges are periodic: what a shift moves
out of one border comes back at the opposite one, up to 3 px wide. That is sky for most cutouts;
a neighbour cut by the border reappears on the other side. Invalid pixels (NaN, masked) are filled
with the cutout's median for the transform and stay invalid afterwards; the shift carries that
noise-free fill up to 3 px into the valid pixels beside a masked region (sglc1-ground's masked
columns, for instance). The augmentations run on NumPy or CuPy arrays (the namespace of the input).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> groups = {"vis": rng.normal(size=(2, 1, 32, 32)).astype(np.float32)}
>>> out = augment_observing(groups, rng, ObservingAugment())
>>> out["vis"].shape, out["vis"].dtype.name
((2, 1, 32, 32), 'float32')
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.preprocess.arrays import Array, array_namespace, invalid_pixels
from pipeline.preprocess.robust import cutout_statistics

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


class ObservingAugment(BaseModel):
    """Ranges of the observing augmentations (module docstring); zeros or ones switch one off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probability: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Fraction of objects observed anew (the rest as stored)."
    )
    noise_factor_max: float = Field(default=2.0, ge=1.0, description="Noise raised by up to this factor.")
    blur_fwhm_max_px: float = Field(default=1.5, ge=0.0, description="Extra Gaussian blur FWHM, pixels.")
    shift_max_px: float = Field(default=3.0, ge=0.0, description="Shift, finest-grid pixels.")
    flux_scale_dex: float = Field(default=1.0, ge=0.0, description="Flux rescaling, +- decades.")
    colour_jitter: float = Field(default=0.1, ge=0.0, lt=1.0, description="Per-band relative flux jitter.")
    sky_offset_sigma: float = Field(default=1.0, ge=0.0, description="Sky offset, +- cutout noise sigma.")

    @property
    def active(self) -> bool:
        """Whether any augmentation changes pixels."""
        return self.probability > 0.0 and (
            self.noise_factor_max > 1.0
            or self.blur_fwhm_max_px > 0.0
            or self.shift_max_px > 0.0
            or self.flux_scale_dex > 0.0
            or self.colour_jitter > 0.0
            or self.sky_offset_sigma > 0.0
        )


def _fourier_blur_shift(images: Array, sigma_px: np.ndarray, shift_yx: np.ndarray) -> Array:
    """Images ``(n, band, y, x)`` convolved with a Gaussian of ``sigma_px`` (n,) and shifted by (n, 2) px.

    The transfer function is separable, ``H = h_y(f_y) h_x(f_x)`` with
    ``h(f) = exp(-2 pi^2 sigma^2 f^2 - 2 pi i f d)``, so it is applied as two 1-D factors.
    """
    xp = array_namespace(images)
    n_y, n_x = images.shape[-2:]

    def factor(freq: np.ndarray, shift: np.ndarray) -> Array:
        phase = -2.0 * np.pi**2 * sigma_px[:, None] ** 2 * freq**2 - 2j * np.pi * freq * shift[:, None]
        return xp.asarray(np.exp(phase).astype(np.complex64))

    h_y = factor(np.fft.fftfreq(n_y), shift_yx[:, 0])[:, None, :, None]
    h_x = factor(np.fft.rfftfreq(n_x), shift_yx[:, 1])[:, None, None, :]
    fft = _fft_module(xp)
    spectrum = fft.rfft2(images, axes=(-2, -1))
    spectrum *= h_y
    spectrum *= h_x
    return fft.irfft2(spectrum, s=(n_y, n_x), axes=(-2, -1)).astype(xp.float32, copy=False)


def _fft_module(xp):
    """``scipy.fft`` for NumPy arrays (float32, 7x faster than numpy.fft here), else ``xp.fft``."""
    if xp is np:
        import scipy.fft

        return scipy.fft
    return xp.fft


def augment_observing(
    groups: Mapping[str, Array],
    rng: np.random.Generator,
    settings: ObservingAugment,
    *,
    masked_value: float | None = None,
) -> dict[str, Array]:
    """Raw store images with randomly changed noise, PSF, pointing, units and sky (module docstring).

    Parameters
    ----------
    groups : mapping of str to array, each (n, band, y, x)
        Store groups of one batch (any units); all groups cover the same field (as the challenge
        layouts' groups do), so a shift is the same on the sky for each.
    rng : numpy.random.Generator
        Source of every draw (the same generator state gives the same result).
    settings : ObservingAugment
        The ranges.
    masked_value : float, optional
        The layout's masked-pixel value; such pixels and non-finite ones stay invalid (NaN).

    Returns
    -------
    dict of str to float32 array
        Same keys and shapes; invalid pixels come back as NaN.
    """
    if not groups:
        return {}
    n = next(iter(groups.values())).shape[0]
    finest_x = max(images.shape[-1] for images in groups.values())
    chosen = (rng.random(n) < settings.probability).astype(np.float64)  # objects that get new conditions
    shift_finest = rng.uniform(-settings.shift_max_px, settings.shift_max_px, size=(n, 2)) * chosen[:, None]
    log_flux = rng.uniform(-settings.flux_scale_dex, settings.flux_scale_dex, size=n) * chosen
    out = {}
    for name, raw in groups.items():
        xp = array_namespace(raw)
        images = xp.asarray(raw, dtype=xp.float32)
        n_band = images.shape[1]
        invalid = invalid_pixels(images, masked_value)
        median, sigma = cutout_statistics(images, invalid)
        sigma = xp.where(xp.isfinite(sigma), sigma, xp.float32(0.0))
        images = xp.where(invalid, median[..., None, None], images)
        blur_sigma = rng.uniform(0.0, settings.blur_fwhm_max_px, size=n) / FWHM_PER_SIGMA * chosen
        shift = shift_finest * (images.shape[-1] / finest_x)
        if settings.blur_fwhm_max_px > 0 or settings.shift_max_px > 0:
            images = _fourier_blur_shift(images, blur_sigma, shift)
        log_noise = rng.uniform(0.0, math.log(settings.noise_factor_max), size=(n, n_band))
        noise_factor = np.exp(log_noise * chosen[:, None])
        extra_sigma = sigma * xp.asarray(np.sqrt(noise_factor**2 - 1.0), dtype=xp.float32)
        offset = xp.asarray(rng.uniform(-1.0, 1.0, size=(n, n_band)) * chosen[:, None], dtype=xp.float32)
        jitter = rng.uniform(-settings.colour_jitter, settings.colour_jitter, size=(n, n_band))
        colour = 1.0 + jitter * chosen[:, None]
        scale = xp.asarray(10.0 ** log_flux[:, None] * colour, dtype=xp.float32)
        noise = xp.asarray(rng.standard_normal(images.shape, dtype=np.float32))
        noise *= extra_sigma[..., None, None]
        images += noise  # images is a fresh array here (where / transform above)
        images += (offset * settings.sky_offset_sigma * sigma)[..., None, None]
        images *= scale[..., None, None]
        images[invalid] = xp.float32(xp.nan)
        out[name] = images
    return out
