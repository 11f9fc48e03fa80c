"""The scene of one thirdsim object: a lens system or a look-alike, plus the field.

Each object is a lens system (half of them) or a lens look-alike drawn from
:mod:`bench.thirdsim.nonlenses`, plus field galaxies and stars; the galaxy builders and
sampling laws are in :mod:`bench.thirdsim.galaxies`.

Lens systems (half the objects)
    - Velocity dispersion from the SDSS early-type velocity dispersion function of Choi, Park &
      Vogeley (2007, ApJ 658, 884): phi(s) ~ (s/s*)^alpha exp(-(s/s*)^beta) / s with s* = 161 km/s,
      alpha = 2.32, beta = 2.67, weighted by the lensing cross-section (~ s^4), 170-380 km/s.
    - Lens redshift p(z) ~ z^2 exp(-(z/0.32)^1.4) on 0.12-1.0; source redshift
      p(z) ~ z^2 exp(-z/0.65) on [z_l + 0.3, 4.5] (median ~2, cf. Collett 2015, ApJ 811, 20).
      Planck 2018 flat LCDM (astropy ``Planck18``).
    - Mass: elliptical power law (lenstronomy ``EPL``), slope N(2.0, 0.09) clipped to 1.78-2.22
      (Auger et al. 2010, ApJ 724, 511), theta_E = 4 pi (s/c)^2 D_ls/D_s x lognormal(0.06 dex), axis
      ratio q = 0.4 + 0.57 Beta(2.6, 1.6), plus external shear (|gamma| Rayleigh, scale 0.035, <0.15)
      and an m=4 multipole a4/theta_E ~ N(0, 0.008) aligned with the mass (disky or boxy).
    - Lens light: bulge (Sersic n 3.2-5.5) + envelope (Sersic n 0.8-1.6, 2.2-3.5x larger),
      bulge fraction 0.45-0.75; stellar mass from log s = 2.19 + 0.29 (log M* - 10.7) + N(0, 0.03)
      (a Faber-Jackson-like mass-sigma relation in the spirit of Zahid et al. 2016, ApJ 832, 203),
      size from r_e = 4.3 kpc (M*/5e10)^0.72 (1+z)^-1.2 x lognormal(0.14 dex) (after van der Wel
      et al. 2014, ApJ 788, 28, early types), M/L_r = 10^(0.48 +- 0.08), K+e correction 0.95 z - 0.1.
      Colours VIS - H = 0.75 + 1.25 z (+-0.12), VIS - Y = 0.52 (VIS - H), VIS - J = 0.78 (VIS - H);
      the envelope is 0.15 mag bluer. Light follows the mass in orientation (+-8 deg) and shape.
    - Sources: clumpy star-forming galaxies: an exponential disc (n 0.7-1.3, q 0.35-0.95) with
      r_e = 4.0 kpc (1+z)^-0.75 10^(-0.1 (m - 24)) (van der Wel et al. 2014 late types, scaled),
      and 2-7 Gaussian star-forming knots (sigma 60-350 pc, 20-55 % of the flux, bluer by 0.2-0.6
      mag in VIS - H; cf. Guo et al. 2015, ApJ 800, 39, clumpy galaxies at z 0.5-3). Unlensed VIS
      magnitude p(m) ~ 10^(0.22 m) on 21.5-26.8 (faint sources dominate, as in the number counts).
      Source offset from the lens: 80 % at r = 0.92 theta_E U^1.5 (a magnification-
      biased mix of quads, arcs and doubles), 20 % uniform in area within
      1.0-2.0 theta_E (weakly lensed: most of these fail the label rule).

Field (every object): Poisson(4) neighbour galaxies at VIS 19-26.5 (counts slope 0.3), 1.2-10"
from the centre, and Poisson(0.35) stars at VIS 17-25 with colours along the stellar locus.
"""

from __future__ import annotations

import numpy as np
from astropy import constants

from bench.thirdsim.galaxies import (
    clumpy_components,
    d_a,
    d_a12,
    disc_galaxy,
    draw_pdf,
    draw_q,
    draw_sigma,
    draw_z_lens,
    draw_z_source,
    etg_components,
    etg_from_sigma,
    kpc_to_arcsec,
    star,
    uniform_pos,
)
from bench.thirdsim.nonlenses import NONLENS_MIX, nonlens
from bench.thirdsim.render import Lens, Scene

C_KMS = constants.c.to("km/s").value
LENS_FRACTION = 0.5
HALF_FIELD = 10.0  # arcsec


