"""Seeded draws of what each simulated object contains (parameters only; nothing is rendered).

Every object has its own random stream, ``SeedSequence([seed, object_id])``, so an object's draw
and noise do not depend on which other objects are simulated with it or on how the work is split.
The first child stream draws the scene (:func:`draw_object`), the second the noise, a third
the instrument (:mod:`pipeline.simulate.domain`). Population ranges come from the config.

Examples
--------
>>> field = FieldSpec(half_width_arcsec=10.0, n_bands=4, masked=False)
>>> draw = draw_object(100000, seed=0, field=field, config=SimulationConfig())
>>> draw == draw_object(100000, seed=0, field=field, config=SimulationConfig())
True
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.simulate.config import NEGATIVE_KINDS, SimulationConfig
from pipeline.simulate.draws import (
    ArcDraw,
    ClumpDraw,
    Feature,
    FieldSpec,
    MaskDraw,
    MassDraw,
    ObjectDraw,
    RingDraw,
    Sed,
    SersicDraw,
    SourceDraw,
    SpiralDraw,
    StarDraw,
)
from pipeline.simulate.rescale import rescaled, shifted_mag
from pipeline.simulate.spiral import with_spiral_structure


def object_streams(seed: int, object_id: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The (scene, noise) generators of one object."""
    scene, noise = np.random.SeedSequence([int(seed), int(object_id)]).spawn(2)
    return np.random.default_rng(scene), np.random.default_rng(noise)


def draw_object(object_id: int, seed: int, field: FieldSpec, config: SimulationConfig) -> ObjectDraw:
    """Draw the scene of object ``object_id`` (pure: same inputs, same draw)."""
    rng, _ = object_streams(seed, object_id)
    ra = 150.0 + rng.uniform(-2.0, 2.0)
    dec = 2.0 + rng.uniform(-2.0, 2.0)
    psf_deviate = float(rng.standard_normal())
    z_lens = float(rng.uniform(0.2, 0.9))
    mass = source = None
    features: tuple[Feature, ...] = ()
    if rng.random() < config.lens_fraction:
        weak = rng.random() < config.failed_lens_fraction
        kind = "weak_lens" if weak else "lens"
        mass, central, source = _draw_lens(rng, z_lens, weak, config)
    else:
        weights = np.asarray(config.negative_mix, dtype=float)
        kind = NEGATIVE_KINDS[int(rng.choice(len(NEGATIVE_KINDS), p=weights / weights.sum()))]
        central, features = _NEGATIVE_DRAWERS[kind](rng, z_lens, config)
        if kind == "spiral":
            features = _spiral_structure(seed, object_id, features, config)
        if kind != "elliptical":
            scale = _negative_scale(seed, object_id, config)
            central, features = rescaled(central, features, scale, config.negative_scale_brightens)
            offset = _negative_mag_offset(seed, object_id, config.negative_mag_offset)
            central, features = shifted_mag(central, offset), shifted_mag(features, offset)
    crowding = _crowding(seed, object_id, config.neighbour_scale)
    neighbours, stars = _draw_field(rng, field, config, crowding)
    masks = _draw_masks(rng, field, config) if field.masked else ()
    return ObjectDraw(
        object_id=int(object_id),
        kind=kind,
        ra_deg=float(ra),
        dec_deg=float(dec),
        z_lens=z_lens,
        central=central,
        mass=mass,
        source=source,
        features=features,
        neighbours=neighbours,
        stars=stars,
        masks=masks,
        psf_deviate=psf_deviate,
    )


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _elliptical(
    rng: np.random.Generator, z: float, theta_e: float, q: float, phi: float, config: SimulationConfig
) -> SersicDraw:
    """A red early-type galaxy whose brightness and size follow its Einstein radius (Faber-Jackson)."""
    mag = 19.9 - 2.5 * math.log10(theta_e) + 2.0 * (z - 0.5) + rng.normal(0.0, 0.3)
    r_eff = float(np.clip(theta_e * rng.uniform(0.5, 1.1), 0.3, 2.2))
    return SersicDraw(
        x=float(rng.normal(0.0, 0.03)),
        y=float(rng.normal(0.0, 0.03)),
        r_eff=r_eff,
        n=float(rng.uniform(*config.lens_sersic_range)),
        q=float(np.clip(q + rng.normal(0.0, 0.05), 0.4, 1.0)),
        phi=float(phi + rng.normal(0.0, 0.1)),
        sed=Sed(float(mag), float(rng.uniform(*config.lens_colour_range))),
    )


