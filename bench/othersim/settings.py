"""Fixed facts of the othersim instrument and layout, and the per-set :class:`Settings`."""

from __future__ import annotations

from dataclasses import dataclass

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