# ---------------------------------------------------------------- lens systems
def lens_system(rng, scene: Scene) -> dict:
    sigma = draw_sigma(rng)
    z_l = draw_z_lens(rng)
    z_s = draw_z_source(rng, z_l)
    theta_e = float(
        4 * np.pi * (sigma / C_KMS) ** 2 * d_a12(z_l, z_s) / d_a(z_s) * 206264.806 * 10 ** rng.normal(0, 0.06)
    )
    gamma = float(np.clip(rng.normal(2.0, 0.09), 1.78, 2.22))
    q_m = draw_q(rng, 0.4, 0.97)
    phi = rng.uniform(0, np.pi)
    e = (1 - q_m) / (1 + q_m)
    cx, cy = rng.normal(0, 0.05, size=2)
    g = min(rng.rayleigh(0.035), 0.15)
    phi_g = rng.uniform(0, np.pi)
    a4 = rng.normal(0, 0.008)
    kwargs = [
        {
            "theta_E": theta_e,
            "gamma": gamma,
            "e1": e * np.cos(2 * phi),
            "e2": e * np.sin(2 * phi),
            "center_x": cx,
            "center_y": cy,
        },
        {"gamma1": g * np.cos(2 * phi_g), "gamma2": g * np.sin(2 * phi_g), "ra_0": 0.0, "dec_0": 0.0},
        {"m": 4, "a_m": a4 * theta_e, "phi_m": phi, "center_x": cx, "center_y": cy, "r_E": theta_e},
    ]
    kwargs = [{k: float(v) if not isinstance(v, int) else v for k, v in kw.items()} for kw in kwargs]
    scene.lens = Lens(kwargs, ["EPL", "SHEAR", "MULTIPOLE"], theta_e, (float(cx), float(cy)))
    log_m, vis_l, re_l = etg_from_sigma(rng, sigma, z_l)
    q_l = float(np.clip(q_m + rng.normal(0.03, 0.06), 0.35, 1.0))
    scene.components += etg_components(
        rng, "lens", vis_l, re_l, z_l, q_l, phi + np.radians(rng.normal(0, 8)), cx, cy
    )
    # source
    mm = np.linspace(21.5, 26.8, 300)
    vis_s = draw_pdf(rng, mm, 10 ** (0.22 * mm))
    if rng.uniform() < 0.8:  # concentrated to the centre: favours the highly magnified region
        r_b, t_b = 0.92 * theta_e * rng.uniform() ** 1.5, rng.uniform(0, 2 * np.pi)
        bx, by = float(r_b * np.cos(t_b)), float(r_b * np.sin(t_b))
    else:
        bx, by = uniform_pos(rng, 1.0 * theta_e, 2.0 * theta_e)
    bx, by = bx + cx, by + cy
    re_kpc = 4.0 * (1 + z_s) ** -0.75 * 10 ** (-0.1 * (vis_s - 24)) * 10 ** rng.normal(0, 0.15)
    re_s = float(np.clip(kpc_to_arcsec(re_kpc, z_s), 0.05, 0.8))
    q_s = draw_q(rng, 0.35, 0.95)
    c_s = rng.uniform(-0.15, 0.7)
    comps, extra = clumpy_components(
        rng, "src", vis_s, re_s, q_s, rng.uniform(0, np.pi), bx, by, c_s, z_s, True
    )
    scene.components += comps
    scene.source_center = (bx, by)
    return {
        "kind": "lens",
        "theta_e": theta_e,
        "sigma_v": sigma,
        "gamma_slope": gamma,
        "q_lens": q_m,
        "shear": g,
        "a4": a4,
        "z_lens": z_l,
        "z_source": z_s,
        "mag_lens": vis_l,
        "re_lens": re_l,
        "log_mstar": log_m,
        "mag_source": vis_s,
        "re_source": re_s,
        "source_x": bx,
        "source_y": by,
        **extra,
    }


def field(rng, scene: Scene, density: float = 4.0, star_rate: float = 0.35) -> None:
    """Neighbour galaxies and stars anywhere in the cutout, away from the centre."""
    for k in range(rng.poisson(density)):
        m = 19 + np.log10(1 + rng.uniform() * (10 ** (0.3 * 7.5) - 1)) / 0.3  # counts slope 0.3, 19-26.5
        x, y = uniform_pos(rng, 1.2, HALF_FIELD * 1.1)
        re = float(np.clip(0.32 * 10 ** (-0.11 * (m - 23)) * 10 ** rng.normal(0, 0.18), 0.05, 3.0))
        q = draw_q(rng, 0.2, 1.0)
        pa = rng.uniform(0, np.pi)
        if rng.uniform() < 0.3:
            z = rng.uniform(0.2, 1.2)
            scene.components += etg_components(rng, f"nb{k}", m, re, z, q, pa, x, y)
        else:
            scene.components += disc_galaxy(rng, f"nb{k}", m, re, q, pa, x, y, rng.uniform(-0.2, 1.3))
    for _ in range(rng.poisson(star_rate)):
        x, y = uniform_pos(rng, 1.5, HALF_FIELD * 1.05)
        scene.stars.append(star(rng, x, y))


def draw_scene(rng) -> tuple[Scene, dict]:
    """One object: its scene and catalog information."""
    scene = Scene()
    if rng.uniform() < LENS_FRACTION:
        info = lens_system(rng, scene)
    else:
        kinds = list(NONLENS_MIX)
        p = np.array([NONLENS_MIX[k] for k in kinds])
        kind = str(rng.choice(kinds, p=p / p.sum()))
        info = nonlens(kind, rng, scene)
    field(rng, scene)
    return scene, info
