"""A challenge-format simulator: labelled strong-lens sets in any cutout layout.

``simulate_set(layout, n, out)`` writes one FITS file per object and band at the layout's paths
and a catalog in the layout's format. Lenses are SIE + external shear (lenstronomy) with Sersic
light, in front of Sersic sources with star-forming clumps; non-lenses are ellipticals and hard
negatives (blue rings, spirals, mergers with tidal arcs); every field has neighbours and stars;
band-dependent PSFs and noise; flux-like pixel values of order 1e-11. Labels follow the second
challenge's rule on the catalog, not the draw. Objects depend only on ``(seed, id)``.

Domain randomisation: :class:`SimulationConfig` ranges (or a preset of :data:`DOMAIN_PRESETS`
through :func:`domain_config`) draw each object's noise level, PSF width, pixel units and sky
offset per band, and widen the population (Einstein radii, source sizes and brightness, lens
profiles and colours). A range fixed away from the standard value makes a shifted set: same
seed, same scenes and noise deviates, another instrument.

Examples
--------
>>> from pipeline.simulate import simulate_set
>>> summary = simulate_set("euclid-sglc2", 8, "/tmp/sim", seed=0)  # doctest: +SKIP
>>> print(summary.summary())  # doctest: +SKIP
"""

from pipeline.simulate.catalog import CHALLENGE_COLUMNS, catalog_columns, default_catalog_name, read_catalog
from pipeline.simulate.config import (
    LENS_RULE,
    NEGATIVE_KINDS,
    SimulationConfig,
    SimulationError,
    flux_from_magnitude,
)
from pipeline.simulate.domain import DOMAIN_COLUMNS, BandDomain, DomainDraw, draw_domain
from pipeline.simulate.draws import ObjectDraw
from pipeline.simulate.instrument import BandModel, default_band_models
from pipeline.simulate.population import draw_object
from pipeline.simulate.presets import DOMAIN_PRESETS, domain_config, dropped_preset_settings
from pipeline.simulate.render import RenderedObject, simulate_object
from pipeline.simulate.runner import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FIRST_ID,
    SimulationSummary,
    check_catalog,
    check_ids,
    simulate_batch,
    simulate_set,
)

__all__ = [
    "CHALLENGE_COLUMNS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FIRST_ID",
    "DOMAIN_COLUMNS",
    "DOMAIN_PRESETS",
    "LENS_RULE",
    "NEGATIVE_KINDS",
    "BandDomain",
    "BandModel",
    "DomainDraw",
    "ObjectDraw",
    "RenderedObject",
    "SimulationConfig",
    "SimulationError",
    "SimulationSummary",
    "catalog_columns",
    "check_catalog",
    "check_ids",
    "default_band_models",
    "default_catalog_name",
    "domain_config",
    "draw_domain",
    "draw_object",
    "dropped_preset_settings",
    "flux_from_magnitude",
    "read_catalog",
    "simulate_batch",
    "simulate_object",
    "simulate_set",
]
