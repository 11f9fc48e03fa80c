"""Simulate flow: write a labelled challenge-format set (FITS cutouts + catalog) for a layout."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

from prefect import flow, task

from flows.common import PositiveInt, add_cluster_arguments, cluster_options, log_summary, progress_reporter
from flows.preflight import (
    non_negative_int,
    outside_bundles,
    outside_stores,
    positive_int,
    writable_directory,
)
from pipeline.compute import connect
from pipeline.simulate import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FIRST_ID,
    DOMAIN_PRESETS,
    NEGATIVE_KINDS,
    SimulationConfig,
    SimulationError,
    SimulationSummary,
    domain_config,
    dropped_preset_settings,
    simulate_set,
)
from schemas.layout import available_layouts, load_layout

WRITES_IN = "out"  # a full disk's error names it (flows.cli)
HELP = "simulate a labelled lens-finding set in a layout's exact file and catalog format"

RANGE_OPTIONS = {
    "noise_scale": "factor on each band's sky noise sigma, log-uniform (3 3: a 3x noisier set; default 1 1, "
    "the randomised preset: 0.5 2)",
    "psf_scale": "factor on each band's PSF FWHM, log-uniform (1.5 1.5: a 1.5x blurrier set; default 1 1, "
    "the randomised preset: 0.67 1.5)",
    "flux_scale": "factor on all pixel values (units, zero point), log-uniform (1e12 1e12: counts, ZP 30; "
    "default 1 1, the randomised preset: 0.01 100)",
    "sky_offset": "background added per band, in noise sigmas, uniform (default 0 0, the randomised "
    "preset: -1 1)",
    "theta_e_range": "Einstein radii in arcsec, log-uniform (also elliptical non-lenses' sizes; default "
    "0.5 2, the randomised preset: 0.3 3)",
    "source_mag_range": "lensed sources' total AB magnitude before lensing (reference band), uniform "
    "(default 21.8 24.5, the randomised preset: 21 25.5)",
    "source_r_eff_range": "lensed sources' effective radius in arcsec, uniform (default 0.08 0.35, the "
    "randomised preset: 0.05 0.6)",
    "source_offset_range": "lensed sources' distance from the lens centre in Einstein radii, uniform in "
    "area (0 1: the whole multiple-image region; the default 0 0.7 only the highly magnified part)",
    "moffat_beta_range": "Moffat index of the objects that --moffat-fraction observes through a Moffat "
    "PSF, uniform (default 2 5)",
    "negative_scale": "factor on the angular size of rings, spirals, mergers and companions, log-uniform "
    "(default 1 1; the randomised preset: 1.5 4 for half of them, brightened). Given, it replaces the "
    "preset's resizing: share 1 and fluxes kept unless those flags are given too (1 1: the previous "
    "randomised preset exactly; 0.4 1: down to the smallest Einstein radii)",
    "negative_mag_offset": "offset in mag on every component of rings, spirals, mergers and companions, "
    "uniform, sizes kept (default 0 0; -1 1.5: up to 1 mag brighter or 1.5 mag fainter)",
    "spiral_knots": "number of star-forming (HII) knots on a spiral's arms, uniform integers (default 0 0)",
    "spiral_lopsided": "amplitude of a spiral disc's m=1 mode (lopsidedness), uniform (default 0 0)",
}
"""Range settings of :class:`~pipeline.simulate.SimulationConfig` with their own command-line flag."""


@task(name="simulate-objects")
def simulate_stage(
    layout: str,
    out: str,
    n_objects: int,
    options: dict,
    compute: dict | None,
    config: dict | None = None,
) -> SimulationSummary:
    """One Prefect task for the whole stage; batches fan out on Dask (``compute`` None: in-process).

    ``config`` holds :class:`~pipeline.simulate.SimulationConfig` fields. Not retried: a retry
    after the catalog was written would clash with its own ids.
    """
    options = {**options, "config": SimulationConfig(**(config or {}))}
    with progress_reporter("simulate objects") as progress:
        client_context = connect(**compute) if compute is not None else contextlib.nullcontext()
        with client_context as client:
            return simulate_set(
                load_layout(layout), n_objects, out, client=client, progress=progress, **options
            )


@flow(name="lenshunt-simulate", log_prints=True)
def simulate_flow(
    out: str,
    n_objects: int,
    layout: str = "euclid-sglc2",
    seed: int = 0,
    first_id: int = DEFAULT_FIRST_ID,
    lens_fraction: float = 0.5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    catalog_name: str | None = None,
    overwrite: bool = False,
    in_process: bool = False,
    cluster: str = "local",
    n_workers: PositiveInt | None = None,
    scheduler: str | None = None,
    dashboard: bool = False,
    domain: str = "default",
    noise_scale: tuple[float, float] | None = None,
    psf_scale: tuple[float, float] | None = None,
    flux_scale: tuple[float, float] | None = None,
    sky_offset: tuple[float, float] | None = None,
    theta_e_range: tuple[float, float] | None = None,
    source_mag_range: tuple[float, float] | None = None,
    source_r_eff_range: tuple[float, float] | None = None,
    source_offset_range: tuple[float, float] | None = None,
    negative_scale: tuple[float, float] | None = None,
    negative_mag_offset: tuple[float, float] | None = None,
    spiral_knots: tuple[float, float] | None = None,
    spiral_lopsided: tuple[float, float] | None = None,
    moffat_beta_range: tuple[float, float] | None = None,
    moffat_fraction: float | None = None,
    negative_scale_brightens: bool | None = None,
    negative_scale_fraction: float | None = None,
    negative_mix: tuple[float, ...] | None = None,
    band_jitter: float | None = None,
) -> SimulationSummary:
    """Simulate ``n_objects`` objects of ``layout`` into ``out`` (:func:`pipeline.simulate.simulate_set`).

    ``domain`` names a preset of instrument and population ranges (``default``, ``randomised``);
    ``noise_scale`` ... ``band_jitter`` override single settings of it (None: the preset's).
    """
    load_layout(layout)  # fail before any work on a bad layout
    config = domain_config(
        domain,
        lens_fraction=lens_fraction,
        noise_scale=noise_scale,
        psf_scale=psf_scale,
        flux_scale=flux_scale,
        sky_offset=sky_offset,
        theta_e_range=theta_e_range,
        source_mag_range=source_mag_range,
        source_r_eff_range=source_r_eff_range,
        source_offset_range=source_offset_range,
        negative_scale=negative_scale,
        negative_mag_offset=negative_mag_offset,
        spiral_knots=spiral_knots,
        spiral_lopsided=spiral_lopsided,
        moffat_beta_range=moffat_beta_range,
        moffat_fraction=moffat_fraction,
        negative_scale_brightens=negative_scale_brightens,
        negative_scale_fraction=negative_scale_fraction,
        negative_mix=negative_mix,
        band_jitter=band_jitter,
    )  # fails here, before any work, on a bad range
    fields = dataclasses.asdict(config)
    options = {
        "seed": seed,
        "first_id": first_id,
        "lens_fraction": lens_fraction,
        "batch_size": batch_size,
        "catalog_name": catalog_name,
        "overwrite": overwrite,
    }
    compute = (
        None
        if in_process
        else {
            "cluster": cluster,
            "n_workers": n_workers,
            "scheduler": scheduler,
            "dashboard": dashboard,
        }
    )
    summary = simulate_stage(layout, out, n_objects, options, compute, fields)
    log_summary(summary.summary())
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out", type=Path, help="root directory of the set to write (created; may hold an earlier set)"
    )
    parser.add_argument(
        "--layout",
        default="euclid-sglc2",
        help=f"layout name ({', '.join(available_layouts())}) or YAML path or a store (the layout it "
        "recorded) (default euclid-sglc2)",
    )
    parser.add_argument("--n", type=positive_int, required=True, help="number of objects to simulate")
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="master seed; object i uses SeedSequence([seed, i]) (default 0)",
    )
    parser.add_argument(
        "--first-id",
        type=non_negative_int,
        default=DEFAULT_FIRST_ID,
        help=f"id of the first object (default {DEFAULT_FIRST_ID}); new ids into an existing set add objects",
    )
    parser.add_argument(
        "--lens-fraction",
        type=float,
        default=0.5,
        help="fraction drawn as lenses (labels follow the layout's rule; default 0.5)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"objects per Dask task (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--catalog-name", default=None, help="file name of a new catalog (must match the pattern)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace objects whose ids the catalog has")
    parser.add_argument("--in-process", action="store_true", help="render in this process, without Dask")
    parser.add_argument(
        "--domain",
        default="default",
        choices=sorted(DOMAIN_PRESETS),
        help="instrument and population ranges: default (the standard set) or randomised "
        "(noise 0.5-2x, PSF 0.67-1.5x, pixel units 1e-2-1e2, sky offset +-1 sigma, Einstein radii "
        '0.3-3", wider sources and lens light, 0.5-3x neighbours, 55%% of the non-lenses plain '
        "ellipticals, 15%% each rings, spirals, mergers, half of those 1.5-4x larger and brighter, "
        "no companions); the flags below override single ranges",
    )
    for name, text in RANGE_OPTIONS.items():
        flag = "--theta-e" if name == "theta_e_range" else f"--{name.replace('_', '-')}"
        parser.add_argument(
            flag, dest=name, nargs=2, type=float, metavar=("LO", "HI"), default=None, help=text
        )
    parser.add_argument(
        "--negative-mix",
        nargs="+",
        type=float,
        action=_NegativeMix,
        metavar="WEIGHT",
        default=None,
        help="relative shares of the kinds of non-lens: ELLIPTICAL RING SPIRAL MERGER [COMPANION] "
        "(plain ellipticals and ellipticals with blue companions are the hardest: the lens galaxies "
        "without a source; four weights give companion 0, as sets made before it existed)",
    )
    parser.add_argument(
        "--moffat-fraction",
        type=float,
        default=None,
        help="fraction of objects observed through a Moffat PSF (wings) instead of each band's own "
        "profile (Gaussian for VIS and NISP); default 0",
    )
    parser.add_argument(
        "--negative-scale-fraction",
        type=float,
        default=None,
        help="share of the hard negatives that --negative-scale resizes; the others keep their size "
        "(default 1: all; the randomised preset: 0.5)",
    )
    parser.add_argument(
        "--negative-scale-brightens",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --negative-scale: the hard negatives' flux grows with their area (the same galaxy "
        "nearer: surface brightness kept; a factor 4 is 3 mag brighter), as a blind sample's large, "
        "bright spirals, rings and discs are (the randomised preset's choice); "
        "--no-negative-scale-brightens keeps their total flux (the default)",
    )
    parser.add_argument(
        "--band-jitter",
        type=float,
        default=None,
        help="0: all bands share each object's instrument factors; 1: bands draw them independently "
        "(default 0.25)",
    )
    add_cluster_arguments(parser)


class _NegativeMix(argparse.Action):
    """``--negative-mix``: four or five weights (the kinds of NEGATIVE_KINDS; four: companion 0)."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        if len(values) not in (len(NEGATIVE_KINDS) - 1, len(NEGATIVE_KINDS)):
            parser.error(
                f"{option_string} takes {len(NEGATIVE_KINDS) - 1} or {len(NEGATIVE_KINDS)} weights "
                f"({' '.join(k.upper() for k in NEGATIVE_KINDS)}), got {len(values)}"
            )
        setattr(namespace, self.dest, values)


def check(args: argparse.Namespace) -> None:
    """The layout and the instrument and population ranges, before Prefect and Dask start.

    Raises
    ------
    SimulationError
        A bad range (the same validation the flow runs), in one line, before anything is written.
    """
    from pipeline.simulate import check_catalog, check_ids

    layout = load_layout(args.layout)
    writable_directory(args.out, "output folder")  # trial: a file there was refused after Prefect started
    outside_stores(args.out, "output folder")  # trial: a set simulated into a store, exit 0
    outside_bundles(args.out, "output folder")
    check_ids(layout, args.n, args.first_id, args.batch_size)  # trial: after Prefect
    # trial: ids already in the catalog were refused after Prefect started, the line printed twice
    check_catalog(layout, args.out, args.n, args.first_id, args.catalog_name, args.overwrite)
    overrides = _config_overrides(args)
    try:
        domain_config(args.domain, lens_fraction=args.lens_fraction, **overrides)
    except SimulationError as exc:  # trial: the message named lens_fraction, not --lens-fraction
        raise SimulationError(_in_flags(str(exc))) from None
    dropped = dropped_preset_settings(args.domain, **overrides)
    if dropped and tuple(args.negative_scale) != (1.0, 1.0):  # 1 1: the previous preset, no note
        print(_replaced_note(args.domain, dropped), file=sys.stderr)


def _in_flags(message: str) -> str:
    """A configuration error with its field names as the options that set them (``--lens-fraction``)."""
    import re

    names = ["lens_fraction", "band_jitter", "moffat_fraction", "negative_mix", *RANGE_OPTIONS]
    names += ["negative_scale_brightens", "negative_scale_fraction"]
    flags = {name: f"--{name.replace('_', '-')}" for name in names} | {"theta_e_range": "--theta-e"}
    pattern = re.compile(r"\b(" + "|".join(sorted(flags, key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda match: flags[match.group(1)], message)


_DROPPED_WORDS = {
    "negative_scale_fraction": ("every one resized", "--negative-scale-fraction {}"),
    "negative_scale_brightens": ("fluxes kept", "--negative-scale-brightens"),
}
"""Per preset setting a given ``--negative-scale`` drops: what holds instead, the flag that keeps it."""


def _replaced_note(domain: str, dropped: dict[str, object]) -> str:
    """One line: which of ``domain``'s resizing settings a given scale replaced, and how to keep them."""
    settings = ", ".join(f"{name}={value}" for name, value in dropped.items())
    instead = ", ".join(_DROPPED_WORDS[name][0] for name in dropped)
    keep = " ".join(_DROPPED_WORDS[name][1].format(value) for name, value in dropped.items())
    return (
        f"note: --negative-scale replaces the {domain} preset's resizing of the look-alikes ({settings}): "
        f"now {instead}; add {keep} to keep the preset's"
    )


def _config_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The simulation settings given on the command line (None: the preset's)."""
    return {
        "band_jitter": args.band_jitter,
        "moffat_fraction": args.moffat_fraction,
        "negative_scale_brightens": args.negative_scale_brightens,
        "negative_scale_fraction": args.negative_scale_fraction,
        "negative_mix": tuple(args.negative_mix) if args.negative_mix else None,
        **{name: tuple(getattr(args, name)) if getattr(args, name) else None for name in RANGE_OPTIONS},
    }


def run(args: argparse.Namespace) -> int:
    summary = simulate_flow(
        out=str(args.out),
        n_objects=args.n,
        layout=args.layout,
        seed=args.seed,
        first_id=args.first_id,
        lens_fraction=args.lens_fraction,
        batch_size=args.batch_size,
        catalog_name=args.catalog_name,
        overwrite=args.overwrite,
        in_process=args.in_process,
        domain=args.domain,
        **_config_overrides(args),
        **cluster_options(args),
    )
    print(summary.summary())
    return 0
