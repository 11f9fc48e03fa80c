"""Lensing physics with lenstronomy: SIE + external shear deflections, lensed source light,
lens-galaxy light, image multiplicity, the critical region, and masses from the Einstein radius.

lenstronomy and astropy are imported inside the functions (and the model objects cached per
process), so ``import pipeline`` stays fast. Surface brightnesses are for unit total flux.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.simulate.draws import MassDraw, SersicDraw, SourceDraw
from pipeline.simulate.instrument import Grid

LENS_MODELS = ("SIE", "SHEAR")
COSMOLOGY = {"H0": 70.0, "Om0": 0.3}
_SPEED_OF_LIGHT_KM_S = 299792.458
_G_MPC_KM2_S2_MSUN = 4.30091e-9
_SUN_ABS_MAG = 4.65
_MASS_TO_LIGHT = 3.0
_IMAGE_MAGNIFICATION_FLOOR = 0.1
_SEARCH_GRID_OFFSET = (0.0031, 0.0021)


@lru_cache(maxsize=1)
def _lens_model():
    from lenstronomy.LensModel.lens_model import LensModel

    return LensModel(list(LENS_MODELS))


@lru_cache(maxsize=1)
def _solver():
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver

    return LensEquationSolver(_lens_model())


@lru_cache(maxsize=4)
def _light_model(profile: str):
    from lenstronomy.LightModel.light_model import LightModel

    return LightModel([profile])


@lru_cache(maxsize=1)
def _cosmology():
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(**COSMOLOGY)


def lens_kwargs(mass: MassDraw) -> list[dict[str, float]]:
    """lenstronomy keyword arguments of the SIE and the shear."""
    from lenstronomy.Util.param_util import phi_q2_ellipticity, shear_polar2cartesian

    e1, e2 = phi_q2_ellipticity(mass.phi, mass.q)
    gamma1, gamma2 = shear_polar2cartesian(mass.phi_ext, mass.gamma_ext)
    return [
        {"theta_E": mass.theta_e, "e1": e1, "e2": e2, "center_x": mass.x, "center_y": mass.y},
        {"gamma1": gamma1, "gamma2": gamma2, "ra_0": 0.0, "dec_0": 0.0},
    ]


def _sersic_kwargs(draw: SersicDraw) -> dict[str, float]:
    """SERSIC_ELLIPSE keyword arguments for unit total flux."""
    from lenstronomy.Util.param_util import phi_q2_ellipticity

    e1, e2 = phi_q2_ellipticity(draw.phi, draw.q)
    kwargs = {
        "R_sersic": draw.r_eff,
        "n_sersic": draw.n,
        "e1": e1,
        "e2": e2,
        "center_x": draw.x,
        "center_y": draw.y,
    }
    norm = _light_model("SERSIC_ELLIPSE").total_flux([kwargs], norm=True)[0]
    return {"amp": 1.0 / norm, **kwargs}


def ray_shoot(grid: Grid, mass: MassDraw) -> tuple[np.ndarray, np.ndarray]:
    """Source-plane positions of the grid's sub-pixels (flattened)."""
    x, y = grid.sub_coordinates()
    return _lens_model().ray_shooting(x.ravel(), y.ravel(), lens_kwargs(mass))


def source_sb(bx: np.ndarray, by: np.ndarray, source: SourceDraw) -> tuple[np.ndarray, np.ndarray | None]:
    """Unit-flux surface brightness of the smooth source and of its clumps at (bx, by).

    Only points near the source are evaluated; the rest stay 0.
    """
    smooth = source.smooth
    x0, y0 = smooth.x, smooth.y
    reach = 10.0 * smooth.r_eff / math.sqrt(smooth.q)
    if source.clumps:
        reach = max(reach, *(math.hypot(c.dx, c.dy) + 6.0 * c.sigma for c in source.clumps))
    near = np.flatnonzero((bx - x0) ** 2 + (by - y0) ** 2 < reach * reach)
    smooth_sb = np.zeros(bx.shape)
    smooth_sb[near] = _light_model("SERSIC_ELLIPSE").surface_brightness(
        bx[near], by[near], [_sersic_kwargs(smooth)]
    )
    if not source.clumps:
        return smooth_sb, None
    clump_sb = np.zeros(bx.shape)
    gaussian = _light_model("GAUSSIAN")
    for clump in source.clumps:
        kwargs = {
            "amp": clump.fraction,
            "sigma": clump.sigma,
            "center_x": x0 + clump.dx,
            "center_y": y0 + clump.dy,
        }
        clump_sb[near] += gaussian.surface_brightness(bx[near], by[near], [kwargs])
    return smooth_sb, clump_sb


def lensed_source_templates(
    grid: Grid, rays: tuple[np.ndarray, np.ndarray], source: SourceDraw
) -> tuple[np.ndarray, np.ndarray | None]:
    """Binned lensed-source templates (smooth, clumps); each sums to its part's magnification."""
    smooth_sb, clump_sb = source_sb(rays[0], rays[1], source)
    shape = (grid.shape[0] * grid.supersample, grid.shape[1] * grid.supersample)
    smooth = grid.bin(smooth_sb.reshape(shape))
    clumps = None if clump_sb is None else grid.bin(clump_sb.reshape(shape))
    return smooth, clumps


