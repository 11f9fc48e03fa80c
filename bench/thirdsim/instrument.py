"""Euclid-like instrument of thirdsim: bands, PSFs, pixel units, depth and noise.

Choices (all made for this simulator, per object varied a little):

- **Pixel units: ADU of a stacked frame.** Electrons are converted with a per-band gain
  (VIS 3.5 e-/ADU, NISP 2.0 e-/ADU) over the stack's exposure time (VIS 4 x 566 s, NISP 4 x 87.2 s
  per band: the Euclid wide-survey reference observing sequence, Scaramella et al. 2022, A&A 662,
  A112). Zero points in e-/s follow the instrument throughputs (VIS ~25.6 AB, NISP Y/J/H ~25.0/25.3
  /25.2; Cropper et al. 2016 SPIE 9904; Schirmer et al. 2022 A&A 662, A92); the header ``MAGZP`` is
  the AB magnitude of 1 ADU in the stack: ``ZP_e + 2.5 log10(t / gain)``.
- **PSF: broadband obscured Airy pattern + Gaussian + Moffat halo.** The telescope is a 1.2 m
  aperture with a 0.25 linear central obscuration; the diffraction pattern is averaged over each
  band's wavelength range (VIS 550-900 nm; Y 950-1210, J 1170-1570, H 1520-2020 nm), convolved
  with an elliptical Gaussian for pointing jitter, charge diffusion and detector cross-talk, and a
  4-6 % Moffat (beta 2.2-3) halo stands in for scattered light and ghosts. The resulting VIS FWHM is
  ~0.16-0.18" (Cropper et al. 2016 requirement < 0.18"), the NISP FWHM after pixel integration
  ~0.35-0.45" (Euclid Collaboration: Jahnke et al. 2024, NISP).
- **Depth.** VIS: 10 sigma for an extended source in a 1.3"-diameter aperture at 24.5 AB; NISP:
  5 sigma point-source depth 24.0 AB in Y, J and H (Euclid Red Book, Laureijs et al. 2011;
  Scaramella et al. 2022), each shifted per object by N(0, 0.15) mag (ecliptic latitude,
  dither count). The per-pixel noise implied by the depth is realised as Poisson noise of
  (background + source) electrons plus Gaussian read noise (VIS 4.5 e-, NISP 7 e- per exposure,
  added over 4 exposures); the background level absorbs zodiacal light, dark current, stray light
  and the noise of resampling, so it is an *effective* background.
- **Residual sky.** After subtracting the nominal background each image keeps a residual offset
  of U(-0.6, 0.6) pixel sigma plus a plane gradient of up to 0.3 sigma across the cutout.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special

TELESCOPE_DIAMETER_M = 1.2
OBSCURATION = 0.25


@dataclass(frozen=True)
class BandSpec:
    name: str
    instrument: str
    n_pix: int
    scale: float  # arcsec / pixel
    fine: int  # supersampling of the rendered scene
    box_fine: int  # supersampling of the lensed-source box (multiple of fine)
    wavelength_nm: tuple[float, float]
    zp_electron: float  # AB mag of 1 e-/s
    gain: float  # e- / ADU
    n_exp: int
    t_exp: float  # s per exposure
    read_noise: float  # e- per exposure
    jitter_sigma: float  # arcsec, Gaussian part of the PSF
    halo_fwhm: float  # arcsec, Moffat halo
    depth: float  # AB, meaning given by depth_kind
    depth_kind: str  # "extended10" or "point5"

    @property
    def t_total(self) -> float:
        return self.n_exp * self.t_exp

    @property
    def magzp(self) -> float:
        return self.zp_electron + 2.5 * np.log10(self.t_total / self.gain)


BANDS = (
    BandSpec(
        "VIS", "VIS", 200, 0.1, 2, 4, (550, 900), 25.58, 3.5, 4, 566.0, 4.5, 0.036, 0.9, 24.5, "extended10"
    ),
    BandSpec("Y", "NISP", 66, 0.3, 3, 6, (950, 1210), 25.04, 2.0, 4, 87.2, 7.0, 0.085, 1.4, 24.0, "point5"),
    BandSpec("J", "NISP", 66, 0.3, 3, 6, (1170, 1570), 25.26, 2.0, 4, 87.2, 7.0, 0.09, 1.5, 24.0, "point5"),
    BandSpec("H", "NISP", 66, 0.3, 3, 6, (1520, 2020), 25.21, 2.0, 4, 87.2, 7.0, 0.095, 1.6, 24.0, "point5"),
)
BAND_NAMES = tuple(b.name for b in BANDS)


@dataclass
class Observation:
    """Per-object instrument state of one band."""

    band: BandSpec
    psf_fine: np.ndarray  # kernel on the band's fine grid, sum 1
    fwhm: float  # arcsec, of the pixel-integrated PSF
    sigma_e: float  # background pixel noise, electrons in the stack
    background_e: float  # effective background, electrons per pixel in the stack
    sky_offset: float  # ADU
    sky_gradient: tuple[float, float]  # ADU per pixel in x, y
    depth: float

    @property
    def sigma_rate(self) -> float:
        """Background pixel noise in e-/s."""
        return self.sigma_e / self.band.t_total

    @property
    def sigma_adu(self) -> float:
        return self.sigma_e / self.band.gain


def _airy_broadband(r_arcsec: np.ndarray, wl_nm: tuple[float, float]) -> np.ndarray:
    """Obscured-aperture Airy intensity averaged over a flat band (9 wavelengths)."""
    out = np.zeros_like(r_arcsec)
    eps = OBSCURATION
    for wl in np.linspace(wl_nm[0], wl_nm[1], 9):
        k = np.pi * TELESCOPE_DIAMETER_M / (wl * 1e-9)
        x = k * r_arcsec * np.pi / (180 * 3600)
        x = np.where(x < 1e-8, 1e-8, x)
        amp = (2 * special.j1(x) / x - eps**2 * 2 * special.j1(eps * x) / (eps * x)) / (1 - eps**2)
        out += amp**2 * (wl_nm[0] / wl) ** 2  # flux per area falls as 1/lambda^2 for equal energy
    return out


@functools.lru_cache(maxsize=8)
def _airy_cached(name: str, fine_scale: float, half: int, over: int) -> np.ndarray:
    band = next(b for b in BANDS if b.name == name)
    n = (2 * half + 1) * over
    u = (np.arange(n) + 0.5) / over - (2 * half + 1) / 2
    xx, yy = np.meshgrid(u * fine_scale, u * fine_scale)
    airy = _airy_broadband(np.hypot(xx, yy), band.wavelength_nm)
    return airy / airy.sum()


def make_psf(band: BandSpec, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A PSF kernel sampled on the band's fine grid (odd size, sum 1) and its pixel-level FWHM."""
    fine_scale = band.scale / band.fine
    half = int(np.ceil((2.4 if band.name == "VIS" else 4.5) / fine_scale))
    over = 3
    n = (2 * half + 1) * over
    u = (np.arange(n) + 0.5) / over - (2 * half + 1) / 2
    xx, yy = np.meshgrid(u * fine_scale, u * fine_scale)
    r = np.hypot(xx, yy)
    airy = _airy_cached(band.name, fine_scale, half, over)
    # elliptical Gaussian (jitter + charge diffusion), varied per object
    sig = band.jitter_sigma * rng.uniform(0.85, 1.2)
    e = rng.uniform(0.0, 0.06)
    phi = rng.uniform(0, np.pi)
    c, s = np.cos(phi), np.sin(phi)
    xr, yr = c * xx + s * yy, -s * xx + c * yy
    gauss = np.exp(-0.5 * ((xr / (sig * (1 + e))) ** 2 + (yr / (sig * (1 - e))) ** 2))
    from scipy.signal import fftconvolve

    core = fftconvolve(airy, gauss / gauss.sum(), mode="same")
    core = np.clip(core, 0, None)
    core /= core.sum()
    beta = rng.uniform(2.2, 3.0)
    alpha = band.halo_fwhm * rng.uniform(0.9, 1.2) / (2 * np.sqrt(2 ** (1 / beta) - 1))
    halo = (1 + (r / alpha) ** 2) ** (-beta)
    halo /= halo.sum()
    f_halo = rng.uniform(0.04, 0.06)
    psf = (1 - f_halo) * core + f_halo * halo
    kernel = psf.reshape(2 * half + 1, over, 2 * half + 1, over).sum(axis=(1, 3))
    kernel /= kernel.sum()
    return kernel, _pixel_fwhm(kernel, band)


