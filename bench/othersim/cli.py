"""Files of a set (FITS per object and band, the catalog), the runner and the command line."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.othersim.observe import render
from bench.othersim.population import draw_object
from bench.othersim.settings import (
    BANDS,
    CATALOG_NAME,
    COLUMNS,
    ID_DIGITS,
    LABEL_RULE,
    PIXEL_ARCSEC,
    PSF_BETA,
    SHAPE,
    ZERO_POINT,
    Settings,
)


def band_path(band: str, object_id: int) -> str:
    return f"Public/EUC_{band}/imageEUC_{band}-{object_id:0{ID_DIGITS}d}.fits"


def header_cards(obj: dict, band: str, facts: dict, settings: Settings) -> list[dict]:
    """fitsio header records: a TAN WCS in CD-matrix form, RA/DEC in degrees, units and PSF."""
    n, degrees = SHAPE[band], PIXEL_ARCSEC[band] / 3600.0
    zero_point = ZERO_POINT[settings.units]
    return [
        {"name": "CTYPE1", "value": "RA---TAN"},
        {"name": "CTYPE2", "value": "DEC--TAN"},
        {"name": "CRPIX1", "value": (n + 1) / 2.0},
        {"name": "CRPIX2", "value": (n + 1) / 2.0},
        {"name": "CRVAL1", "value": obj["ra"], "comment": "[deg]"},
        {"name": "CRVAL2", "value": obj["dec"], "comment": "[deg]"},
        {"name": "CD1_1", "value": -degrees},
        {"name": "CD1_2", "value": 0.0},
        {"name": "CD2_1", "value": 0.0},
        {"name": "CD2_2", "value": degrees},
        {"name": "CUNIT1", "value": "deg"},
        {"name": "CUNIT2", "value": "deg"},
        {"name": "RADESYS", "value": "ICRS"},
        {"name": "EQUINOX", "value": 2000.0},
        {"name": "RA", "value": obj["ra"], "comment": "[deg] object right ascension"},
        {"name": "DEC", "value": obj["dec"], "comment": "[deg] object declination"},
        {"name": "OBJECT", "value": str(obj["id"])},
        {"name": "FILTER", "value": band},
        {"name": "MAGZP", "value": zero_point, "comment": "AB magnitude of a pixel sum of 1"},
        {"name": "BUNIT", "value": settings.units},
        {"name": "SKYSIG", "value": float(np.float32(facts["sigma"])), "comment": "sky noise per pixel"},
        {"name": "PSFFWHM", "value": round(facts["fwhm"], 5), "comment": "[arcsec] Moffat FWHM"},
        {"name": "PSFBETA", "value": PSF_BETA[band]},
        {"name": "ORIGIN", "value": "othersim", "comment": "lenshunt bench/othersim"},
    ]


def simulate_ids(object_ids: list[int], out: str, settings: Settings) -> list[dict]:
    """Render and write the objects ``object_ids``; their catalog rows."""
    import fitsio

    rows = []
    for object_id in object_ids:
        obj = draw_object(object_id, settings)
        images, row, facts = render(obj, settings)
        for band in BANDS:
            path = Path(out) / band_path(band, object_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fitsio.write(
                str(path), images[band], header=header_cards(obj, band, facts[band], settings), clobber=True
            )
        rows.append(row)
    return rows


def _format(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_catalog(out: Path, rows: list[dict], settings: Settings, first_id: int) -> Path:
    path = out / CATALOG_NAME
    lines = [
        "# othersim: an independent Euclid-like simulation (lenshunt bench/othersim)",
        f"# seed={settings.seed} first_id={first_id} n_objects={len(rows)} noise={settings.noise:g} "
        f"psf_scale={settings.psf_scale:g} units={settings.units} lens_fraction={settings.lens_fraction:g}",
        f"# label rule: {LABEL_RULE}; pixel values in {settings.units}, AB zero point "
        f"{ZERO_POINT[settings.units]:g}",
        ",".join(COLUMNS),
    ]
    lines += [",".join(_format(row[c]) for c in COLUMNS) for row in sorted(rows, key=lambda r: r["ID"])]
    path.write_text("\n".join(lines) + "\n")
    return path


def is_lens(row: dict) -> bool:
    """The second challenge's rule, as the layout applies it."""
    return row["n_source_im"] > 0 and row["mag_eff"] > 1.6 and row["n_pix_source"] > 20


def simulate(out: Path, n: int, settings: Settings, first_id: int = 200000, jobs: int = 1) -> list[dict]:
    """Write ``n`` objects with ids ``first_id...`` and the catalog under ``out``; the rows."""
    if n <= 0 or first_id < 0 or len(str(first_id + n - 1)) > ID_DIGITS:
        raise ValueError(f"need n > 0 and ids of at most {ID_DIGITS} digits; got n={n}, first id {first_id}")
    out.mkdir(parents=True, exist_ok=True)
    if (out / CATALOG_NAME).exists():
        raise FileExistsError(f"{out / CATALOG_NAME} exists: simulate into a new directory")
    ids = list(range(first_id, first_id + n))
    chunks = [ids[i : i + 16] for i in range(0, n, 16)]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.starmap(simulate_ids, [(chunk, str(out), settings) for chunk in chunks])
    else:
        parts = [simulate_ids(chunk, str(out), settings) for chunk in chunks]
    rows = [row for part in parts for row in part]
    write_catalog(out, rows, settings, first_id)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.othersim",
        description="write an independent Euclid-like lens set in the euclid-sglc2 layout",
    )
    parser.add_argument("out", type=Path, help="root of the set (euclid-sglc2 layout)")
    parser.add_argument("--n", type=int, required=True, help="number of objects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.0, help="factor on every band's noise")
    parser.add_argument("--psf-scale", type=float, default=1.0, help="factor on every band's PSF FWHM")
    parser.add_argument("--units", choices=sorted(ZERO_POINT), default="counts", help="pixel units")
    parser.add_argument("--first-id", type=int, default=200000)
    parser.add_argument("--lens-fraction", type=float, default=0.5, help="fraction drawn as lenses")
    parser.add_argument("--jobs", type=int, default=1, help="processes")
    args = parser.parse_args(argv)
    try:
        settings = Settings(args.seed, args.noise, args.psf_scale, args.units, args.lens_fraction)
        started = time.perf_counter()
        rows = simulate(args.out, args.n, settings, args.first_id, max(1, args.jobs))
    except (ValueError, FileExistsError) as exc:
        print(f"othersim: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    n_lenses = sum(is_lens(row) for row in rows)
    print(
        f"othersim: {len(rows)} objects ({n_lenses} lenses by the rule) in {args.out} "
        f"in {seconds:.1f} s ({len(rows) / seconds:.0f} objects/s, {args.jobs} job(s), pid {os.getpid()})"
    )
    return 0
