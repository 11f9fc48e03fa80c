"""Per-object instrument draws for domain randomisation: noise, PSF width, pixel units, sky level.

Each object draws its instrument from a third child of its own seed sequence,
``SeedSequence([seed, object_id]).spawn(3)[2]``, next to the scene and noise streams of
:func:`pipeline.simulate.population.object_streams`, which stay untouched. So the draws do not
depend on how a set is split over batches or workers, the standard set (all factors 1) is
byte-identical to what it was before these options existed, and a *shifted* set (for example
``noise_scale=(3, 3)``) made with the same seed holds the same scenes and the same noise deviates
as the standard set, only observed differently: a paired comparison.

Every object draws a shared value per quantity and one per band, always in the same order and
number whatever the ranges, and mixes them with ``band_jitter`` (see
:class:`~pipeline.simulate.config.SimulationConfig`). A range with low == high gives exactly
low for every band.

Examples
--------
>>> from pipeline.simulate.config import SimulationConfig
>>> draw = draw_domain(0, 100000, 4, SimulationConfig(noise_scale=(3.0, 3.0)))
>>> draw.noise_scale, [band.noise_scale for band in draw.bands]
(3.0, [3.0, 3.0, 3.0, 3.0])
>>> draw.bands[0].flux_scale
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.simulate.config import SimulationConfig

DOMAIN_COLUMNS: dict[str, str] = {
    "noise_scale": "factor on the sky noise sigma, the object's shared part (per band: NOISESCL card)",
    "psf_scale": "factor on the PSF FWHM, the object's shared part (per band: PSFSCL card)",
    "flux_scale": "factor on all pixel values, the object's shared part (per band: FLUXSCL, MAGZP)",
    "sky_offset": "[noise sigma] background added, shared part (per band: SKYOFF, SKYLEVEL cards)",
}
"""Catalog columns recording an object's instrument draw (written when the config varies it)."""


@dataclass(frozen=True)
class BandDomain:
    """How one band of one object is observed, relative to the band's standard model.

    ``noise_scale`` multiplies the sky sigma, ``psf_scale`` the PSF FWHM, ``flux_scale`` every
    pixel value; ``sky_offset`` is a background added in units of the scaled sky sigma.
    """

    noise_scale: float = 1.0
    psf_scale: float = 1.0
    flux_scale: float = 1.0
    sky_offset: float = 0.0


@dataclass(frozen=True)
class DomainDraw:
    """An object's instrument: the shared values (catalog columns) and one :class:`BandDomain` per band."""

    noise_scale: float
    psf_scale: float
    flux_scale: float
    sky_offset: float
    bands: tuple[BandDomain, ...]

    def row(self) -> dict[str, float]:
        """The catalog columns of :data:`DOMAIN_COLUMNS`."""
        return {name: float(getattr(self, name)) for name in DOMAIN_COLUMNS}


def standard_domain(n_bands: int) -> DomainDraw:
    """The standard instrument: every factor 1, no offset."""
    return DomainDraw(1.0, 1.0, 1.0, 0.0, tuple(BandDomain() for _ in range(n_bands)))


def domain_stream(seed: int, object_id: int) -> np.random.Generator:
    """The instrument generator of one object (the third child of its seed sequence)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(object_id)]).spawn(3)[2])


def draw_domain(seed: int, object_id: int, n_bands: int, config: SimulationConfig) -> DomainDraw:
    """Draw the instrument of object ``object_id`` (pure: same inputs, same draw)."""
    if not config.varies_instrument:
        return standard_domain(n_bands)
    rng = domain_stream(seed, object_id)
    # fixed order and number of draws: one shared and n_bands per-band uniforms per quantity
    uniforms = rng.random((4, 1 + n_bands))
    jitter = config.band_jitter
    per_band: dict[str, list[float]] = {}
    shared: dict[str, float] = {}
    for row, name in enumerate(("noise_scale", "psf_scale", "flux_scale", "sky_offset")):
        low, high = getattr(config, name)
        logarithmic = name != "sky_offset"
        values = [_from_unit(u, low, high, logarithmic) for u in uniforms[row]]
        shared[name] = values[0]
        per_band[name] = [_mix(values[0], v, jitter, low, high, logarithmic) for v in values[1:]]
    bands = tuple(
        BandDomain(*(per_band[name][b] for name in ("noise_scale", "psf_scale", "flux_scale", "sky_offset")))
        for b in range(n_bands)
    )
    return DomainDraw(bands=bands, **shared)


def _from_unit(u: float, low: float, high: float, logarithmic: bool) -> float:
    """Map a uniform deviate in [0, 1) into [low, high] (log-uniformly or uniformly); low if equal."""
    if low == high:
        return low
    if logarithmic:
        return float(min(high, math.exp(math.log(low) + u * (math.log(high) - math.log(low)))))
    return float(low + u * (high - low))


def _mix(shared: float, own: float, jitter: float, low: float, high: float, logarithmic: bool) -> float:
    """A band's value between the shared one and its own (geometric or linear mean), within range."""
    if low == high:
        return low
    if logarithmic:
        value = math.exp((1.0 - jitter) * math.log(shared) + jitter * math.log(own))
    else:
        value = (1.0 - jitter) * shared + jitter * own
    return float(min(high, max(low, value)))
