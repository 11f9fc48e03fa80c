"""Render one drawn object into per-band images and its catalog row.

Light is built once per pixel grid (one per store group) as unit-flux *templates*, one per
component (lens galaxy, lensed source, clumps, features, neighbours, stars). A band's image is
the sum of templates weighted by each component's flux in that band, convolved with the band's
PSF (its FWHM times the object's drawn ``psf_scale``), plus noise (sigma times ``noise_scale``),
plus a sky offset, all times ``flux_scale`` (:mod:`pipeline.simulate.domain`); masked regions are
written last, with the layout's exact masked value. The lensed source and lens light of the
reference (first) band are also kept noiseless for the catalog quantities
(:mod:`pipeline.simulate.truth`).

Examples
--------
>>> from schemas.layout import load_layout
>>> from pipeline.simulate.config import SimulationConfig
>>> layout = load_layout("sglc1-space")
>>> rendered = simulate_object(layout, 100000, seed=0, config=SimulationConfig())
>>> rendered.images["VIS"].shape, rendered.images["VIS"].dtype
((101, 101), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from pipeline.simulate import noise
from pipeline.simulate.components import (
    ROLE_LENS,
    ROLE_OTHER,
    ROLE_SOURCE,
    Component,
    band_flux,
    build_components,
)
from pipeline.simulate.config import SimulationConfig
from pipeline.simulate.domain import BandDomain, DomainDraw, draw_domain, standard_domain
from pipeline.simulate.draws import FieldSpec, ObjectDraw
from pipeline.simulate.instrument import BandModel, Grid, check_band_models, default_band_models, grids_for
from pipeline.simulate.population import child_stream, draw_object, object_streams
from pipeline.simulate.truth import catalog_row
from schemas.layout import Layout, LayoutArg, as_layout


@dataclass
class RenderedObject:
    """Images by band (float32), catalog row, per-band PSF FWHM and band model actually used
    (a Moffat PSF replaces the band's own profile when ``moffat_fraction`` draws it), instrument draw."""

    draw: ObjectDraw
    images: dict[str, np.ndarray]
    row: dict[str, object]
    psf_fwhm_arcsec: dict[str, float] = field(default_factory=dict)
    domain: DomainDraw | None = None
    band_models: dict[str, BandModel] = field(default_factory=dict)

    def band_domain(self, index: int) -> BandDomain:
        """The :class:`~pipeline.simulate.domain.BandDomain` of band ``index`` (standard if none)."""
        domain = self.domain or standard_domain(len(self.images))
        return domain.bands[index]


def field_spec(layout: Layout, grids: dict[str, Grid]) -> FieldSpec:
    """What the population draws need to know of ``layout``."""
    return FieldSpec(
        half_width_arcsec=max(grid.half_width_arcsec for grid in grids.values()),
        n_bands=len(layout.bands),
        masked=layout.masked_value is not None,
    )


def simulate_object(
    layout: LayoutArg,
    object_id: int,
    seed: int,
    config: SimulationConfig,
    models: dict[str, BandModel] | None = None,
) -> RenderedObject:
    """Draw and render object ``object_id`` (pure: the same arguments give the same arrays)."""
    layout = as_layout(layout, "simulate_object")
    models = models or default_band_models(layout)
    check_band_models(layout, models)
    grids = grids_for(layout, models)
    draw = draw_object(object_id, seed, field_spec(layout, grids), config)
    _, noise_rng = object_streams(seed, object_id)
    domain = draw_domain(seed, object_id, len(layout.bands), config)
    moffat_beta = _moffat_beta(seed, object_id, config)
    components = build_components(draw, grids)
    reference = layout.bands[0].name
    reference_nm = models[reference].wavelength_nm
    group_of = {band.name: band.group for band in layout.bands}

    images: dict[str, np.ndarray] = {}
    fwhms: dict[str, float] = {}
    used: dict[str, BandModel] = {}
    noiseless_parts: dict[str, np.ndarray] = {}
    for band, observed in zip(layout.bands, domain.bands, strict=True):
        model = models[band.name] if moffat_beta is None else _as_moffat(models[band.name], moffat_beta)
        fwhm = noise.psf_fwhm(model, draw.psf_deviate) * observed.psf_scale
        kernel = noise.psf_kernel(model, fwhm)
        parts = _band_parts(components, group_of[band.name], model.wavelength_nm, reference_nm, band.shape)
        if band.name == reference:
            convolved = {role: noise.convolve(image, kernel) for role, image in parts.items()}
            noiseless_parts = convolved
            total = sum(convolved.values())
        else:
            total = noise.convolve(sum(parts.values()), kernel)
        image = noise.add_noise(total, model, noise_rng, observed.noise_scale)
        images[band.name] = noise.observe(image, model, observed).astype(np.float32)
        fwhms[band.name] = fwhm
        used[band.name] = model
    n_masked = _apply_masks(layout, draw, grids, images)
    row = catalog_row(
        layout, draw, models, grids, components, noiseless_parts, n_masked, domain.bands[0].noise_scale
    )
    if config.varies_instrument:
        row.update(domain.row())
    return RenderedObject(
        draw=draw, images=images, row=row, psf_fwhm_arcsec=fwhms, domain=domain, band_models=used
    )


def _band_parts(
    components: list[Component], group: str, wavelength_nm: float, reference_nm: float, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    parts = {role: np.zeros(shape) for role in (ROLE_LENS, ROLE_SOURCE, ROLE_OTHER)}
    for component in components:
        parts[component.role] += (
            band_flux(component.sed, wavelength_nm, reference_nm) * component.templates[group]
        )
    return parts


def _apply_masks(
    layout: Layout, draw: ObjectDraw, grids: dict[str, Grid], images: dict[str, np.ndarray]
) -> int:
    """Write the layout's masked value into the drawn regions; the number of pixels masked."""
    if layout.masked_value is None or not draw.masks:
        return 0
    value = np.float32(layout.masked_value)
    n_masked = 0
    for mask in draw.masks:
        for index in mask.band_indices:
            band = layout.bands[index]
            pixels = noise.mask_pixels(grids[band.group], mask)
            n_masked += int(np.count_nonzero(pixels & (images[band.name] != value)))
            images[band.name][pixels] = value
    return n_masked


def _moffat_beta(seed: int, object_id: int, config: SimulationConfig) -> float | None:
    """The Moffat index of this object's PSF, or None for the bands' own profiles (see
    ``SimulationConfig.moffat_fraction``; a sixth child stream, drawn only when the fraction is > 0)."""
    if config.moffat_fraction <= 0.0:
        return None
    rng = child_stream(seed, object_id, 5)
    if rng.random() >= config.moffat_fraction:
        return None
    return float(rng.uniform(*config.moffat_beta_range))


def _as_moffat(model: BandModel, beta: float) -> BandModel:
    return dataclasses.replace(model, psf_profile="moffat", moffat_beta=beta)
