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

import math
from dataclasses import dataclass

from pipeline.errors import LenshuntError

MAG_ZERO_POINT = 0.0
"""AB magnitude of an object whose pixels sum to 1."""

LENS_RULE = "n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20"
"""The simulator's definition of a lens (the second challenge's rule); ``is_lens`` follows it."""

NEGATIVE_KINDS = ("elliptical", "ring", "spiral", "merger", "companion")
"""Kinds of non-lens scenes; rings, spirals, mergers and ellipticals with blue companions are the
hard negatives. A mix of four weights (sets made before ``companion`` existed) means companion 0."""


class SimulationError(LenshuntError, ValueError):
    """A simulation was asked for with settings that cannot work (bad fraction, id clash, ...)."""


def flux_from_magnitude(magnitude: float) -> float:
    """Total pixel sum of an object of AB ``magnitude`` (zero point :data:`MAG_ZERO_POINT`)."""
    return float(10.0 ** (-0.4 * (magnitude - MAG_ZERO_POINT)))


Range = tuple[float, float]
"""A closed interval (low, high); low == high fixes the value."""

INSTRUMENT_FIELDS = ("noise_scale", "psf_scale", "flux_scale", "sky_offset")
"""Config fields drawn per object and band by :mod:`pipeline.simulate.domain` (the instrument)."""

_MOFFAT = ("moffat_fraction", "moffat_beta_range")
"""Config fields of the per-object PSF profile (render's ``_moffat_beta``)."""

_LOG_RANGES = (
    "negative_scale",
    "noise_scale",
    "psf_scale",
    "flux_scale",
    "theta_e_range",
    "source_r_eff_range",
    "neighbour_scale",
)
_LINEAR_RANGES = (
    "sky_offset",
    "negative_mag_offset",
    "spiral_knots",
    "spiral_lopsided",
    "moffat_beta_range",
    "source_offset_range",
    "source_mag_range",
    "source_colour_range",
    "lens_sersic_range",
    "lens_colour_range",
)


