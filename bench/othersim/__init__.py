"""An independent Euclid-like lens simulator, for checking lens finders outside their own simulator.

Deliberately unlike ``pipeline.simulate`` (lenstronomy, Gaussian space PSFs, flux units, its own
populations) and sharing no code with it: pure NumPy (plus fitsio to write files), direct ray
shooting through a singular isothermal ellipsoid (Kormann et al. 1994 deflections) plus external
shear, elliptical exponential or Gaussian sources with an optional off-centre knot, de Vaucouleurs
lens light with a redshift-dependent colour table, Moffat PSFs whose width varies per object,
its own noise levels and shot-noise model per band, pixel values in counts with an AB zero point
of 30 (or flux with zero point 0), Einstein radii 0.4-2.5" (log-uniform), and non-lenses drawn its
own way: ellipticals, ring galaxies, two-armed spirals and ellipticals with a blue companion
(arc-like hard negatives), all with field galaxies and stars around them.

It writes the ``euclid-sglc2`` layout exactly: ``Public/EUC_<band>/imageEUC_<band>-<ID>.fits``
(VIS 200x200 at 0.1"/px; NISP Y, J, H 66x66 at 0.3"/px; float32 primary HDU with a TAN WCS in
CD-matrix form and RA/DEC cards in degrees) and ``image_catalog_othersim.csv`` with ``ID`` and
the columns of the second challenge's label rule (``n_source_im > 0 and mag_eff > 1.6 and
n_pix_source > 20``), computed as the challenge defines them: images of the source centre, lensed
over unlensed source flux, and VIS pixels where the noiseless PSF-convolved source exceeds the
1-sigma sky noise.

Objects depend only on ``(seed, id)``: the same call gives the same bytes for any ``--jobs``.

Usage::

    python -m bench.othersim OUT --n 2000 --seed 7 [--noise 1.0] [--psf-scale 1.0]
        [--units counts|flux] [--first-id 200000] [--lens-fraction 0.5] [--jobs 2]
    lenshunt ingest OUT STORE --layout euclid-sglc2
"""

from bench.othersim.cli import is_lens, main, simulate
from bench.othersim.lensing import count_images, deflection, lensed_source
from bench.othersim.observe import render
from bench.othersim.population import draw_object
from bench.othersim.settings import BANDS, CATALOG_NAME, KINDS, LABEL_RULE, Settings

__all__ = [
    "BANDS",
    "CATALOG_NAME",
    "KINDS",
    "LABEL_RULE",
    "Settings",
    "count_images",
    "deflection",
    "draw_object",
    "is_lens",
    "lensed_source",
    "main",
    "render",
    "simulate",
]