def _draw_lens(
    rng: np.random.Generator, z_lens: float, weak: bool, config: SimulationConfig
) -> tuple[MassDraw, tuple[SersicDraw], SourceDraw]:
    theta_e = _log_uniform(rng, config.theta_e_range)
    q = float(rng.uniform(0.6, 0.95))
    phi = float(rng.uniform(0.0, math.pi))
    galaxy = _elliptical(rng, z_lens, theta_e, q, phi, config)
    mass = MassDraw(
        x=galaxy.x,
        y=galaxy.y,
        theta_e=theta_e,
        q=q,
        phi=phi,
        gamma_ext=float(rng.uniform(0.0, 0.08)),
        phi_ext=float(rng.uniform(0.0, math.pi)),
    )
    weak_mode = rng.integers(2) if weak else -1
    if weak_mode == 1:  # outside the caustic: one mildly magnified image
        offset = theta_e * rng.uniform(1.8, 3.0)
    else:  # uniform in area within config.source_offset_range theta_E: arcs, rings, quads, doubles
        low, high = config.source_offset_range
        if low == 0.0:  # the standard sets' expression, bit for bit
            offset = theta_e * high * math.sqrt(rng.uniform(0.0, 1.0))
        else:
            offset = theta_e * math.sqrt(low * low + (high * high - low * low) * rng.uniform(0.0, 1.0))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    mag_source = rng.uniform(27.5, 29.5) if weak_mode == 0 else rng.uniform(*config.source_mag_range)
    source = _draw_source(
        rng,
        z=z_lens + float(rng.uniform(0.4, 2.2)),
        x=mass.x + offset * math.cos(angle),
        y=mass.y + offset * math.sin(angle),
        mag=float(mag_source),
        config=config,
    )
    return mass, (galaxy,), source


def _draw_source(
    rng: np.random.Generator, z: float, x: float, y: float, mag: float, config: SimulationConfig
) -> SourceDraw:
    r_eff = float(rng.uniform(*config.source_r_eff_range))
    n_clumps = int(rng.integers(0, 5))
    slope = float(rng.uniform(*config.source_colour_range))
    clump_fraction = float(rng.uniform(0.15, 0.5)) if n_clumps else 0.0
    shares = rng.dirichlet(np.ones(n_clumps)) if n_clumps else np.zeros(0)
    clumps = tuple(
        ClumpDraw(
            dx=float(rng.normal(0.0, r_eff)),
            dy=float(rng.normal(0.0, r_eff)),
            sigma=float(rng.uniform(0.02, 0.06)),
            fraction=float(share),
        )
        for share in shares
    )
    smooth_mag = mag - 2.5 * math.log10(1.0 - clump_fraction)
    smooth = SersicDraw(
        x=float(x),
        y=float(y),
        r_eff=r_eff,
        n=float(rng.uniform(0.6, 1.5)),
        q=float(rng.uniform(0.4, 1.0)),
        phi=float(rng.uniform(0.0, math.pi)),
        sed=Sed(float(smooth_mag), slope),
    )
    clump_sed = (
        Sed(float(mag - 2.5 * math.log10(clump_fraction)), slope - float(rng.uniform(0.2, 0.6)))
        if n_clumps
        else None
    )
    return SourceDraw(
        z=float(z), source_id=int(rng.integers(1, 10**7)), smooth=smooth, clumps=clumps, clump_sed=clump_sed
    )