def unlensed_source_sums(grid: Grid, source: SourceDraw) -> tuple[float, float]:
    """Flux of the unlensed smooth source and clumps sampled on ``grid`` (about 1 each)."""
    x, y = grid.sub_coordinates()
    smooth_sb, clump_sb = source_sb(x.ravel(), y.ravel(), source)
    area = grid.sub_scale_arcsec**2
    return float(smooth_sb.sum() * area), float(clump_sb.sum() * area) if clump_sb is not None else 0.0


@dataclass(frozen=True)
class Images:
    """Images of the source centre inside the field."""

    x: np.ndarray
    y: np.ndarray
    magnification: np.ndarray


def solve_images(mass: MassDraw, source: SourceDraw, half_width_arcsec: float) -> Images:
    """Solve the lens equation for the source centre (lenstronomy's solver); drop the central
    demagnified solution and images outside the field."""
    kwargs = lens_kwargs(mass)
    offset = math.hypot(source.smooth.x - mass.x, source.smooth.y - mass.y)
    window = 2.0 * (offset + 1.5 * mass.theta_e + 0.5)
    x_img, y_img = _solver().image_position_from_source(
        source.smooth.x,
        source.smooth.y,
        kwargs,
        solver="lenstronomy",
        search_window=window,
        min_distance=min(0.05, mass.theta_e / 20.0),
        precision_limit=1e-10,
        num_iter_max=100,
        arrival_time_sort=False,
        # an off-centre search grid: sources on a grid symmetry line otherwise lose their images
        x_center=mass.x + _SEARCH_GRID_OFFSET[0],
        y_center=mass.y + _SEARCH_GRID_OFFSET[1],
    )
    x_img, y_img = np.asarray(x_img, dtype=float), np.asarray(y_img, dtype=float)
    magnification = np.asarray(_lens_model().magnification(x_img, y_img, kwargs), dtype=float).reshape(-1)
    keep = (
        (np.abs(magnification) >= _IMAGE_MAGNIFICATION_FLOOR)
        & (np.abs(x_img) <= half_width_arcsec)
        & (np.abs(y_img) <= half_width_arcsec)
    )
    return Images(x_img[keep], y_img[keep], magnification[keep])


@dataclass(frozen=True)
class CriticalRegion:
    """The region inside the tangential critical curve (where det A < 0)."""

    n_curves: int
    area_arcsec2: float
    x: float
    y: float


def critical_region(mass: MassDraw) -> CriticalRegion:
    """Number of regions, area and centroid of the det A < 0 region, from the Hessian on a grid."""
    from scipy import ndimage

    step = max(mass.theta_e / 25.0, 0.01)
    half = 2.0 * mass.theta_e + 0.2
    axis = np.arange(-half, half + step / 2, step)
    x, y = np.meshgrid(axis + mass.x, axis + mass.y)
    f_xx, f_xy, f_yx, f_yy = _lens_model().hessian(x.ravel(), y.ravel(), lens_kwargs(mass))
    inside = ((1.0 - f_xx) * (1.0 - f_yy) - f_xy * f_yx < 0).reshape(x.shape)
    _, n_curves = ndimage.label(inside)
    count = int(inside.sum())
    if count == 0:
        return CriticalRegion(0, 0.0, mass.x, mass.y)
    return CriticalRegion(
        int(n_curves), count * step * step, float(x[inside].mean()), float(y[inside].mean())
    )


def velocity_dispersion_km_s(theta_e_arcsec: float, z_lens: float, z_source: float) -> float:
    """Singular isothermal sphere velocity dispersion giving ``theta_e`` for these redshifts."""
    cosmo = _cosmology()
    d_s = cosmo.angular_diameter_distance(z_source).value
    d_ds = cosmo.angular_diameter_distance(z_lens, z_source).value
    theta = math.radians(theta_e_arcsec / 3600.0)
    return _SPEED_OF_LIGHT_KM_S * math.sqrt(theta * d_s / (4.0 * math.pi * d_ds))


def halo_mass_msun(sigma_km_s: float, z_lens: float) -> float:
    """M200 of a singular isothermal sphere: 2 sigma^3 / (sqrt(50) G H(z))."""
    hubble = _cosmology().H(z_lens).value  # km/s/Mpc
    return 2.0 * sigma_km_s**3 / (math.sqrt(50.0) * _G_MPC_KM2_S2_MSUN * hubble)


def stellar_mass_msun(apparent_mag: float, z: float) -> float:
    """Rough stellar mass from the reference-band luminosity (M/L = 3, no K-correction)."""
    absolute = apparent_mag - float(_cosmology().distmod(z).value)
    return _MASS_TO_LIGHT * 10.0 ** (-0.4 * (absolute - _SUN_ABS_MAG))
