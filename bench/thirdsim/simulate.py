"""One object end to end (draw, render, noise, FITS), and a whole set with its catalog."""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from astropy.io import fits

from bench.thirdsim.instrument import BANDS, add_noise, observe
from bench.thirdsim.nonlenses import NONLENS_MIX
from bench.thirdsim.population import draw_scene
from bench.thirdsim.render import Renderer, count_images

VERSION = "thirdsim-1.0"
ID_DIGITS = 6
BAND_DIRS = {b.name: (f"Public/EUC_{b.name}", f"imageEUC_{b.name}-{{id}}.fits") for b in BANDS}
CATALOG_NAME = "image_catalog_thirdsim.csv"

# (name, unit, description, format)
COLUMNS = [
    ("ID", "", "object id (file name number)", "d"),
    (
        "n_source_im",
        "",
        "images of the source centre (lenstronomy LensEquationSolver); 0 without a source",
        "d",
    ),
    ("mag_eff", "", "lensed / unlensed source flux in VIS; 0 without a source", ".5f"),
    (
        "n_pix_source",
        "",
        "VIS pixels where the noiseless lensed source exceeds 1 sigma of the pixel noise",
        "d",
    ),
    ("kind", "", "what was drawn: lens or a non-lens kind (" + " ".join(NONLENS_MIX) + ")", "s"),
    ("theta_e", "arcsec", "Einstein radius of the EPL (lenstronomy convention); empty without lens", ".5f"),
    ("ein_area", "arcsec2", "pi theta_e^2; empty without lens", ".5f"),
    ("z_lens", "", "redshift of the lens / main galaxy", ".4f"),
    ("z_source", "", "redshift of the source (lens) or background galaxy (pair)", ".4f"),
    ("mag_lens", "mag", "VIS AB magnitude of the lens / main galaxy (all its components)", ".3f"),
    ("mag_source", "mag", "unlensed VIS AB magnitude of the source", ".3f"),
    ("re_lens", "arcsec", "half-light radius of the lens / main galaxy", ".3f"),
    ("re_source", "arcsec", "half-light radius of the source disc", ".3f"),
    ("sigma_v", "km/s", "velocity dispersion of the lens / main early type", ".1f"),
    ("log_mstar", "dex(solMass)", "stellar mass of the lens / main early type", ".3f"),
    ("gamma_slope", "", "EPL logarithmic slope", ".4f"),
    ("q_lens", "", "EPL axis ratio", ".4f"),
    ("shear", "", "external shear amplitude", ".4f"),
    ("a4", "", "m=4 multipole amplitude over theta_e", ".5f"),
    ("source_x", "arcsec", "source centre x (cutout centre 0; +x along columns)", ".4f"),
    ("source_y", "arcsec", "source centre y (+y along rows)", ".4f"),
    ("n_knots", "", "star-forming knots of the source", "d"),
    ("snr_source", "", "VIS S/N of the lensed source summed over pixels above 1 sigma", ".2f"),
    ("psf_fwhm_vis", "arcsec", "FWHM of the pixel-integrated VIS PSF of the object", ".4f"),
    ("psf_fwhm_h", "arcsec", "FWHM of the pixel-integrated H PSF of the object", ".4f"),
    ("depth_vis", "mag", "VIS 10 sigma extended-source depth (1.3 arcsec aperture) of the object", ".3f"),
    ("depth_h", "mag", "H 5 sigma point-source depth of the object", ".3f"),
    ("noise_vis", "ADU", "VIS background pixel noise", ".4f"),
    ("n_neighbours", "", "field galaxies drawn", "d"),
    ("n_stars", "", "stars drawn (field and star_galaxy)", "d"),
    ("ra", "deg", "cutout centre right ascension (CRVAL1)", ".6f"),
    ("dec", "deg", "cutout centre declination (CRVAL2)", ".6f"),
]


def object_rng(seed: int, object_id: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(object_id), 3]))


def _header(band, obs, ra, dec, object_id, seed):
    n = band.n_pix
    h = fits.Header()
    h["BUNIT"] = ("ADU", "stacked counts; e- = ADU * GAIN")
    h["MAGZP"] = (round(float(band.magzp), 4), "AB mag of 1 ADU")
    h["GAIN"] = (band.gain, "e-/ADU")
    h["EXPTIME"] = (band.t_total, "s, stack exposure")
    h["FILTER"] = band.name
    h["TELESCOP"] = ("thirdsim", "SIMULATED Euclid-like cutout")
    h["INSTRUME"] = (f"{band.instrument}-like (thirdsim)", "simulated instrument")
    h["ORIGIN"] = "lenshunt bench.thirdsim"
    h["SIMVERS"] = VERSION
    h["SIMSEED"] = (int(seed), "run seed")
    h["OBJID"] = int(object_id)
    h["PIXSCALE"] = (band.scale, "arcsec/pixel")
    h["PSFFWHM"] = (round(obs.fwhm, 4), "arcsec")
    h["SKYRMS"] = (round(obs.sigma_adu, 5), "ADU, background pixel noise")
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRPIX1"], h["CRPIX2"] = (n + 1) / 2, (n + 1) / 2
    h["CRVAL1"], h["CRVAL2"] = round(ra, 8), round(dec, 8)
    h["CD1_1"], h["CD1_2"] = -band.scale / 3600.0, 0.0
    h["CD2_1"], h["CD2_2"] = 0.0, band.scale / 3600.0
    h["RADESYS"] = "ICRS"
    h["EQUINOX"] = 2000.0
    h["RA"], h["DEC"] = round(ra, 8), round(dec, 8)
    h["COMMENT"] = "Simulated by bench.thirdsim (lenshunt); not real Euclid data."
    return h