def _draw_elliptical(
    rng: np.random.Generator, z: float, config: SimulationConfig
) -> tuple[tuple[SersicDraw, ...], tuple[Feature, ...]]:
    theta_e = _log_uniform(rng, config.theta_e_range)
    return (_elliptical(rng, z, theta_e, rng.uniform(0.5, 0.95), rng.uniform(0.0, math.pi), config),), ()


def _small_sersic(rng: np.random.Generator, x: float, y: float, mag: float, slope: float, n_range=(1.0, 4.0)):
    return SersicDraw(
        x=float(x),
        y=float(y),
        r_eff=float(rng.uniform(0.2, 0.6)),
        n=float(rng.uniform(*n_range)),
        q=float(rng.uniform(0.5, 1.0)),
        phi=float(rng.uniform(0.0, math.pi)),
        sed=Sed(float(mag), float(slope)),
    )


def _draw_ring(
    rng: np.random.Generator, z: float, config: SimulationConfig
) -> tuple[tuple[SersicDraw, ...], tuple[Feature, ...]]:
    core_mag = float(rng.uniform(19.8, 22.0))
    core = _small_sersic(
        rng, rng.normal(0, 0.03), rng.normal(0, 0.03), core_mag, rng.uniform(0.8, 1.5), (1.5, 4.0)
    )
    n_knots = int(rng.integers(0, 7))
    ring = RingDraw(
        x=core.x,
        y=core.y,
        radius=float(rng.uniform(0.6, 2.0)),
        width=float(rng.uniform(0.08, 0.3)),
        q=float(rng.uniform(0.5, 1.0)),
        phi=float(rng.uniform(0.0, math.pi)),
        lopsided=float(rng.uniform(0.0, 0.9)),
        lopsided_angle=float(rng.uniform(0.0, 2.0 * math.pi)),
        knots=tuple(
            (float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.5, 3.0))) for _ in range(n_knots)
        ),
        sed=Sed(core_mag + float(rng.uniform(-0.3, 1.5)), float(rng.uniform(-0.3, 0.4))),
    )
    return (core,), (ring,)


def _draw_spiral(
    rng: np.random.Generator, z: float, config: SimulationConfig
) -> tuple[tuple[SersicDraw, ...], tuple[Feature, ...]]:
    bulge_mag = float(rng.uniform(20.5, 22.5))
    bulge = _small_sersic(rng, rng.normal(0, 0.03), rng.normal(0, 0.03), bulge_mag, rng.uniform(1.0, 1.5))
    disc = SpiralDraw(
        x=bulge.x,
        y=bulge.y,
        scale_length=float(rng.uniform(0.4, 1.2)),
        q=float(rng.uniform(0.4, 1.0)),
        phi=float(rng.uniform(0.0, math.pi)),
        n_arms=int(rng.choice([2, 2, 3])),
        pitch=float(np.radians(rng.uniform(12.0, 30.0))),
        arm_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        sharpness=float(rng.uniform(2.0, 6.0)),
        sed=Sed(bulge_mag - float(rng.uniform(0.0, 1.5)), float(rng.uniform(0.1, 0.7))),
    )
    return (bulge,), (disc,)


def _draw_merger(
    rng: np.random.Generator, z: float, config: SimulationConfig
) -> tuple[tuple[SersicDraw, ...], tuple[Feature, ...]]:
    separation = float(rng.uniform(0.8, 2.5))
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    first = _small_sersic(
        rng,
        -0.4 * separation * math.cos(angle),
        -0.4 * separation * math.sin(angle),
        rng.uniform(20.3, 22.0),
        rng.uniform(0.5, 1.5),
    )
    second = _small_sersic(
        rng,
        0.6 * separation * math.cos(angle),
        0.6 * separation * math.sin(angle),
        rng.uniform(20.8, 22.8),
        rng.uniform(0.3, 1.5),
    )
    tails = []
    for _ in range(int(rng.integers(1, 3))):
        host = first if rng.random() < 0.6 else second
        tails.append(
            ArcDraw(
                cx=host.x,
                cy=host.y,
                radius=float(rng.uniform(1.0, 2.5)),
                angle_start=float(rng.uniform(0.0, 2.0 * math.pi)),
                angle_span=float(np.radians(rng.uniform(40.0, 140.0))),
                width=float(rng.uniform(0.1, 0.3)),
                sed=Sed(host.sed.mag + float(rng.uniform(0.5, 2.5)), float(rng.uniform(0.0, 0.8))),
            )
        )
    return (first, second), tuple(tails)


