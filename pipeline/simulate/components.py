"""Light components of an object as unit-flux templates on each pixel grid, and band fluxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.simulate import lensing, scenes
from pipeline.simulate.config import flux_from_magnitude
from pipeline.simulate.draws import ObjectDraw, Sed
from pipeline.simulate.instrument import Grid

ROLE_LENS = "lens"
"""The central galaxy (or galaxies): the lens, or the host of a hard-negative feature."""
ROLE_SOURCE = "source"
"""The lensed background source (smooth part and clumps)."""
ROLE_OTHER = "other"
"""Everything else: rings, spiral discs, tidal arcs, neighbours and stars."""


@dataclass(frozen=True)
class Component:
    """A light component: its role, colour and unit-flux template on every grid (by group)."""

    role: str
    sed: Sed
    templates: dict[str, np.ndarray]


def band_flux(sed: Sed, wavelength_nm: float, reference_nm: float) -> float:
    """Total flux of a component in a band (pixel units)."""
    return flux_from_magnitude(sed.mag_at(wavelength_nm, reference_nm))


def build_components(draw: ObjectDraw, grids: dict[str, Grid]) -> list[Component]:
    """Unit-flux templates of every light component of ``draw`` on every grid.

    The lensed-source templates sum to the magnification of their part, not to 1: their unit is
    the unlensed flux.
    """
    components = [
        Component(
            ROLE_LENS, galaxy.sed, {g: scenes.sersic_template(grid, galaxy) for g, grid in grids.items()}
        )
        for galaxy in draw.central
    ]
    if draw.source is not None and draw.mass is not None:
        smooth: dict[str, np.ndarray] = {}
        clumps: dict[str, np.ndarray] = {}
        for group, grid in grids.items():
            rays = lensing.ray_shoot(grid, draw.mass)
            smooth[group], clump_template = lensing.lensed_source_templates(grid, rays, draw.source)
            if clump_template is not None:
                clumps[group] = clump_template
        components.append(Component(ROLE_SOURCE, draw.source.smooth.sed, smooth))
        if clumps and draw.source.clump_sed is not None:
            components.append(Component(ROLE_SOURCE, draw.source.clump_sed, clumps))
    components.extend(
        Component(
            ROLE_OTHER, feature.sed, {g: scenes.feature_template(grid, feature) for g, grid in grids.items()}
        )
        for feature in draw.features
    )
    components.extend(
        Component(
            ROLE_OTHER, galaxy.sed, {g: scenes.sersic_template(grid, galaxy) for g, grid in grids.items()}
        )
        for galaxy in draw.neighbours
    )
    components.extend(
        Component(ROLE_OTHER, star.sed, {g: scenes.star_template(grid, star) for g, grid in grids.items()})
        for star in draw.stars
    )
    return components
