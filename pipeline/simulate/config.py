"""Settings of a simulation run, the simulator's error type and its fixed conventions.

Pixel values are flux-like with an AB magnitude zero point of 0: an object of magnitude ``m``
sums to ``10 ** (-0.4 * m)`` over its pixels. With the default depths this gives sky noise of
about 8e-13 per 0.1" pixel, as measured on the real first-challenge VIS and R cutouts, and bright
galaxy pixels of 1e-11 to 1e-9.

Examples
--------
>>> config = SimulationConfig(lens_fraction=0.3)
>>> config.lens_fraction
0.3
>>> flux_from_magnitude(20.0)
1e-08
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import LenshuntError

MAG_ZERO_POINT = 0.0
"""AB magnitude of an object whose pixels sum to 1."""

LENS_RULE = "n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20"
"""The simulator's definition of a lens (the second challenge's rule); ``is_lens`` follows it."""

NEGATIVE_KINDS = ("elliptical", "ring", "spiral", "merger")
"""Kinds of non-lens scenes; rings, spirals and mergers are the hard negatives."""


class SimulationError(LenshuntError, ValueError):
    """A simulation was asked for with settings that cannot work (bad fraction, id clash, ...)."""


def flux_from_magnitude(magnitude: float) -> float:
    """Total pixel sum of an object of AB ``magnitude`` (zero point :data:`MAG_ZERO_POINT`)."""
    return float(10.0 ** (-0.4 * (magnitude - MAG_ZERO_POINT)))


@dataclass(frozen=True)
class SimulationConfig:
    """What a simulated set contains.

    Parameters
    ----------
    lens_fraction
        Fraction of objects drawn as lenses (a lens galaxy with a source behind it). Labels
        follow :data:`LENS_RULE` evaluated on the rendered object, so the fraction of label-1
        objects is somewhat lower.
    failed_lens_fraction
        Fraction of lens draws made deliberately weak (a very faint source, or a source outside
        the caustic), most of which fail the rule.
    negative_mix
        Relative frequencies of the non-lens kinds, in the order of :data:`NEGATIVE_KINDS`.
    mask_fraction
        Fraction of objects given masked regions when the layout has a masked value.
    neighbour_density_per_arcsec2, star_density_per_arcsec2
        Mean surface densities of field galaxies and stars around the central object.
    """

    lens_fraction: float = 0.5
    failed_lens_fraction: float = 0.15
    negative_mix: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)
    mask_fraction: float = 0.25
    neighbour_density_per_arcsec2: float = 0.01
    star_density_per_arcsec2: float = 0.0015

    def __post_init__(self) -> None:
        for name in ("lens_fraction", "failed_lens_fraction", "mask_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SimulationError(f"{name} must lie in [0, 1], got {value}; pass a fraction such as 0.5")
        if (
            len(self.negative_mix) != len(NEGATIVE_KINDS)
            or min(self.negative_mix) < 0
            or sum(self.negative_mix) <= 0
        ):
            raise SimulationError(
                f"negative_mix must be {len(NEGATIVE_KINDS)} non-negative weights for {NEGATIVE_KINDS} "
                f"with a positive sum, got {self.negative_mix}"
            )
        for name in ("neighbour_density_per_arcsec2", "star_density_per_arcsec2"):
            if getattr(self, name) < 0:
                raise SimulationError(f"{name} must be >= 0, got {getattr(self, name)}")