def _draw_companion(
    rng: np.random.Generator, z: float, config: SimulationConfig
) -> tuple[tuple[SersicDraw, ...], tuple[Feature, ...]]:
    """A red early-type galaxy with one to three small, blue, star-forming satellites.

    The commonest false positives of lens searches besides spirals and rings: an early-type
    galaxy with blue companions at arc-like separations (Jacobs et al. 2019, ApJS 243, 17;
    Petrillo et al. 2019, MNRAS 482, 807; Canameras et al. 2021, A&A 653, L6). The host is drawn
    exactly like a lens galaxy; each satellite is a disc-like Sersic (n 0.5-1.5) of 0.08-0.4"
    half-light radius, 0.5-3.5" from the host, 1.5-5 mag fainter and bluer (source colours, at least
    0.3 mag per octave bluer than the host), often elongated (q 0.2-1), with
    the major axis tangential to the host in half of the draws (chance alignments: the ones that
    look like an arc without a counter-image) and random otherwise.
    """
    (host,), _ = _draw_elliptical(rng, z, config)
    satellites = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
        separation = float(rng.uniform(0.5, 3.5))
        angle = float(rng.uniform(0.0, 2.0 * math.pi))
        tangential = rng.random() < 0.5
        phi = angle + math.pi / 2.0 if tangential else float(rng.uniform(0.0, math.pi))
        satellites.append(
            SersicDraw(
                x=host.x + separation * math.cos(angle),
                y=host.y + separation * math.sin(angle),
                r_eff=float(rng.uniform(0.08, 0.4)),
                n=float(rng.uniform(0.5, 1.5)),
                q=float(rng.uniform(0.2, 1.0)),
                phi=float(np.mod(phi, math.pi)),
                sed=Sed(
                    host.sed.mag + float(rng.uniform(1.5, 5.0)),
                    min(float(rng.uniform(*config.source_colour_range)), host.sed.slope - 0.3),
                ),
            )
        )
    return (host,), tuple(satellites)


_NEGATIVE_DRAWERS = {
    "elliptical": _draw_elliptical,
    "ring": _draw_ring,
    "spiral": _draw_spiral,
    "merger": _draw_merger,
    "companion": _draw_companion,
}


def child_stream(seed: int, object_id: int, index: int) -> np.random.Generator:
    """Child ``index`` of the object's seed sequence (0 scene, 1 noise, 2 instrument, 3 crowding,
    4 negative scale, 5 PSF profile, 6 negative magnitude offset, 7 spiral knots and lopsidedness):
    a stream of its own, so drawing from it leaves the others as they were."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(object_id)]).spawn(index + 1)[index])


def _child_log_uniform(seed: int, object_id: int, bounds: tuple[float, float], index: int) -> float:
    """Log-uniform in ``bounds`` from :func:`child_stream` ``index``; drawn only when the range is
    not a single value, so sets without it stay as they were."""
    if bounds[0] == bounds[1]:
        return bounds[0]
    return _log_uniform(child_stream(seed, object_id, index), bounds)


def _crowding(seed: int, object_id: int, bounds: tuple[float, float]) -> float:
    """The object's factor on the neighbour and star densities, log-uniform in ``bounds``."""
    return _child_log_uniform(seed, object_id, bounds, 3)


def _negative_scale(seed: int, object_id: int, config: SimulationConfig) -> float:
    """The object's factor on its hard negative's angular size: log-uniform in
    ``config.negative_scale`` for a share ``config.negative_scale_fraction`` of the objects, else 1.

    Both come from child stream 4: the factor (drawn only for a range), then the share (drawn only
    below 1), so sets made before either existed are drawn again exactly."""
    bounds, share = config.negative_scale, config.negative_scale_fraction
    if bounds[0] == bounds[1] and share >= 1.0:
        return bounds[0]
    rng = child_stream(seed, object_id, 4)
    scale = bounds[0] if bounds[0] == bounds[1] else _log_uniform(rng, bounds)
    return 1.0 if share < 1.0 and rng.random() >= share else scale