@dataclass(frozen=True)
class SimulationConfig:
    """What a simulated set contains, and the ranges its instrument and population are drawn from.

    The defaults give the standard sets; widening the instrument and population ranges gives
    domain-randomised training sets, and fixing an instrument range away from 1 (low == high)
    gives a *shifted* set: with the same seed it holds the same scenes and noise deviates as the
    default set, observed through another instrument (see :mod:`pipeline.simulate.domain`).

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
        Relative frequencies of the non-lens kinds, in the order of :data:`NEGATIVE_KINDS`; four
        weights (the kinds before ``companion``) give companion the weight 0, so earlier sets
        are drawn again exactly.
    mask_fraction
        Fraction of objects given masked regions when the layout has a masked value.
    neighbour_density_per_arcsec2, star_density_per_arcsec2
        Mean surface densities of field galaxies and stars around the central object.
    noise_scale
        Range of the factor on each band's sky noise sigma (and shot noise), log-uniform.
    psf_scale
        Range of the factor on each band's PSF FWHM, log-uniform.
    flux_scale
        Range of the factor on all pixel values (pixel unit / zero point), log-uniform; the FITS
        header's ``MAGZP`` becomes ``2.5 log10(flux_scale)``. Catalog fluxes stay unscaled.
    sky_offset
        Range of an additive background per band, in units of that band's (scaled) noise sigma,
        uniform.
    moffat_fraction
        Fraction of objects observed through a Moffat PSF (every band, same FWHM) instead of each
        band's own profile (Gaussian for space-based bands): real PSFs have wings, which spread
        the lens light over the arcs. Drawn from a sixth child of the object's seed sequence, and
        only when > 0, so sets without it are drawn again exactly.
    moffat_beta_range
        Moffat power index of those objects, uniform (smaller: broader wings; 2.5-4.5 is typical
        of seeing, Trujillo et al. 2001, MNRAS 328, 977).
    band_jitter
        How independently the bands draw the four instrument factors, in [0, 1]: each object
        draws one shared value ``s`` and one value ``u_b`` per band from the range, and band b
        gets ``s ** (1 - band_jitter) * u_b ** band_jitter`` (log ranges) or
        ``(1 - band_jitter) * s + band_jitter * u_b`` (sky offset). 0: all bands share one
        value; 1: independent bands. Values always stay inside the range.
    theta_e_range
        Einstein radii of lenses in arcsec, log-uniform; also sets the sizes and brightnesses
        of the elliptical non-lenses (which follow the same Faber-Jackson-like relation).
    source_r_eff_range
        Half-light radii of lensed sources in arcsec, uniform.
    source_offset_range
        Distance of (non-weak) sources from the lens centre in units of the Einstein radius,
        uniform in area between the two values. 0-1 is the whole multiple-imaging region of a
        singular isothermal sphere (every offset below theta_E gives two images); the default
        0-0.7 keeps to the highly magnified inner part (arcs and rings, not doubles).
    negative_scale
        Range of a per-object factor on the angular size of the hard negatives (rings, spirals,
        mergers, companions: every size and every distance from the central galaxy), log-uniform.
        The standard kinds put their structure 0.6-2.5" from the centre; a factor down to 0.4 makes
        them cover the smallest Einstein radii too (distant spirals with barely resolved arms,
        small rings, close pairs), where they look most like lenses.
    negative_scale_fraction
        Share of the hard negatives that draw a factor from ``negative_scale``; the others keep
        their own size (factor 1). Below 1, a preset can add large (and, with
        ``negative_scale_brightens``, bright) look-alikes while keeping the standard ones.
    negative_scale_brightens
        With ``negative_scale``: the hard negatives' fluxes grow with their area (``scale**2``:
        the same galaxy nearer, surface brightness kept), so a factor 4 makes them 3.0 mag
        brighter and 4x larger, as the large, bright spirals, rings and discs of a blind survey
        sample are. False (the default) keeps their total flux, so a larger factor spreads the
        same light thinner.
    negative_mag_offset
        Range of a per-object offset in mag on every component of the hard negatives (rings,
        spirals, mergers, companions; after any resizing), uniform: the same scene nearer (< 0)
        or further (> 0) with its size kept, so a look-alike's brightness does not follow its
        kind or size. Plain ellipticals keep theirs (they follow the lens galaxies). The catalog
        columns drawn from a look-alike's light (``mag_lens``, ``lens_flux``, ``n_pix_lens``, and
        ``star_mass`` and ``halo_mass``, which follow it) change with it.
    spiral_knots
        Range of the number of star-forming (HII) knots on a spiral's arms, uniform integers.
    spiral_lopsided
        Range of the amplitude of a spiral disc's m = 1 mode (lopsidedness), uniform. Knots and
        lopsidedness make spirals as asymmetric as real ones (Conselice 2003); both come from a
        child stream of their own, drawn only when either range is not 0 0.
    source_mag_range
        Reference-band magnitudes of (non-weak) lensed sources, uniform; with the radii this
        sets their surface brightness.
    source_colour_range
        Colour slopes of sources in mag per octave of wavelength (> 0: red), uniform.
    lens_sersic_range
        Sersic indices of lens and elliptical galaxies, uniform.
    lens_colour_range
        Colour slopes of lens and elliptical galaxies in mag per octave, uniform.
    neighbour_scale
        Range of a per-object factor on the neighbour and star densities, log-uniform.

    Raises
    ------
    SimulationError
        A fraction outside [0, 1], a bad mix, or a range that is not (low, high) with
        low <= high (and low > 0 for factors and radii).
    """

    lens_fraction: float = 0.5
    failed_lens_fraction: float = 0.15
    negative_mix: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2, 0.0)
    mask_fraction: float = 0.25
    neighbour_density_per_arcsec2: float = 0.01
    star_density_per_arcsec2: float = 0.0015
    noise_scale: Range = (1.0, 1.0)
    psf_scale: Range = (1.0, 1.0)
    flux_scale: Range = (1.0, 1.0)
    sky_offset: Range = (0.0, 0.0)
    band_jitter: float = 0.25
    theta_e_range: Range = (0.5, 2.0)
    source_r_eff_range: Range = (0.08, 0.35)
    source_offset_range: Range = (0.0, 0.7)
    negative_scale: Range = (1.0, 1.0)
    negative_scale_fraction: float = 1.0
    negative_scale_brightens: bool = False
    negative_mag_offset: Range = (0.0, 0.0)
    spiral_knots: Range = (0.0, 0.0)
    spiral_lopsided: Range = (0.0, 0.0)
    moffat_fraction: float = 0.0
    moffat_beta_range: Range = (2.0, 5.0)
    source_mag_range: Range = (21.8, 24.5)
    source_colour_range: Range = (-0.3, 0.5)
    lens_sersic_range: Range = (3.0, 5.0)
    lens_colour_range: Range = (1.2, 1.8)
    neighbour_scale: Range = (1.0, 1.0)

    def __post_init__(self) -> None:
        fractions = ("lens_fraction", "failed_lens_fraction", "mask_fraction", "band_jitter", _MOFFAT[0])
        for name in (*fractions, "negative_scale_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SimulationError(f"{name} must lie in [0, 1], got {value}; pass a fraction such as 0.5")
        mix = tuple(self.negative_mix) if isinstance(self.negative_mix, (tuple, list)) else ()
        if len(mix) == len(NEGATIVE_KINDS) - 1:
            object.__setattr__(self, "negative_mix", (*mix, 0.0))
        if (
            len(self.negative_mix) != len(NEGATIVE_KINDS)
            or not all(math.isfinite(w) and w >= 0 for w in self.negative_mix)
            or not 0 < sum(self.negative_mix) < math.inf
        ):
            raise SimulationError(
                f"negative_mix must be {len(NEGATIVE_KINDS)} finite non-negative weights for "
                f"{NEGATIVE_KINDS} (or the first {len(NEGATIVE_KINDS) - 1}) with a positive, finite "
                f"sum, got {self.negative_mix}"
            )
        for name in ("neighbour_density_per_arcsec2", "star_density_per_arcsec2"):
            if getattr(self, name) < 0:
                raise SimulationError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (*_LOG_RANGES, *_LINEAR_RANGES):
            object.__setattr__(self, name, _check_range(name, getattr(self, name), name in _LOG_RANGES))
        if self.moffat_fraction == 0.0 and self.moffat_beta_range != SimulationConfig.moffat_beta_range:
            raise SimulationError(
                "moffat_beta_range is the index of the objects moffat_fraction draws a Moffat PSF for; "
                "with moffat_fraction 0 it does nothing: give a fraction too"
            )
        if self.negative_scale_fraction == 0.0:
            raise SimulationError(
                "negative_scale_fraction 0 resizes no hard negative; set negative_scale to 1 1 for none"
            )
        scaled = {"negative_scale_brightens": self.negative_scale_brightens}
        scaled["negative_scale_fraction"] = self.negative_scale_fraction != 1.0
        for name in (name for name, used in scaled.items() if used):
            if self.negative_scale == (1.0, 1.0):
                raise SimulationError(
                    f"{name} acts on the hard negatives that negative_scale resizes; with negative_scale "
                    "1 1 it does nothing: give a scale range too (e.g. 1 4)"
                )
        if not all(float(k).is_integer() for k in self.spiral_knots):
            raise SimulationError(
                f"spiral_knots is a number of knots: give whole numbers, got {self.spiral_knots}"
            )
        for name, (low, high, unit) in _PLAUSIBLE.items():
            value = getattr(self, name)
            if value[0] < low or value[1] > high:
                raise SimulationError(
                    f"{name} must lie within [{low:g}, {high:g}]{unit}, got {format_setting(value)}"
                )

    @property
    def varies_instrument(self) -> bool:
        """Whether any instrument factor differs from the standard instrument (then the catalog
        and FITS headers record the drawn values)."""
        return any(getattr(self, name) != _IDENTITY[name] for name in INSTRUMENT_FIELDS)

    def describe_ranges(self) -> str:
        """The instrument and population settings that differ from the defaults ('' if none)."""
        default = SimulationConfig()
        names = (*INSTRUMENT_FIELDS, *_MOFFAT, "band_jitter", *_POPULATION_FIELDS)
        changed = [name for name in names if getattr(self, name) != getattr(default, name)]
        if not any(name in INSTRUMENT_FIELDS for name in changed) and "band_jitter" in changed:
            changed.remove("band_jitter")  # jitter means nothing without an instrument range
        return " ".join(f"{name}={format_setting(getattr(self, name))}" for name in changed)


def format_setting(value: object) -> str:
    """A setting as the summaries print it: ranges as ``low,high``, floats with ``%g``."""
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


_IDENTITY = {
    "noise_scale": (1.0, 1.0),
    "psf_scale": (1.0, 1.0),
    "flux_scale": (1.0, 1.0),
    "sky_offset": (0.0, 0.0),
}


def _check_range(name: str, value: object, positive: bool) -> Range:
    """``value`` as a (low, high) tuple of floats, or :class:`SimulationError` saying the fix."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise SimulationError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise SimulationError(
            f"{name} must be finite with low <= high, got ({low}, {high}); swap or fix them"
        )
    if positive and low <= 0:
        raise SimulationError(f"{name} is a positive factor or size; got low = {low} <= 0")
    return (low, high)


_PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    # trial: --flux-scale 1e300 ended in a FITSIO error (inf pixels), 1e-45 wrote all-zero images
    "flux_scale": (1e-20, 1e20, " (pixels are float32)"),
    "noise_scale": (1e-12, 1000.0, ""),  # tests draw noise-free scenes with 1e-6
    "psf_scale": (0.1, 10.0, ""),
    "sky_offset": (-1000.0, 1000.0, " sigma"),
    "theta_e_range": (0.01, 30.0, " arcsec"),
    "source_r_eff_range": (0.005, 5.0, " arcsec"),
    "source_offset_range": (0.0, 1.5, " theta_E"),
    "negative_scale": (0.1, 4.0, ""),
    "negative_mag_offset": (-5.0, 5.0, " mag"),
    "spiral_knots": (0.0, 50.0, " knots"),
    "spiral_lopsided": (0.0, 0.9, ""),
    "moffat_beta_range": (1.2, 50.0, ""),
    "source_mag_range": (10.0, 35.0, " AB mag"),
    "source_colour_range": (-5.0, 5.0, ""),
    "lens_colour_range": (-5.0, 5.0, ""),
    "lens_sersic_range": (0.3, 10.0, ""),
}
"""Population ranges outside which a scene is no galaxy (or no arithmetic): refused with the bounds."""


_POPULATION_FIELDS = (
    "theta_e_range",
    "source_r_eff_range",
    "source_offset_range",
    "negative_scale",
    "negative_scale_fraction",
    "negative_scale_brightens",
    "negative_mag_offset",
    "spiral_knots",
    "spiral_lopsided",
    "source_mag_range",
    "source_colour_range",
    "lens_sersic_range",
    "lens_colour_range",
    "neighbour_scale",
    "negative_mix",
)
