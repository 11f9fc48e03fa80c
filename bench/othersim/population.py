"""What each object holds, drawn from its own stream ``SeedSequence(seed, spawn_key=(id,))``."""

from __future__ import annotations

import math

import numpy as np

from bench.othersim.settings import BANDS, KIND_WEIGHTS, KINDS, THETA_E_RANGE, Settings


def _colours(kind: str, z: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """VIS-Y, Y-J, J-H colours (AB mag) of a component."""
    if kind == "red":  # early type: a redshift-dependent table
        return (
            0.55 + 0.9 * z + rng.normal(0, 0.08),
            0.28 + 0.25 * z + rng.normal(0, 0.05),
            0.30 + 0.1 * z + rng.normal(0, 0.05),
        )
    if kind == "blue":  # star-forming
        return (rng.uniform(-0.2, 0.4), rng.uniform(-0.1, 0.3), rng.uniform(-0.1, 0.3))
    if kind == "disc":
        return (rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.3), rng.uniform(0.1, 0.3))
    return (rng.uniform(-0.3, 1.5), rng.uniform(-0.1, 0.5), rng.uniform(-0.1, 0.4))  # anything


def _band_mags(vis_mag: float, colours: tuple[float, float, float]) -> dict[str, float]:
    mags = {"VIS": vis_mag}
    mags["Y"] = vis_mag - colours[0]
    mags["J"] = mags["Y"] - colours[1]
    mags["H"] = mags["J"] - colours[2]
    return mags


def _early_type(rng: np.random.Generator, z: float, theta_e: float) -> dict:
    """A de Vaucouleurs galaxy whose brightness and size follow its (hidden) Einstein radius."""
    return {
        "profile": "devauc",
        "x": rng.normal(0, 0.04),
        "y": rng.normal(0, 0.04),
        "r": float(np.clip(0.8 * theta_e * rng.uniform(0.7, 1.4), 0.25, 3.0)),
        "q": rng.uniform(0.5, 1.0),
        "phi": rng.uniform(0, math.pi),
        "mags": _band_mags(
            19.5 - 2.2 * math.log10(theta_e) + 1.5 * (z - 0.45) + rng.normal(0, 0.35), _colours("red", z, rng)
        ),
    }


def draw_object(object_id: int, settings: Settings) -> dict:
    """Everything of one object, from its own stream ``SeedSequence(seed, spawn_key=(id,))``."""
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(int(object_id),)))
    z_lens = rng.uniform(0.15, 0.8)
    theta_e = math.exp(rng.uniform(*np.log(THETA_E_RANGE)))
    obj = {
        "id": int(object_id),
        "ra": 52.0 + rng.uniform(-1.5, 1.5),
        "dec": -28.0 + rng.uniform(-1.5, 1.5),
        "z_lens": z_lens,
        "psf_deviate": rng.normal(0, 1, size=len(BANDS)),
        "lens": None,
        "source": None,
    }
    central = _early_type(rng, z_lens, theta_e)
    components = [central]
    if rng.random() < settings.lens_fraction:
        obj["kind"] = "lens"
        gamma, gamma_angle = rng.uniform(0, 0.1), rng.uniform(0, math.pi)
        obj["lens"] = {
            "theta_e": theta_e,
            "q": float(np.clip(central["q"] + rng.normal(0, 0.05), 0.45, 0.98)),
            "phi": central["phi"] + rng.normal(0, 0.15),
            "x": central["x"],
            "y": central["y"],
            "gamma1": gamma * math.cos(2 * gamma_angle),
            "gamma2": gamma * math.sin(2 * gamma_angle),
        }
        offset = theta_e * math.sqrt(rng.uniform(0, 1)) * 1.25
        angle = rng.uniform(0, 2 * math.pi)
        radius = math.exp(rng.uniform(math.log(0.1), math.log(0.5)))
        source = {
            "profile": "exp" if rng.random() < 0.6 else "gauss",
            "x": central["x"] + offset * math.cos(angle),
            "y": central["y"] + offset * math.sin(angle),
            "r": radius,
            "q": rng.uniform(0.3, 1.0),
            "phi": rng.uniform(0, math.pi),
            "z": z_lens + rng.uniform(0.5, 2.5),
            "mags": _band_mags(rng.uniform(22.3, 26.5), _colours("blue", 0, rng)),
        }
        if rng.random() < 0.5:
            knot_angle = rng.uniform(0, 2 * math.pi)
            source["knot"] = {
                "x": source["x"] + 0.8 * radius * math.cos(knot_angle),
                "y": source["y"] + 0.8 * radius * math.sin(knot_angle),
                "r": 0.3 * radius,
                "q": 1.0,
                "phi": 0.0,
                "amplitude": rng.uniform(0.5, 3.0),
            }
        obj["source"] = source
    else:
        obj["kind"] = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
        components = _negative(obj["kind"], rng, z_lens, central)
    obj["components"] = components + _field(rng)
    obj["stars"] = [
        (
            rng.uniform(-9.5, 9.5),
            rng.uniform(-9.5, 9.5),
            _band_mags(rng.uniform(17.5, 24.0), _colours("any", 0, rng)),
        )
        for _ in range(rng.poisson(0.4))
    ]
    obj["n_neighbours"] = len(obj["components"]) - len(components)
    return obj