def _pixel_fwhm(kernel: np.ndarray, band: BandSpec) -> float:
    """FWHM (arcsec) of the kernel integrated over the native pixel: 2 sqrt(area above half max / pi)."""
    f = band.fine
    n = kernel.shape[0]
    pad = (-n) % f
    k = np.pad(kernel, ((0, pad), (0, pad)))
    # box-filter with the native pixel (running sum over f fine pixels), evaluated on the fine grid
    from scipy.ndimage import uniform_filter

    pix = uniform_filter(k, size=f, mode="constant")
    area = (pix >= 0.5 * pix.max()).sum() * (band.scale / f) ** 2
    return float(2 * np.sqrt(area / np.pi))


def noise_equivalent_pixels(kernel: np.ndarray, band: BandSpec) -> float:
    """1 / sum(p^2) of the pixel-integrated PSF in native pixels, averaged over sub-pixel phase."""
    from scipy.ndimage import uniform_filter

    f = band.fine
    pix = uniform_filter(np.pad(kernel, f), size=f, mode="constant") * f**2
    return float(f**2 / np.sum(pix**2))


def observe(band: BandSpec, rng: np.random.Generator) -> Observation:
    """Draw the per-object PSF, depth and residual sky of one band."""
    psf, fwhm = make_psf(band, rng)
    depth = band.depth + rng.normal(0.0, 0.15)
    flux_e = 10 ** (-0.4 * (depth - band.zp_electron)) * band.t_total
    if band.depth_kind == "extended10":
        n_ap = np.pi * (0.65 / band.scale) ** 2
        sigma_e = flux_e / 10 / np.sqrt(n_ap)
    else:
        sigma_e = flux_e / 5 / np.sqrt(noise_equivalent_pixels(psf, band))
    rn2 = band.n_exp * band.read_noise**2
    background_e = max(sigma_e**2 - rn2, 0.2 * sigma_e**2)
    sigma_e = float(np.sqrt(background_e + rn2))
    sigma_adu = sigma_e / band.gain
    offset = rng.uniform(-0.6, 0.6) * sigma_adu
    grad = rng.normal(0, 0.3 * sigma_adu / band.n_pix, size=2) / np.sqrt(2)
    return Observation(band, psf, fwhm, sigma_e, float(background_e), float(offset), tuple(grad), depth)


def add_noise(rate_image: np.ndarray, obs: Observation, rng: np.random.Generator) -> np.ndarray:
    """Noiseless e-/s image -> background-subtracted ADU image with Poisson + read noise + residual sky."""
    band = obs.band
    electrons = np.clip(rate_image, 0, None) * band.t_total + obs.background_e
    counts = rng.poisson(electrons).astype(np.float64)
    counts += rng.normal(0.0, np.sqrt(band.n_exp) * band.read_noise, size=counts.shape)
    adu = (counts - obs.background_e) / band.gain
    n = band.n_pix
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    adu += obs.sky_offset + obs.sky_gradient[0] * xx + obs.sky_gradient[1] * yy
    return adu.astype(np.float32)


def rate_from_mag(mag: float, band: BandSpec) -> float:
    """e-/s of an AB magnitude."""
    return float(10 ** (-0.4 * (mag - band.zp_electron)))