def simulate_object(out: str, seed: int, object_id: int) -> dict:
    """Draw, render and write one object; return its catalog row."""
    rng = object_rng(seed, object_id)
    scene, info = draw_scene(rng)
    ra = float(rng.uniform(0, 360))
    dec = float(np.degrees(np.arcsin(rng.uniform(-0.95, 0.95))))
    observations = {b.name: observe(b, rng) for b in BANDS}
    noise_rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(object_id), 4]))
    renderer = Renderer(scene)
    row = dict(info)
    row["ID"] = object_id
    is_lens = scene.lens is not None
    for band in BANDS:
        obs = observations[band.name]
        img, src, fluxes = renderer.render(obs)
        if band.name == "VIS" and is_lens:
            mag_eff = fluxes["lensed"] / fluxes["unlensed"] if fluxes["unlensed"] > 0 else 0.0
            above = src > obs.sigma_rate
            row["mag_eff"] = mag_eff
            row["n_pix_source"] = int(above.sum())
            row["snr_source"] = float(src[above].sum() / (obs.sigma_rate * math.sqrt(max(above.sum(), 1))))
        data = add_noise(img, obs, noise_rng)
        hdr = _header(band, obs, ra, dec, object_id, seed)
        d, name = BAND_DIRS[band.name]
        path = Path(out) / d / name.format(id=f"{object_id:0{ID_DIGITS}d}")
        fits.PrimaryHDU(data=data, header=hdr).writeto(path, overwrite=True)
    if is_lens:
        row["n_source_im"] = count_images(scene)
        row["ein_area"] = math.pi * row["theta_e"] ** 2
    else:
        row |= {"n_source_im": 0, "mag_eff": 0.0, "n_pix_source": 0}
    row["psf_fwhm_vis"] = observations["VIS"].fwhm
    row["psf_fwhm_h"] = observations["H"].fwhm
    row["depth_vis"] = observations["VIS"].depth
    row["depth_h"] = observations["H"].depth
    row["noise_vis"] = observations["VIS"].sigma_adu
    row["n_neighbours"] = len({c.name.split("_")[0] for c in scene.components if c.name.startswith("nb")})
    row["n_stars"] = len(scene.stars)
    row["ra"], row["dec"] = ra, dec
    return row


def _format(value, fmt: str) -> str:
    if value is None:
        return ""
    if fmt == "s":
        return str(value).replace(",", ";").replace("#", "")
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if fmt == "d":
        return str(int(value))
    return format(float(value), fmt)


def write_catalog(out: str | os.PathLike, rows: list[dict], seed: int, first_id: int, n: int) -> Path:
    lines = [
        f"# thirdsim ({VERSION}): independent Euclid-like strong-lens simulation for lenshunt held-out tests",
        f"# seed: {seed}",
        f"# first_id: {first_id}",
        f"# n: {n}",
        "# layout: euclid-sglc2 (VIS 200x200 at 0.1 arcsec/px; NISP Y J H 66x66 at 0.3 arcsec/px)",
        "# pixel units: ADU of the stack; header MAGZP is the AB zero point of each band",
        "# label rule: n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20",
        "# empty fields: not applicable (no lens / no source)",
    ]
    lines += [f"# column {name}: [{unit}] {desc}" for name, unit, desc, _ in COLUMNS]
    lines.append(",".join(c[0] for c in COLUMNS))
    for row in sorted(rows, key=lambda r: r["ID"]):
        lines.append(",".join(_format(row.get(name), fmt) for name, _, _, fmt in COLUMNS))
    path = Path(out) / CATALOG_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _init_worker():
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _task(args):
    return simulate_object(*args)


def simulate_set(
    out: str | os.PathLike, n: int, seed: int, first_id: int, workers: int = 1, log=print
) -> list[dict]:
    """Write ``n`` objects and the catalog under ``out``; return the catalog rows."""
    out = str(out)
    for d, _ in BAND_DIRS.values():
        (Path(out) / d).mkdir(parents=True, exist_ok=True)
    tasks = [(out, seed, first_id + i) for i in range(n)]
    t0 = time.time()
    rows = []
    if workers <= 1:
        for k, t in enumerate(tasks):
            rows.append(_task(t))
            if log and (k + 1) % 100 == 0:
                log(f"{k + 1}/{n} objects, {time.time() - t0:.0f} s")
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=_init_worker
        ) as pool:
            for k, row in enumerate(pool.map(_task, tasks, chunksize=4)):
                rows.append(row)
                if log and (k + 1) % 100 == 0:
                    log(f"{k + 1}/{n} objects, {time.time() - t0:.0f} s")
    write_catalog(out, rows, seed, first_id, n)
    return rows
