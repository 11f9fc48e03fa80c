"""The non-lens populations of thirdsim: lens look-alikes, the other half of the objects.

Non-lenses (the other half), a mix chosen from the false positives reported by Jacobs et al.
(2019, ApJS 243, 17), Petrillo et al. (2019, MNRAS 484, 3879), Canameras et al. (2021, A&A 653,
L6), Rojas et al. (2022, A&A 668, A73) and the Euclid Q1 lens searches (Euclid Collaboration:
Walmsley et al. 2025; Lines et al. 2025):

    ====================  =====  ===========================================================
    kind                  share  what is drawn
    ====================  =====  ===========================================================
    elliptical            0.20   an isolated massive early-type galaxy (the lens population)
    elliptical_companion  0.16   an early type with 1-3 small blue satellites at 0.7-3"
    spiral                0.15   bulge + disc + 2-4 log-spiral blue arms with HII knots
    edge_on               0.07   thin disc (q 0.08-0.2) with a dust lane (stronger in VIS)
    ring                  0.09   ring galaxy / resonance ring (ring radius 0.8-2.6"), often clumpy
    merger                0.11   two overlapping galaxies with tidal tails, or an early type with
                                 shells (concentric arcs)
    group                 0.08   compact group of 3-5 galaxies within 4"
    pair                  0.08   early type with an unrelated background blue galaxy at 1-3"
    star_galaxy           0.06   a galaxy with a bright star within 0.8-4"
    ====================  =====  ===========================================================
"""

from __future__ import annotations

import functools

import numpy as np

from bench.thirdsim import profiles as prof
from bench.thirdsim.galaxies import (
    clumpy_components,
    colours,
    disc_galaxy,
    dist_mod,
    draw_q,
    draw_sigma,
    draw_z_lens,
    etg_components,
    etg_from_sigma,
    kpc_to_arcsec,
    split_mag,
    star,
    uniform_pos,
)
from bench.thirdsim.render import Component, Scene

NONLENS_MIX = {
    "elliptical": 0.20,
    "elliptical_companion": 0.16,
    "spiral": 0.15,
    "edge_on": 0.07,
    "ring": 0.09,
    "merger": 0.11,
    "group": 0.08,
    "pair": 0.08,
    "star_galaxy": 0.06,
}


# ---------------------------------------------------------------- non-lenses
def _central_etg(rng, scene, name="main"):
    sigma = draw_sigma(rng)
    z = draw_z_lens(rng)
    log_m, vis, re = etg_from_sigma(rng, sigma, z)
    q = draw_q(rng)
    x0, y0 = rng.normal(0, 0.05, size=2)
    scene.components += etg_components(rng, name, vis, re, z, q, rng.uniform(0, np.pi), x0, y0)
    return {"z_lens": z, "mag_lens": vis, "re_lens": re, "sigma_v": sigma, "log_mstar": log_m}


def _spiral_params(rng):
    z = 0.03 + 0.27 * rng.beta(1.5, 2.0)
    rd_kpc = rng.uniform(2.0, 5.5)
    vis = dist_mod(z) + rng.uniform(-23.0, -20.5) + 0.5 * z
    return z, float(np.clip(kpc_to_arcsec(rd_kpc, z), 0.3, 4.0)), float(vis)