def _negative(kind: str, rng: np.random.Generator, z: float, central: dict) -> list[dict]:
    if kind == "elliptical":
        return [central]
    if kind == "companion":  # a red galaxy with a small blue neighbour: arc-like hard negative
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 2.5)
        blue = {
            "profile": "exp",
            "x": central["x"] + distance * math.cos(angle),
            "y": central["y"] + distance * math.sin(angle),
            "r": rng.uniform(0.15, 0.4),
            "q": rng.uniform(0.25, 0.8),
            "phi": angle + math.pi / 2 + rng.normal(0, 0.3),  # roughly tangential
            "mags": _band_mags(rng.uniform(22.0, 24.5), _colours("blue", 0, rng)),
        }
        return [central, blue]
    bulge = {
        "profile": "devauc",
        "x": rng.normal(0, 0.04),
        "y": rng.normal(0, 0.04),
        "r": rng.uniform(0.3, 0.8),
        "q": rng.uniform(0.6, 1.0),
        "phi": rng.uniform(0, math.pi),
        "mags": _band_mags(rng.uniform(20.5, 22.5), _colours("red", z, rng)),
    }
    shape = {"x": bulge["x"], "y": bulge["y"], "q": rng.uniform(0.5, 1.0), "phi": rng.uniform(0, math.pi)}
    if kind == "ring":
        extra = {
            "profile": "ring",
            "radius": rng.uniform(1.0, 3.0),
            "width": rng.uniform(0.1, 0.35),
            "modes": [(rng.uniform(0, 0.5), rng.uniform(0, 2 * math.pi)) for _ in range(3)],
            "mags": _band_mags(bulge["mags"]["VIS"] + rng.uniform(-0.5, 1.5), _colours("blue", 0, rng)),
        }
    else:
        extra = {
            "profile": "spiral",
            "h": rng.uniform(0.5, 1.5),
            "pitch": math.radians(rng.uniform(10, 30)),
            "phase": rng.uniform(0, 2 * math.pi),
            "arm_width": rng.uniform(0.15, 0.35),
            "mags": _band_mags(bulge["mags"]["VIS"] - rng.uniform(0, 1.2), _colours("disc", 0, rng)),
        }
    return [bulge, {**shape, **extra}]


def _field(rng: np.random.Generator) -> list[dict]:
    """Field galaxies at least 2" from the centre."""
    galaxies = []
    for _ in range(rng.poisson(2.5)):
        while True:
            x, y = rng.uniform(-10, 10, size=2)
            if math.hypot(x, y) > 2.0:
                break
        galaxies.append(
            {
                "profile": "exp" if rng.random() < 0.6 else "devauc",
                "x": x,
                "y": y,
                "r": math.exp(rng.uniform(math.log(0.1), math.log(0.8))),
                "q": rng.uniform(0.3, 1.0),
                "phi": rng.uniform(0, math.pi),
                "mags": _band_mags(rng.uniform(21.0, 25.5), _colours("any", 0, rng)),
            }
        )
    return galaxies
