"""thirdsim: an independent Euclid-like strong-lens cutout simulator (held-out transfer tests).

``python -m bench.thirdsim OUT --n N --seed S --first-id I [--workers W]`` writes N objects in the
``euclid-sglc2`` layout (``Public/EUC_VIS/imageEUC_VIS-<id>.fits`` 200x200 at 0.1"/px and
``Public/EUC_{Y,J,H}/imageEUC_{Y,J,H}-<id>.fits`` 66x66 at 0.3"/px) and
``OUT/image_catalog_thirdsim.csv`` with the challenge columns ``n_source_im``, ``mag_eff`` and
``n_pix_source`` (so the layout's rule ``n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20``
gives the label) plus what was drawn. ``python -m bench.thirdsim.preview OUT preview.png`` shows
lenses and non-lenses.

It was written without reading the project's other simulators: every population, PSF, noise and
unit choice is its own and documented in

- :mod:`bench.thirdsim.population`: one object's scene: lens systems (VDF-based Einstein radii,
  EPL + shear + m=4 multipole, bulge + envelope lens light, clumpy high-z sources) or a
  look-alike, plus field galaxies and stars;
- :mod:`bench.thirdsim.nonlenses`: nine kinds of lens look-alikes;
- :mod:`bench.thirdsim.galaxies`: distances, sampling laws and the galaxy and star builders the
  populations share;
- :mod:`bench.thirdsim.instrument`: Euclid-like PSFs (broadband obscured Airy + jitter + halo),
  depth, Poisson + read noise, pixel units (stacked ADU with a gain) and residual sky;
- :mod:`bench.thirdsim.render`: supersampled rendering, ray tracing and the catalog's lensing
  numbers;
- :mod:`bench.thirdsim.simulate`: per-object seeds (``SeedSequence([seed, id, ...])``, so any
  number of workers gives the same files), FITS headers (TAN WCS at a random sky position) and
  the catalog.
"""
