"""Catalog quantities of a rendered object, as the second challenge defines them.

Reference-band quantities (fluxes, pixel counts, magnitudes) use the layout's first band; the
pixel counts compare noiseless PSF-convolved light with that band's 1-sigma sky noise. Columns
without meaning for an object (no source) are 0 for counts, fluxes and areas and NaN otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.simulate import lensing
from pipeline.simulate.components import ROLE_LENS, ROLE_SOURCE, Component, band_flux
from pipeline.simulate.draws import MassDraw, ObjectDraw, Sed, SourceDraw
from pipeline.simulate.instrument import BandModel, Grid
from schemas.layout import Layout

_HALO_TO_STELLAR = 30.0
_NEIGHBOUR_RADII_ARCSEC = (3, 5, 10)


def catalog_row(
    layout: Layout,
    draw: ObjectDraw,
    models: dict[str, BandModel],
    grids: dict[str, Grid],
    components: list[Component],
    reference_parts: dict[str, np.ndarray],
    n_masked: int,
    noise_scale: float = 1.0,
) -> dict[str, object]:
    """All catalog columns of one object (every column the simulator can fill).

    ``noise_scale`` is the reference band's drawn noise factor: pixel counts compare with the
    sky noise that band actually has. Fluxes and magnitudes stay physical (unscaled).
    """
    reference = models[layout.bands[0].name]
    reference_nm = reference.wavelength_nm
    sigma = reference.noise_sigma * noise_scale
    source_image = reference_parts[ROLE_SOURCE]
    lens_image = reference_parts[ROLE_LENS]
    source_pixels = source_image > sigma
    lens_flux = sum(band_flux(c.sed, reference_nm, reference_nm) for c in components if c.role == ROLE_LENS)
    mag_lens = -2.5 * math.log10(lens_flux) if lens_flux > 0 else math.nan
    star_mass = lensing.stellar_mass_msun(mag_lens, draw.z_lens) if lens_flux > 0 else 0.0
    radii = np.hypot([g.x for g in draw.neighbours], [g.y for g in draw.neighbours])
    row: dict[str, object] = {
        "ID": draw.object_id,
        "x_crit": 0.0,
        "y_crit": 0.0,
        "source_ID": 0,
        "z_source": math.nan,
        "z_lens": draw.z_lens,
        "mag_source": math.nan,
        "ein_area": 0.0,
        "n_crit": 0,
        "r_source": math.nan,
        "crit_area": 0.0,
        "n_pix_source": int(np.count_nonzero(source_pixels)),
        "source_flux": float(source_image.sum()),
        "n_pix_lens": int(np.count_nonzero(lens_image > sigma)),
        "lens_flux": float(lens_image.sum()),
        "n_source_im": 0,
        "mag_eff": 0.0,
        "sb_contrast": 0.0,
        "color_diff": math.nan,
        **{f"n_gal_{r}": int(np.count_nonzero(radii < r)) for r in _NEIGHBOUR_RADII_ARCSEC},
        "halo_mass": _HALO_TO_STELLAR * star_mass,
        "star_mass": star_mass,
        "mag_lens": mag_lens,
        "n_sources": 0,
    }
    if draw.source is not None and draw.mass is not None:
        row.update(_lensing_columns(draw, draw.source, draw.mass, models, grids, components, reference_nm))
        if source_pixels.any():
            floor = np.maximum(lens_image[source_pixels], sigma)
            row["sb_contrast"] = float(source_image[source_pixels].mean() / floor.mean())
    if layout.masked_value is not None:
        row["n_masked_pix"] = n_masked
    row["sim_kind"] = draw.kind
    return row


def _lensing_columns(
    draw: ObjectDraw,
    source: SourceDraw,
    mass: MassDraw,
    models: dict[str, BandModel],
    grids: dict[str, Grid],
    components: list[Component],
    reference_nm: float,
) -> dict[str, object]:
    finest_group, finest = min(grids.items(), key=lambda item: item[1].sub_scale_arcsec)
    smooth_flux = band_flux(source.smooth.sed, reference_nm, reference_nm)
    clump_flux = band_flux(source.clump_sed, reference_nm, reference_nm) if source.clump_sed else 0.0
    lensed = sum(
        band_flux(c.sed, reference_nm, reference_nm) * float(c.templates[finest_group].sum())
        for c in components
        if c.role == ROLE_SOURCE
    )
    unlensed_smooth, unlensed_clumps = lensing.unlensed_source_sums(finest, source)
    unlensed = smooth_flux * unlensed_smooth + clump_flux * unlensed_clumps
    half_width = min(grid.half_width_arcsec for grid in grids.values())
    images = lensing.solve_images(mass, source, half_width)
    region = lensing.critical_region(mass)
    sigma_v = lensing.velocity_dispersion_km_s(mass.theta_e, draw.z_lens, source.z)
    wavelengths = sorted(model.wavelength_nm for model in models.values())
    return {
        "x_crit": region.x,
        "y_crit": region.y,
        "source_ID": source.source_id,
        "z_source": source.z,
        "mag_source": -2.5 * math.log10(smooth_flux + clump_flux),
        "ein_area": math.pi * mass.theta_e**2,
        "n_crit": region.n_curves,
        "r_source": source.smooth.r_eff,
        "crit_area": region.area_arcsec2,
        "n_source_im": len(images.x),
        "mag_eff": lensed / unlensed if unlensed > 0 else 0.0,
        "color_diff": _colour(source.smooth.sed, wavelengths) - _colour(draw.central[0].sed, wavelengths),
        "halo_mass": lensing.halo_mass_msun(sigma_v, draw.z_lens),
        "n_sources": 1,
    }


def _colour(sed: Sed, wavelengths: list[float]) -> float:
    """Bluest minus reddest band magnitude (0 for a single band)."""
    blue, red = wavelengths[0], wavelengths[-1]
    return sed.mag_at(blue, blue) - sed.mag_at(red, blue)
