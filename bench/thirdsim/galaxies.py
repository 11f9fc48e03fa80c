"""Building blocks of the thirdsim populations: distances, sampling laws, galaxies and stars.

- Distances: Planck 2018 flat LCDM (astropy ``Planck18``), tabulated on 0-6 for fast lookups.
- Velocity dispersion: the SDSS early-type velocity dispersion function of Choi, Park & Vogeley
  (2007, ApJ 658, 884): phi(s) ~ (s/s*)^alpha exp(-(s/s*)^beta) / s with s* = 161 km/s,
  alpha = 2.32, beta = 2.67, weighted by the lensing cross-section (~ s^4), 170-380 km/s.
- Redshifts: lens-like p(z) ~ z^2 exp(-(z/0.32)^1.4) on 0.12-1.0; source
  p(z) ~ z^2 exp(-z/0.65) on [z_l + 0.3, 4.5] (median ~2, cf. Collett 2015, ApJ 811, 20).
- Axis ratios: q = lo + (hi - lo) Beta(2.6, 1.6).
- Early types: bulge (Sersic n 3.2-5.5) + envelope (Sersic n 0.8-1.6, 2.2-3.5x larger), bulge
  fraction 0.45-0.75; stellar mass from log s = 2.19 + 0.29 (log M* - 10.7) + N(0, 0.03) (a
  Faber-Jackson-like mass-sigma relation in the spirit of Zahid et al. 2016, ApJ 832, 203), size
  from r_e = 4.3 kpc (M*/5e10)^0.72 (1+z)^-1.2 x lognormal(0.14 dex) (after van der Wel et al.
  2014, ApJ 788, 28, early types), M/L_r = 10^(0.48 +- 0.08), K+e correction 0.95 z - 0.1.
  Colours VIS - H = 0.75 + 1.25 z (+-0.12), VIS - Y = 0.52 (VIS - H), VIS - J = 0.78 (VIS - H);
  the envelope is 0.15 mag bluer.
- Clumpy star-forming galaxies: a Sersic disc (n 0.7-1.3) and 2-7 Gaussian star-forming knots
  (sigma 60-350 pc, 20-55 % of the flux, bluer by 0.2-0.6 mag in VIS - H; cf. Guo et al. 2015,
  ApJ 800, 39, clumpy galaxies at z 0.5-3).
- Stars: VIS - H along the stellar locus, N(0.5 + 0.05 (VIS - 20), 0.45) clipped to -0.3-1.8
  (hot stars to M dwarfs, redder when faint).
"""

from __future__ import annotations

import functools

import numpy as np
from astropy.cosmology import Planck18

from bench.thirdsim import profiles as prof
from bench.thirdsim.render import Component, Star


# ---------------------------------------------------------------- cosmology tables (fast lookups)
@functools.lru_cache(maxsize=1)
def _tables():
    z = np.linspace(0.0, 6.0, 1201)
    z[0] = 1e-4
    chi = Planck18.comoving_distance(z).to("Mpc").value
    return z, chi


def _chi(z):
    zz, chi = _tables()
    return np.interp(z, zz, chi)


def d_a(z):
    """Angular diameter distance (Mpc), flat cosmology."""
    return _chi(z) / (1 + z)


def d_a12(z1, z2):
    return (_chi(z2) - _chi(z1)) / (1 + z2)


def kpc_to_arcsec(kpc, z):
    return kpc / (d_a(z) * 1e3) * 206264.806


def dist_mod(z):
    return 5 * np.log10(_chi(z) * (1 + z) * 1e6 / 10)


# ---------------------------------------------------------------- small helpers
def colours(vis: float, vis_minus_h: float) -> dict[str, float]:
    """Magnitudes in the four bands from VIS and a VIS - H colour (smooth SED)."""
    return {"VIS": vis, "Y": vis - 0.52 * vis_minus_h, "J": vis - 0.78 * vis_minus_h, "H": vis - vis_minus_h}


def split_mag(total: float, fraction: float) -> float:
    return total - 2.5 * np.log10(fraction)


def draw_pdf(rng, grid, pdf):
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    return float(np.interp(rng.uniform(), cdf, grid))


def draw_sigma(rng) -> float:
    s = np.linspace(170, 380, 400)
    ss = s / 161.0
    pdf = ss**2.32 * np.exp(-(ss**2.67)) / s * s**4
    return draw_pdf(rng, s, pdf)


def draw_z_lens(rng) -> float:
    z = np.linspace(0.12, 1.0, 300)
    return draw_pdf(rng, z, z**2 * np.exp(-((z / 0.32) ** 1.4)))


def draw_z_source(rng, z_l: float) -> float:
    z = np.linspace(z_l + 0.3, 4.5, 300)
    return draw_pdf(rng, z, z**2 * np.exp(-z / 0.65))