def nonlens(kind: str, rng, scene: Scene) -> dict:
    info: dict = {"kind": kind}
    if kind == "elliptical":
        info |= _central_etg(rng, scene)
    elif kind == "elliptical_companion":
        info |= _central_etg(rng, scene)
        n = int(rng.integers(1, 4))
        for k in range(n):
            x, y = uniform_pos(rng, 0.7, 3.0)
            vis = info["mag_lens"] + rng.uniform(1.5, 5.0)
            comps, _ = clumpy_components(
                rng,
                f"sat{k}",
                vis,
                rng.uniform(0.08, 0.35),
                draw_q(rng, 0.3, 1.0),
                rng.uniform(0, np.pi),
                x,
                y,
                rng.uniform(-0.2, 0.9),
                info["z_lens"],
                False,
            )
            scene.components += comps
        info["n_companions"] = n
    elif kind == "spiral":
        z, rd, vis = _spiral_params(rng)
        q = draw_q(rng, 0.35, 1.0)
        pa = rng.uniform(0, np.pi)
        fb, fa = rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.5)
        n_arms = int(rng.choice([2, 2, 2, 3, 4]))
        pitch = rng.uniform(12, 30)
        width = rng.uniform(0.35, 0.7)
        phase = rng.uniform(0, 2 * np.pi)
        scene.components += etg_components(
            rng, "bulge", split_mag(vis, fb), rd * 0.5, z, min(q + 0.2, 1.0), pa
        )
        scene.components.append(
            Component(
                "disc",
                functools.partial(prof.sersic, re=1.68 * rd, n=1.0, q=q, pa=pa),
                colours(split_mag(vis, 1 - fb - fa), 0.9),
            )
        )
        scene.components.append(
            Component(
                "arms",
                functools.partial(
                    prof.spiral_arms,
                    rd=rd,
                    q=q,
                    pa=pa,
                    n_arms=n_arms,
                    pitch_deg=pitch,
                    phase=phase,
                    width=width,
                ),
                colours(split_mag(vis, fa * 0.7), rng.uniform(0.0, 0.45)),
                analytic=False,
            )
        )
        # HII regions along the arms
        n_hii = int(rng.integers(3, 10))
        for k in range(n_hii):
            r = rd * rng.uniform(0.8, 2.6)
            arm = rng.integers(n_arms)
            t = phase + np.log(r / rd) / np.tan(np.radians(pitch)) + 2 * np.pi * arm / n_arms
            xd, yd = r * np.cos(t), r * np.sin(t) * q
            c, s = np.cos(pa), np.sin(pa)
            scene.components.append(
                Component(
                    f"hii{k}",
                    functools.partial(
                        prof.gaussian, sigma=rng.uniform(0.04, 0.12), x0=c * xd - s * yd, y0=s * xd + c * yd
                    ),
                    colours(split_mag(vis, fa * 0.3 / n_hii), rng.uniform(-0.3, 0.2)),
                )
            )
        info |= {"z_lens": z, "mag_lens": vis, "re_lens": 1.68 * rd, "n_arms": n_arms}
    elif kind == "edge_on":
        z, rd, vis = _spiral_params(rng)
        q = rng.uniform(0.08, 0.2)
        pa = rng.uniform(0, np.pi)
        h = rd * q * rng.uniform(0.25, 0.5)
        tau_v, tau_n = rng.uniform(0.8, 2.5), None
        tau_n = tau_v * rng.uniform(0.15, 0.35)
        base = functools.partial(prof.sersic, re=1.68 * rd, n=1.0, q=q, pa=pa)

        def dusty(x, y, tau, base=base, h=h, pa=pa):
            return base(x, y) * prof.dust_lane(x, y, h, tau, pa)

        scene.components.append(
            Component(
                "disc",
                functools.partial(dusty, tau=tau_v),
                colours(split_mag(vis, 0.8), 1.0),
                analytic=False,
                fn_nir=functools.partial(dusty, tau=tau_n),
            )
        )
        scene.components += etg_components(rng, "bulge", split_mag(vis, 0.2), rd * 0.4, z, 0.7, pa)
        info |= {"z_lens": z, "mag_lens": vis, "re_lens": 1.68 * rd}
    elif kind == "ring":
        z, rd, vis = _spiral_params(rng)
        radius = rng.uniform(0.8, 2.6)
        q = draw_q(rng, 0.5, 1.0)
        pa = rng.uniform(0, np.pi)
        f_ring = rng.uniform(0.25, 0.6)
        clumpy = rng.uniform() < 0.6
        n_cl = int(rng.integers(3, 9)) if clumpy else 0
        scene.components += etg_components(
            rng, "core", split_mag(vis, 1 - f_ring), min(radius * 0.35, rd), z, draw_q(rng), pa
        )
        scene.components.append(
            Component(
                "ring",
                functools.partial(
                    prof.ring,
                    radius=radius,
                    width=radius * rng.uniform(0.07, 0.2),
                    q=q,
                    pa=pa,
                    clump_phases=tuple(rng.uniform(0, 2 * np.pi, n_cl)),
                    clump_width=rng.uniform(0.15, 0.4),
                    clump_amp=rng.uniform(1.0, 4.0) if clumpy else 0.0,
                ),
                colours(split_mag(vis, f_ring), rng.uniform(-0.2, 0.6)),
                analytic=False,
            )
        )
        info |= {"z_lens": z, "mag_lens": vis, "ring_radius": radius}
    elif kind == "merger":
        if rng.uniform() < 0.6:  # two galaxies + tails
            z = rng.uniform(0.05, 0.6)
            vis = dist_mod(z) + rng.uniform(-22.5, -20.0) + 0.6 * z
            sep = rng.uniform(0.4, 2.0)
            t = rng.uniform(0, 2 * np.pi)
            f1 = rng.uniform(0.5, 0.8)
            for k, (sgn, fr) in enumerate(((1, f1), (-1, 1 - f1))):
                x0, y0 = sgn * 0.5 * sep * np.cos(t), sgn * 0.5 * sep * np.sin(t)
                re = float(np.clip(kpc_to_arcsec(rng.uniform(1.5, 5), z), 0.2, 3))
                if rng.uniform() < 0.5:
                    scene.components += etg_components(
                        rng,
                        f"g{k}",
                        split_mag(vis, fr * 0.8),
                        re,
                        z,
                        draw_q(rng),
                        rng.uniform(0, np.pi),
                        x0,
                        y0,
                    )
                else:
                    scene.components += disc_galaxy(
                        rng,
                        f"g{k}",
                        split_mag(vis, fr * 0.8),
                        re,
                        draw_q(rng, 0.3, 1),
                        rng.uniform(0, np.pi),
                        x0,
                        y0,
                        rng.uniform(0.3, 1.2),
                    )
            for k in range(int(rng.integers(1, 3))):
                scene.components.append(
                    _tail(rng, f"tail{k}", split_mag(vis, 0.2 / (k + 1)), t + np.pi * k, sep)
                )
            info |= {"z_lens": z, "mag_lens": vis}
        else:  # shell galaxy
            info |= _central_etg(rng, scene)
            vis = info["mag_lens"]
            re = info["re_lens"]
            for k in range(int(rng.integers(2, 5))):
                r = re * rng.uniform(0.8, 3.0)
                scene.components.append(_shell(rng, f"shell{k}", split_mag(vis, rng.uniform(0.02, 0.06)), r))
    elif kind == "group":
        z = rng.uniform(0.1, 0.8)
        n = int(rng.integers(3, 6))
        mags = []
        for k in range(n):
            x, y = (0.0, 0.0) if k == 0 else uniform_pos(rng, 0.8, 4.0)
            sigma = rng.uniform(120, 260)
            _, vis, re = etg_from_sigma(rng, sigma, z)
            mags.append(vis)
            if rng.uniform() < 0.7:
                scene.components += etg_components(
                    rng, f"g{k}", vis, re, z, draw_q(rng), rng.uniform(0, np.pi), x, y
                )
            else:
                scene.components += disc_galaxy(
                    rng, f"g{k}", vis, re, draw_q(rng, 0.3, 1), rng.uniform(0, np.pi), x, y, 0.4 + z
                )
        info |= {"z_lens": z, "mag_lens": min(mags), "n_members": n}
    elif kind == "pair":
        info |= _central_etg(rng, scene)
        x, y = uniform_pos(rng, 1.0, 3.0)
        z_b = rng.uniform(0.8, 3.0)
        vis = rng.uniform(21.5, 25.5)
        # background galaxy, often elongated (a tangential-arc look-alike by chance)
        comps, _ = clumpy_components(
            rng,
            "bg",
            vis,
            rng.uniform(0.12, 0.5),
            draw_q(rng, 0.2, 0.9),
            rng.uniform(0, np.pi),
            x,
            y,
            rng.uniform(-0.1, 0.7),
            z_b,
            False,
        )
        scene.components += comps
        info |= {"z_source": z_b, "mag_source": vis}
    elif kind == "star_galaxy":
        if rng.uniform() < 0.6:
            info |= _central_etg(rng, scene)
        else:
            z, rd, vis = _spiral_params(rng)
            scene.components += disc_galaxy(
                rng, "main", vis, 1.68 * rd, draw_q(rng, 0.3, 1), rng.uniform(0, np.pi), 0, 0, 0.9
            )
            info |= {"z_lens": z, "mag_lens": vis}
        x, y = uniform_pos(rng, 0.8, 4.0)
        scene.stars.append(star(rng, x, y, 17.0, 23.5))
    else:
        raise ValueError(kind)
    return info


