"""Parameter records of simulated objects: what was drawn, in arcsec, AB mag and radians.

Positions are arcseconds from the image centre (``x`` along columns, ``y`` along rows); angles
are radians from the x axis; magnitudes are AB in the layout's first (reference) band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Sed:
    """Magnitude in the reference (first) band and colour slope in mag per octave (>0: red)."""

    mag: float
    slope: float

    def mag_at(self, wavelength_nm: float, reference_nm: float) -> float:
        return self.mag - self.slope * math.log2(wavelength_nm / reference_nm)


@dataclass(frozen=True)
class SersicDraw:
    """An elliptical Sersic light profile; ``r_eff`` is the product-average half-light radius."""

    x: float
    y: float
    r_eff: float
    n: float
    q: float
    phi: float
    sed: Sed


@dataclass(frozen=True)
class MassDraw:
    """A singular isothermal ellipsoid plus external shear."""

    x: float
    y: float
    theta_e: float
    q: float
    phi: float
    gamma_ext: float
    phi_ext: float


@dataclass(frozen=True)
class ClumpDraw:
    """A Gaussian star-forming clump, offset from the source centre; ``fraction`` of clump flux."""

    dx: float
    dy: float
    sigma: float
    fraction: float


@dataclass(frozen=True)
class SourceDraw:
    """A background galaxy: a Sersic (``smooth``, centred at the source position) plus clumps."""

    z: float
    source_id: int
    smooth: SersicDraw
    clumps: tuple[ClumpDraw, ...]
    clump_sed: Sed | None


@dataclass(frozen=True)
class RingDraw:
    """A (blue) star-forming ring: elliptical Gaussian annulus with knots and lopsidedness."""

    x: float
    y: float
    radius: float
    width: float
    q: float
    phi: float
    lopsided: float
    lopsided_angle: float
    knots: tuple[tuple[float, float], ...]
    sed: Sed


@dataclass(frozen=True)
class SpiralDraw:
    """An exponential disc whose light is concentrated in logarithmic spiral arms.

    ``knots`` are star-forming (HII) regions on the arms, each ``(radius, arm, amplitude)``: its
    distance from the centre in scale lengths, the arm it sits on, and its peak over the disc's
    surface brightness there; ``lopsided`` is the amplitude of an m = 1 mode of the disc at position
    angle ``lopsided_angle`` [rad] in the disc plane. Both break the point symmetry of a two-armed
    disc, as real spirals' do (median asymmetry index A ~ 0.15 against ~0.02 for ellipticals:
    Conselice 2003, ApJS 147, 1; lopsidedness A1 ~ 0.1, a third above 0.2: Zaritsky & Rix 1997,
    ApJ 477, 118).
    """

    x: float
    y: float
    scale_length: float
    q: float
    phi: float
    n_arms: int
    pitch: float
    arm_phase: float
    sharpness: float
    sed: Sed
    knots: tuple[tuple[float, int, float], ...] = ()
    lopsided: float = 0.0
    lopsided_angle: float = 0.0


@dataclass(frozen=True)
class ArcDraw:
    """A tidal tail: a tapered Gaussian tube along a circular arc around (cx, cy)."""

    cx: float
    cy: float
    radius: float
    angle_start: float
    angle_span: float
    width: float
    sed: Sed


@dataclass(frozen=True)
class StarDraw:
    x: float
    y: float
    sed: Sed


@dataclass(frozen=True)
class MaskDraw:
    """A masked region: a circle (x, y, size = radius) or a stripe through (x, y) of width size."""

    kind: str
    x: float
    y: float
    size: float
    horizontal: bool
    band_indices: tuple[int, ...]


Feature = RingDraw | SpiralDraw | ArcDraw | SersicDraw
"""Light beside the central galaxy that belongs to its kind (a SersicDraw: a satellite galaxy)."""


@dataclass(frozen=True)
class ObjectDraw:
    """Everything drawn for one object; ``kind`` is ``lens``, ``weak_lens`` or a negative kind."""

    object_id: int
    kind: str
    ra_deg: float
    dec_deg: float
    z_lens: float
    central: tuple[SersicDraw, ...]
    mass: MassDraw | None
    source: SourceDraw | None
    features: tuple[Feature, ...]
    neighbours: tuple[SersicDraw, ...]
    stars: tuple[StarDraw, ...]
    masks: tuple[MaskDraw, ...]
    psf_deviate: float


@dataclass(frozen=True)
class FieldSpec:
    """What the draws need to know of the layout."""

    half_width_arcsec: float
    n_bands: int
    masked: bool
