"""Named presets of the simulator's instrument and population ranges, and their overrides.

Examples
--------
>>> domain_config("randomised", noise_scale=(3.0, 3.0)).noise_scale
(3.0, 3.0)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pipeline.simulate.config import NEGATIVE_KINDS, SimulationConfig, SimulationError, format_setting

__all__ = ["DOMAIN_PRESETS", "domain_config", "dropped_preset_settings"]


DOMAIN_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "randomised": {
        "noise_scale": (0.5, 2.0),
        "psf_scale": (0.67, 1.5),
        "flux_scale": (1e-2, 1e2),
        "sky_offset": (-1.0, 1.0),
        "theta_e_range": (0.3, 3.0),
        "source_r_eff_range": (0.05, 0.6),
        "source_mag_range": (21.0, 25.5),
        "source_colour_range": (-0.6, 0.9),
        "lens_sersic_range": (2.0, 6.0),
        "lens_colour_range": (0.6, 2.2),
        "neighbour_scale": (0.5, 3.0),
        # plain ellipticals (the lens galaxies without a source) are the negatives every model
        # confuses with lenses: over half the non-lenses, as measured in bench/RESULTS.md
        # ("Training distribution"): +0.03-0.035 AUROC on every shifted set over equal shares.
        # Ellipticals with blue companions are not drawn: a quarter of them cost 0.02-0.05 AUROC on
        # the shifted sets and did not help against the independent simulator's (same section)
        "negative_mix": (0.55, 0.15, 0.15, 0.15, 0.0),
        # half the rings, spirals and mergers 1.5-4x larger at their surface brightness (0.9-3 mag
        # brighter), as the large, bright look-alikes of a blind sample: without them a model calls
        # every large bright spiral or ring a lens. +0.20 AUROC on the second independent simulator,
        # the other sets within what one seed moves (bench/RESULTS.md, "Science: bright look-alikes")
        "negative_scale": (1.5, 4.0),
        "negative_scale_fraction": 0.5,
        "negative_scale_brightens": True,
    },
}
"""Named settings of the instrument and population ranges (``lenshunt simulate --domain``)."""


def domain_config(
    preset: str = "default", base: SimulationConfig | None = None, **overrides: object
) -> SimulationConfig:
    """A config with the ranges of ``preset``, then ``overrides`` (None values are ignored).

    Parameters
    ----------
    preset
        A key of :data:`DOMAIN_PRESETS`.
    base
        Config whose other settings are kept (default: :class:`SimulationConfig()`).
    overrides
        Config fields, e.g. ``noise_scale=(3.0, 3.0)``. A ``negative_scale`` replaces the preset's
        resizing of the hard negatives as a whole: ``negative_scale_fraction`` and
        ``negative_scale_brightens`` take their defaults (1, False) unless given too.

    Raises
    ------
    SimulationError
        An unknown preset or field, a bad range, or a look-alike setting given (one that changes
        something) with a ``negative_mix`` or ``lens_fraction`` that draws no look-alike (no
        spiral, for the spiral settings).
    """
    if preset not in DOMAIN_PRESETS:
        raise SimulationError(f"unknown domain preset {preset!r}; choose one of {sorted(DOMAIN_PRESETS)}")
    known = {f.name for f in fields(SimulationConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SimulationError(f"unknown simulation settings {unknown}; known: {sorted(known)}")
    values = {f.name: getattr(base or SimulationConfig(), f.name) for f in fields(SimulationConfig)}
    values.update(DOMAIN_PRESETS[preset])
    given = {name: value for name, value in overrides.items() if value is not None}
    values.update(given)
    if "negative_scale" in given:
        # a scale given replaces the preset's resizing as a whole: its share and brightening go
        # back to the defaults unless given too, so commands written before the preset had them
        # (e.g. --domain randomised --negative-scale 0.4 1, or 1 1: the previous preset) draw the
        # same sets as then
        for name in _SCALE_DEPENDENT:
            values[name] = given.get(name, getattr(SimulationConfig, name))
    config = SimulationConfig(**values)
    acting = [name for name in _LOOK_ALIKE_SETTINGS if name in given and given[name] != _UNSET[name]]
    if acting and config.lens_fraction >= 1.0:
        kinds = "spirals" if acting[0].startswith("spiral_") else "rings, spirals, mergers and companions"
        raise SimulationError(
            f"{acting[0]} acts on the {kinds}, but lens_fraction 1 draws no non-lens: lower "
            f"lens_fraction, or drop {acting[0]}"
        )
    if any(not name.startswith("spiral_") for name in acting) and sum(config.negative_mix[1:]) == 0:
        acting = [name for name in acting if not name.startswith("spiral_")]
        raise SimulationError(
            f"{acting[0]} acts on the rings, spirals, mergers and companions, but negative_mix "
            f"{format_setting(config.negative_mix)} draws none of them: give one of those kinds a weight, or "
            f"drop {acting[0]}"
        )
    spiral = [name for name in acting if name.startswith("spiral_")]
    if spiral and config.negative_mix[NEGATIVE_KINDS.index("spiral")] == 0:
        raise SimulationError(
            f"{spiral[0]} acts on the spirals, but negative_mix {format_setting(config.negative_mix)} "
            f"draws none: give spirals (the third weight) a share, or drop {spiral[0]}"
        )
    return config


_LOOK_ALIKE_SETTINGS = (
    "negative_scale",
    "negative_scale_fraction",
    "negative_scale_brightens",
    "negative_mag_offset",
    "spiral_knots",
    "spiral_lopsided",
)
"""Settings that act only on the look-alikes (every non-lens kind but the plain elliptical)."""

_UNSET = {name: getattr(SimulationConfig, name) for name in _LOOK_ALIKE_SETTINGS}
"""Their values that change nothing (a given ``negative_scale`` of 1 1 draws the previous preset)."""


_SCALE_DEPENDENT = ("negative_scale_fraction", "negative_scale_brightens")
"""Settings that act only on the hard negatives ``negative_scale`` resizes."""


def dropped_preset_settings(preset: str, **overrides: object) -> dict[str, Any]:
    """The settings of ``preset`` that a given ``negative_scale`` sets back to their defaults
    (:func:`domain_config`), with the preset's values: ``{}`` when none is dropped."""
    given = {name for name, value in overrides.items() if value is not None}
    if "negative_scale" not in given:
        return {}
    chosen = DOMAIN_PRESETS.get(preset, {})
    return {name: chosen[name] for name in _SCALE_DEPENDENT if name in chosen and name not in given}
