"""Per-band observing models (PSF, depth, sampling) and the pixel grids images are rendered on.

Defaults are derived from the layout alone, never from its name: a layout whose finest pixel is
at most 0.12" is taken as space-based (diffraction-limited PSF that grows with wavelength and is
at least 1.3 pixels wide; Gaussian core), otherwise as ground-based (Moffat seeing of about
0.75" that varies from object to object). Depths are 1-sigma surface-brightness limits in a
1"x1" box; the optical defaults reproduce the noise of the real first-challenge cutouts.

Examples
--------
>>> from schemas.layout import load_layout
>>> models = default_band_models(load_layout("euclid-sglc2"))
>>> round(models["VIS"].psf_fwhm_arcsec, 2), models["VIS"].supersample
(0.17, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from pipeline.simulate.config import MAG_ZERO_POINT, SimulationError
from schemas.layout import Layout, LayoutArg, as_layout

SPACE_MAX_PIXEL_ARCSEC = 0.12
REFERENCE_WAVELENGTH_NM = 700.0
_SUBPIXEL_TARGET_ARCSEC = 0.05
_MAX_SUPERSAMPLE = 3


@dataclass(frozen=True)
class BandModel:
    """How one band is observed.

    Parameters
    ----------
    name
        Band name in the layout.
    wavelength_nm
        Effective wavelength, for colours (the layout's, else 700 nm).
    psf_fwhm_arcsec
        Median PSF full width at half maximum.
    psf_profile
        ``"gaussian"`` or ``"moffat"``.
    moffat_beta
        Moffat power index (ignored for Gaussian PSFs).
    fwhm_scatter
        Log-normal scatter of the FWHM from object to object (seeing variation).
    depth_mag_arcsec2
        1-sigma sky noise in a 1"x1" box, in AB mag; the per-pixel sigma follows from it.
    poisson_fraction
        Object Poisson variance per unit flux, as a fraction of the per-pixel sky sigma.
    supersample
        Sub-pixels per pixel side used when rendering.
    """

    name: str
    wavelength_nm: float
    pixel_scale_arcsec: float
    shape: tuple[int, int]
    psf_fwhm_arcsec: float
    psf_profile: Literal["gaussian", "moffat"] = "gaussian"
    moffat_beta: float = 3.0
    fwhm_scatter: float = 0.05
    depth_mag_arcsec2: float = 27.7
    poisson_fraction: float = 1.0 / 30.0
    supersample: int = 2

    @property
    def noise_sigma(self) -> float:
        """Per-pixel sky noise in pixel units (flux, zero point 0)."""
        return 10.0 ** (-0.4 * (self.depth_mag_arcsec2 - MAG_ZERO_POINT)) * self.pixel_scale_arcsec

    @property
    def poisson_scale(self) -> float:
        """Object shot-noise variance per unit of pixel flux."""
        return self.noise_sigma * self.poisson_fraction


def is_space_like(layout: Layout) -> bool:
    """Whether the layout looks space-based (its finest pixel is at most 0.12")."""
    return min(band.pixel_scale_arcsec for band in layout.bands) <= SPACE_MAX_PIXEL_ARCSEC


def default_band_models(layout: LayoutArg) -> dict[str, BandModel]:
    """Band models for every band of ``layout``, from its pixel scales and wavelengths."""
    layout = as_layout(layout, "default_band_models")
    space = is_space_like(layout)
    models: dict[str, BandModel] = {}
    for band in layout.bands:
        wavelength = band.wavelength_nm or REFERENCE_WAVELENGTH_NM
        scale = band.pixel_scale_arcsec
        supersample = int(min(_MAX_SUPERSAMPLE, max(1, math.ceil(scale / _SUBPIXEL_TARGET_ARCSEC - 1e-9))))
        if space:
            fwhm = max(0.17 * wavelength / 715.0, 1.3 * scale)
            models[band.name] = BandModel(
                name=band.name,
                wavelength_nm=wavelength,
                pixel_scale_arcsec=scale,
                shape=band.shape,
                psf_fwhm_arcsec=fwhm,
                psf_profile="gaussian",
                fwhm_scatter=0.05,
                depth_mag_arcsec2=27.7 if wavelength < 1000.0 else 27.0,
                supersample=supersample,
            )
        else:
            fwhm = 0.75 * (wavelength / 620.0) ** -0.2
            models[band.name] = BandModel(
                name=band.name,
                wavelength_nm=wavelength,
                pixel_scale_arcsec=scale,
                shape=band.shape,
                psf_fwhm_arcsec=fwhm,
                psf_profile="moffat",
                moffat_beta=3.0,
                fwhm_scatter=0.12,
                depth_mag_arcsec2=27.7 if 400.0 < wavelength < 700.0 else 27.1,
                supersample=supersample,
            )
    return models


def check_band_models(layout: Layout, models: dict[str, BandModel]) -> None:
    """Raise :class:`SimulationError` unless ``models`` covers the layout's bands consistently."""
    missing = [name for name in layout.band_names if name not in models]
    if missing:
        raise SimulationError(
            f"band models lack bands {missing} of layout {layout.name!r}; start from "
            "default_band_models(layout) and replace the entries to change"
        )
    for band in layout.bands:
        model = models[band.name]
        if tuple(model.shape) != tuple(band.shape) or model.pixel_scale_arcsec != band.pixel_scale_arcsec:
            raise SimulationError(
                f'band model {band.name!r} has shape {model.shape} at {model.pixel_scale_arcsec}"/px but the '
                f"layout says {band.shape} at {band.pixel_scale_arcsec}\"/px; keep the layout's values"
            )
        if model.supersample < 1 or model.psf_fwhm_arcsec <= 0:
            raise SimulationError(f"band model {band.name!r} needs supersample >= 1 and a positive PSF FWHM")


@dataclass(frozen=True)
class Grid:
    """A pixel grid centred on the object, with square sub-pixels for rendering.

    Coordinates are arcseconds from the image centre: ``x`` along columns, ``y`` along rows.
    """

    shape: tuple[int, int]
    pixel_scale_arcsec: float
    supersample: int

    @property
    def sub_scale_arcsec(self) -> float:
        return self.pixel_scale_arcsec / self.supersample

    @property
    def half_width_arcsec(self) -> float:
        return 0.5 * max(self.shape) * self.pixel_scale_arcsec

    def sub_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Sub-pixel centre coordinates (x, y), each of shape ``shape * supersample`` (read-only)."""
        return _sub_coordinates(self.shape, self.pixel_scale_arcsec, self.supersample)

    def pixel_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centre coordinates (x, y), each of shape ``shape`` (read-only)."""
        return _sub_coordinates(self.shape, self.pixel_scale_arcsec, 1)

    def bin(self, surface_brightness: np.ndarray) -> np.ndarray:
        """Flux per pixel from a sub-pixel surface brightness map (flux per arcsec^2)."""
        s = self.supersample
        blocks = surface_brightness[0::s, 0::s].copy()
        for i in range(s):  # strided slices: an order of magnitude faster than reshape + sum
            for j in range(s):
                if i or j:
                    blocks += surface_brightness[i::s, j::s]
        return blocks * self.sub_scale_arcsec**2


@lru_cache(maxsize=16)
def _sub_coordinates(shape: tuple[int, int], scale: float, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    cols = ((np.arange(nx * supersample) + 0.5) / supersample - 0.5 - (nx - 1) / 2.0) * scale
    rows = ((np.arange(ny * supersample) + 0.5) / supersample - 0.5 - (ny - 1) / 2.0) * scale
    x, y = np.meshgrid(cols, rows)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def grids_for(layout: Layout, models: dict[str, BandModel]) -> dict[str, Grid]:
    """One grid per store group of the layout (bands of a group share shape and scale)."""
    grids: dict[str, Grid] = {}
    for group, members in layout.groups.items():
        supersample = max(models[name].supersample for name in members)
        grids[group] = Grid(layout.group_shape(group), layout.group_pixel_scale(group), supersample)
    return grids