def _spiral_structure(
    seed: int, object_id: int, features: tuple[Feature, ...], config: SimulationConfig
) -> tuple[Feature, ...]:
    """:func:`~pipeline.simulate.spiral.with_spiral_structure` from child stream 7, drawn only when
    ``config.spiral_knots`` or ``config.spiral_lopsided`` is not (0, 0), so sets made before they
    existed are drawn again exactly."""
    if config.spiral_knots == (0.0, 0.0) and config.spiral_lopsided == (0.0, 0.0):
        return features
    rng = child_stream(seed, object_id, 7)
    return with_spiral_structure(features, rng, config.spiral_knots, config.spiral_lopsided)


def _negative_mag_offset(seed: int, object_id: int, bounds: tuple[float, float]) -> float:
    """The object's offset in mag on its hard negative, uniform in ``bounds`` from child stream 6
    (drawn only for a range, so sets made before it existed are drawn again exactly)."""
    if bounds[0] == bounds[1]:
        return bounds[0]
    return float(child_stream(seed, object_id, 6).uniform(*bounds))


def _draw_field(
    rng: np.random.Generator, field: FieldSpec, config: SimulationConfig, crowding: float = 1.0
) -> tuple[tuple[SersicDraw, ...], tuple[StarDraw, ...]]:
    half = field.half_width_arcsec
    area = (2.0 * half) ** 2 * crowding
    neighbours = []
    for _ in range(int(rng.poisson(config.neighbour_density_per_arcsec2 * area))):
        x, y = _position_outside(rng, half, 1.2)
        neighbours.append(
            SersicDraw(
                x=x,
                y=y,
                r_eff=float(10.0 ** rng.uniform(-1.0, math.log10(0.6))),
                n=float(rng.uniform(0.7, 4.0)),
                q=float(rng.uniform(0.3, 1.0)),
                phi=float(rng.uniform(0.0, math.pi)),
                sed=Sed(float(rng.uniform(20.5, 25.5)), float(rng.uniform(-0.3, 1.8))),
            )
        )
    stars = []
    for _ in range(int(rng.poisson(config.star_density_per_arcsec2 * area))):
        x, y = _position_outside(rng, half, 1.5)
        stars.append(
            StarDraw(x=x, y=y, sed=Sed(float(rng.uniform(18.0, 24.0)), float(rng.uniform(-0.5, 1.5))))
        )
    return tuple(neighbours), tuple(stars)


def _position_outside(rng: np.random.Generator, half: float, inner: float) -> tuple[float, float]:
    """A uniform position in the field at least ``inner`` arcsec from the centre."""
    while True:
        x, y = rng.uniform(-half, half, size=2)
        if x * x + y * y >= inner * inner:
            return float(x), float(y)


def _draw_masks(rng: np.random.Generator, field: FieldSpec, config: SimulationConfig) -> tuple[MaskDraw, ...]:
    if rng.random() >= config.mask_fraction:
        return ()
    half = field.half_width_arcsec
    masks = []
    for _ in range(int(rng.integers(1, 3))):
        all_bands = rng.random() < 0.5
        bands = tuple(range(field.n_bands)) if all_bands else (int(rng.integers(field.n_bands)),)
        if rng.random() < 0.6:
            x, y = _position_outside(rng, half, min(3.0, 0.5 * half))
            masks.append(MaskDraw("circle", x, y, float(rng.uniform(0.6, 2.0)), False, bands))
        else:
            offset = float(rng.uniform(min(3.0, 0.5 * half), 0.9 * half)) * (1 if rng.random() < 0.5 else -1)
            horizontal = bool(rng.random() < 0.5)
            masks.append(MaskDraw("stripe", offset, offset, float(rng.uniform(0.3, 0.8)), horizontal, bands))
    return tuple(masks)