def draw_q(rng, lo=0.45, hi=0.98) -> float:
    return float(lo + (hi - lo) * rng.beta(2.6, 1.6))


def uniform_pos(rng, rmin, rmax):
    r = np.sqrt(rng.uniform(rmin**2, rmax**2))
    t = rng.uniform(0, 2 * np.pi)
    return float(r * np.cos(t)), float(r * np.sin(t))


# ---------------------------------------------------------------- galaxy builders
def etg_from_sigma(rng, sigma: float, z: float):
    """(log M*, VIS mag, r_e arcsec) of an early type of velocity dispersion sigma at z."""
    log_m = 10.7 + (np.log10(sigma) - 2.19 + rng.normal(0, 0.03)) / 0.29
    re_kpc = 4.3 * (10 ** (log_m - np.log10(5e10))) ** 0.72 * (1 + z) ** -1.2 * 10 ** rng.normal(0, 0.14)
    m_abs = 4.65 - 2.5 * (log_m - rng.normal(0.48, 0.08))
    vis = m_abs + dist_mod(z) + 0.95 * z - 0.1
    return float(log_m), float(vis), float(np.clip(kpc_to_arcsec(re_kpc, z), 0.15, 6.0))


def etg_components(rng, name, vis, re, z, q, pa, x0=0.0, y0=0.0, colour=None) -> list[Component]:
    """Bulge + envelope early type."""
    c = colour if colour is not None else 0.75 + 1.25 * z + rng.normal(0, 0.12)
    fb = rng.uniform(0.45, 0.75)
    n_b, n_env = rng.uniform(3.2, 5.5), rng.uniform(0.8, 1.6)
    r_b = re * rng.uniform(0.35, 0.6)
    r_env = r_b * rng.uniform(2.2, 3.5)
    q_env = float(np.clip(q + rng.normal(-0.03, 0.05), 0.3, 1.0))
    pa_env = pa + np.radians(rng.normal(0, 5))
    return [
        Component(
            f"{name}_bulge",
            functools.partial(prof.sersic, re=r_b, n=n_b, q=q, pa=pa, x0=x0, y0=y0),
            colours(split_mag(vis, fb), c),
        ),
        Component(
            f"{name}_envelope",
            functools.partial(prof.sersic, re=r_env, n=n_env, q=q_env, pa=pa_env, x0=x0, y0=y0),
            colours(split_mag(vis, 1 - fb), c - 0.15),
        ),
    ]


def clumpy_components(rng, name, vis, re, q, pa, x0, y0, colour, z, lensed) -> tuple[list[Component], dict]:
    """Exponential-ish disc + Gaussian knots (a high-z star-forming galaxy, or a satellite)."""
    n_knots = int(rng.integers(2, 8))
    f_knots = rng.uniform(0.2, 0.55)
    comps = [
        Component(
            f"{name}_disc",
            functools.partial(prof.sersic, re=re, n=rng.uniform(0.7, 1.3), q=q, pa=pa, x0=x0, y0=y0),
            colours(split_mag(vis, 1 - f_knots), colour),
            lensed=lensed,
        )
    ]
    w = rng.dirichlet(np.full(n_knots, 1.5))
    for k in range(n_knots):
        r = re * rng.gamma(2.0, 0.45)
        t = rng.uniform(0, 2 * np.pi)
        kx, ky = r * np.cos(t), r * np.sin(t) * q
        c, s = np.cos(pa), np.sin(pa)
        sig_kpc = rng.uniform(0.06, 0.35)
        sig = float(np.clip(kpc_to_arcsec(sig_kpc, z), 0.018, 0.12))
        comps.append(
            Component(
                f"{name}_knot{k}",
                functools.partial(prof.gaussian, sigma=sig, x0=x0 + c * kx - s * ky, y0=y0 + s * kx + c * ky),
                colours(split_mag(vis, f_knots * w[k]), colour - rng.uniform(0.2, 0.6)),
                lensed=lensed,
            )
        )
    return comps, {"n_knots": n_knots, "f_knots": f_knots}


def disc_galaxy(rng, name, vis, re, q, pa, x0, y0, colour) -> list[Component]:
    n = rng.uniform(0.8, 1.5)
    return [
        Component(
            name, functools.partial(prof.sersic, re=re, n=n, q=q, pa=pa, x0=x0, y0=y0), colours(vis, colour)
        )
    ]


def star(rng, x, y, lo=17.0, hi=25.0) -> Star:
    m = rng.uniform(lo, hi)
    # stellar locus: VIS - H from -0.3 (hot) to 1.6 (M dwarfs), skewed red at faint mags
    c = float(np.clip(rng.normal(0.5 + 0.05 * (m - 20), 0.45), -0.3, 1.8))
    return Star(x, y, colours(m, c))