def _tail(rng, name, vis, angle, sep) -> Component:
    """A curved tidal tail of Gaussian blobs leaving the merger along ``angle``."""
    n = 18
    length = rng.uniform(2.0, 6.0)
    curl = rng.uniform(0.3, 1.2) * rng.choice([-1, 1])
    s = np.linspace(0, 1, n)
    ang = angle + curl * s * 1.5
    r = 0.5 * sep + length * s
    pts = tuple(zip(r * np.cos(ang), r * np.sin(ang)))
    widths = tuple(0.12 + 0.25 * s * rng.uniform(0.5, 1.5))
    weights = tuple(np.exp(-2.0 * s) * rng.uniform(0.6, 1.4, n))
    return Component(
        name,
        functools.partial(prof.arc_stream, points=pts, widths=widths, weights=weights),
        colours(vis, rng.uniform(0.2, 1.0)),
        analytic=False,
    )


def _shell(rng, name, vis, radius) -> Component:
    """A partial ring (shell) of an early type: an arc of 60-160 degrees."""
    n = 16
    span = np.radians(rng.uniform(60, 160))
    t0 = rng.uniform(0, 2 * np.pi)
    t = t0 + np.linspace(-span / 2, span / 2, n)
    pts = tuple(zip(radius * np.cos(t), radius * np.sin(t)))
    w = radius * rng.uniform(0.04, 0.1)
    return Component(
        name,
        functools.partial(
            prof.arc_stream, points=pts, widths=(w,) * n, weights=tuple(np.hanning(n + 2)[1:-1])
        ),
        colours(vis, rng.uniform(0.8, 1.6)),
        analytic=False,
    )
