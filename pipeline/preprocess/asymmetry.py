"""Rotational asymmetry channels: each scaled band minus its own rotation by 180 degrees.

A lens galaxy, like most galaxies a lens finder must reject (ellipticals, two-armed spirals, ring
galaxies, edge-on discs), is close to point-symmetric about the cutout centre; lensed arcs are not:
an arc and its counter-image lie on opposite sides at different radii and brightnesses. So
``z - R z``, with ``z`` a band in units of the cutout's noise and ``R`` the rotation by 180 degrees
about the galaxy's centre, removes the symmetric light and keeps what breaks the symmetry, a lens
light subtraction that needs no fitted model and no assumption on the simulator's profiles. It is
the image behind the rotational asymmetry index of galaxy morphology (Abraham et al. 1996, ApJS
107, 1; Conselice 2003, ApJS 147, 1), kept as channels beside the bands.

Measured with the plain-CNN baseline (bench/RESULTS.md, "rotational asymmetry"): +0.08 AUROC on
our own held-out set, +0.10 on the first independent simulator and +0.06 on the second, the
largest gain of everything tried for issue 10; the shipped model with them (small-cnn-7) gains
0.027, 0.076 and 0.009 over the same model without (small-cnn-6).

The channels come after the recipe's ``robust_asinh`` scaling: the stretch is inverted to noise
units, the rotated copy subtracted, and the difference stretched again with the same softening and
a symmetric clip (``max(|low|, high)``), so that a difference of ``d`` sigma maps to the value a
``d``-sigma pixel gets in a band (negative for negative ``d``). Masked or missing pixels were set
to the fill value (the sky, 0) by the recipe and count as sky here.

The centre of rotation is each cutout's own central object (:func:`object_centre`: the peak of
the band sum near the array centre, to a hundredth of a pixel for a Gaussian core), and the
rotation about it is exact to sub-pixel precision (:func:`rotate_half_turn`, a phase ramp in
Fourier space). Rotating about the array centre instead cost a model trained that way 0.19 AUROC
on its own in-domain set when the cutouts were 0.3" off-centre (bench/RESULTS.md): survey cutouts
are centred on catalogue positions, not to a fraction of a pixel. Works on NumPy and CuPy arrays.

Examples
--------
>>> import numpy as np
>>> y, x = np.mgrid[:20, :20] - 9.5
>>> sigmas = 300 * np.exp(-(x**2 + y**2) / 8.0)  # a galaxy peaking at 300 sigma, centred
>>> galaxy = (np.arcsinh(sigmas) / np.arcsinh(1000.0))[None, :, :, None].astype(np.float32)
>>> out = add_rotational_asymmetry(galaxy, clip_sigma=(-10.0, 1000.0), softening_sigma=1.0)
>>> out.shape, bool(np.abs(out[..., 1]).max() < 1e-3)
((1, 20, 20, 2), True)
"""

from __future__ import annotations

import math

from pipeline.preprocess.arrays import Array, array_namespace

__all__ = [
    "DEFAULT_ASYMMETRY_SMOOTHING_PX",
    "add_rotational_asymmetry",
    "asymmetry_channels",
    "object_centre",
    "rotate_half_turn",
    "smoothed_difference",
]


DEFAULT_ASYMMETRY_SMOOTHING_PX = 0.7
"""``lenshunt train``'s Gaussian sigma (model-input pixels) for the asymmetry channels when they are on.

Measured (bench/RESULTS.md, "the asymmetry channels' ringing"): small-cnn-8's options on 8000 objects,
10 epochs, two seeds, 0.7 against none: the second independent simulator +0.046 / +0.051 AUROC, the
in-domain and first independent sets within seed noise.
"""

CENTRE_SEARCH_FRACTION = 0.1
"""The galaxy's peak is looked for within this fraction of the cutout side of the array centre."""


def object_centre(bands: Array) -> Array:
    """``(n, 2)`` float centre (y, x) in pixels of the central object of each ``(n, y, x, c)`` cutout.

    ``bands`` are linear (noise units). The peak of the band sum (positive part, 3x3
    box-smoothed) within ``CENTRE_SEARCH_FRACTION`` of the side (at least 2 pixels) of the array
    centre ``(side - 1) / 2`` along each axis, refined to sub-pixel by the maximum of a quadratic
    fitted (least squares) to the log of the 3x3 pixels (not smoothed) around it, which is exact for
    a Gaussian core of any ellipticity and orientation; where the fit has no maximum within a pixel,
    the peak pixel itself.
    """
    xp = array_namespace(bands)
    n, n_y, n_x = bands.shape[:3]
    light = xp.clip(bands.sum(axis=-1), 0, None)
    padded = xp.pad(light, ((0, 0), (1, 1), (1, 1)))
    smooth = sum(padded[:, dy : dy + n_y, dx : dx + n_x] for dy in range(3) for dx in range(3)) / 9.0
    radius = max(2, round(CENTRE_SEARCH_FRACTION * min(n_y, n_x)))
    # pixels i with |i - (side - 1) / 2| <= radius, symmetric about the array centre on odd and even
    # sides alike, less the edge pixels (the sub-pixel fit needs their neighbours)
    y0, x0 = max((n_y - 2 * radius) // 2, 1), max((n_x - 2 * radius) // 2, 1)
    y1, x1 = min((n_y - 1 + 2 * radius) // 2, n_y - 2), min((n_x - 1 + 2 * radius) // 2, n_x - 2)
    window = smooth[:, y0 : y1 + 1, x0 : x1 + 1]
    peak = xp.argmax(window.reshape(n, -1), axis=1)
    peak_y, peak_x = peak // window.shape[2] + y0, peak % window.shape[2] + x0
    offsets = xp.arange(-1, 2)
    rows, cols = peak_y[:, None] + offsets, peak_x[:, None] + offsets
    tiny = xp.finfo(light.dtype).tiny
    v = xp.log(xp.maximum(light[xp.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]], tiny))
    b = (v[:, :, 2] - v[:, :, 0]).sum(axis=1) / 6.0  # d/dx
    c = (v[:, 2, :] - v[:, 0, :]).sum(axis=1) / 6.0  # d/dy
    d = (v[:, :, 2] + v[:, :, 0] - 2 * v[:, :, 1]).sum(axis=1) / 6.0  # x^2
    e = (v[:, 2, :] + v[:, 0, :] - 2 * v[:, 1, :]).sum(axis=1) / 6.0  # y^2
    g = (v[:, 2, 2] - v[:, 2, 0] - v[:, 0, 2] + v[:, 0, 0]) / 4.0  # xy
    det = 4 * d * e - g * g
    safe = xp.where(det != 0, det, 1.0)
    dx = (-2 * e * b + g * c) / safe
    dy = (-2 * d * c + g * b) / safe
    fitted = (det > 0) & (d < 0) & (xp.abs(dx) <= 1) & (xp.abs(dy) <= 1) & xp.isfinite(dx) & xp.isfinite(dy)
    centre_y = peak_y + xp.where(fitted, dy, 0.0)
    centre_x = peak_x + xp.where(fitted, dx, 0.0)
    return xp.stack([centre_y, centre_x], axis=1).astype(xp.float64)


def rotate_half_turn(images: Array, centre: Array) -> Array:
    """``(n, y, x, c)`` images rotated by 180 degrees about ``centre`` ``(n, 2)`` (y, x) in pixels.

    A flip about the array centre, then the sub-pixel shift ``2 centre - (side - 1)`` per axis as a
    phase ramp in Fourier space (periodic edges; the cutout's edges are sky). On an even side the
    Nyquist term of a fractional shift is not moved exactly; in PSF-sampled cutouts it is noise.
    The ramp is the outer product of one 1-D ramp per axis (their phases computed in float64), in
    the spectrum's precision: complex64 for float32 images, which stay float32 throughout.
    """
    xp = array_namespace(images)
    n_y, n_x = images.shape[1:3]
    spectrum = xp.fft.rfft2(xp.flip(images, axis=(1, 2)), axes=(1, 2))
    shift = 2.0 * xp.asarray(centre, dtype=xp.float64) - xp.asarray([n_y - 1, n_x - 1], dtype=xp.float64)
    spectrum *= _phase_ramp(shift, n_y, n_x, spectrum.dtype, xp)[..., None]
    return xp.fft.irfft2(spectrum, s=(n_y, n_x), axes=(1, 2)).astype(xp.float32, copy=False)


def _phase_ramp(shift: Array, n_y: int, n_x: int, dtype, xp) -> Array:  # type: ignore[no-untyped-def]
    """``(n, n_y, n_x // 2 + 1)`` rfft2 phase ramp of a shift by ``shift`` ``(n, 2)`` (y, x) pixels."""
    ramp_y = xp.exp(-2j * xp.pi * (shift[:, 0, None] * xp.fft.fftfreq(n_y)[None, :]))
    ramp_x = xp.exp(-2j * xp.pi * (shift[:, 1, None] * xp.fft.rfftfreq(n_x)[None, :]))
    return ramp_y.astype(dtype)[:, :, None] * ramp_x.astype(dtype)[:, None, :]


def smoothed_difference(images: Array, centre: Array, sigma_px: float) -> Array:
    """``G * (z - R z)``: each image minus its half-turn about ``centre``, both smoothed by a Gaussian.

    The sub-pixel rotation of :func:`rotate_half_turn` is exact for band-limited images, but a
    core or star that is sharper than the pixels (undersampled) rings: the periodic sinc of its
    shift is a cross of +- lines through it along both axes, across the whole cutout, which the
    difference keeps. Smoothing both terms by the same Gaussian of ``sigma_px`` pixels (which
    commutes with the rotation, so point-symmetric light still cancels exactly) takes the
    spectrum to ``exp(-pi**2 sigma**2 / 2)`` at Nyquist (0.09 at 0.7 px) and the cross with it.
    Computed as one product in Fourier space, ``(F z - F R z) exp(-2 pi**2 sigma**2 |f|**2)``, with
    ``F R z`` from ``F z`` itself (one forward transform).

    Parameters
    ----------
    images
        ``(n, y, x, c)`` float32 NumPy or CuPy array.
    centre
        ``(n, 2)`` centres (y, x) in pixels.
    sigma_px
        Gaussian sigma in pixels, >= 0 (0: the plain ``z - R z``).

    Returns
    -------
    Array
        ``(n, y, x, c)`` float32. White noise of unit variance comes out with standard deviation
        ``sqrt(2) / (2 sqrt(pi) sigma_px)`` for ``sigma_px`` above about 0.5 (0.57 at 0.7).
    """
    xp = array_namespace(images)
    n_y, n_x = images.shape[1:3]
    spectrum = xp.fft.rfft2(images, axes=(1, 2))
    # real images: the spectrum of z(2c - x) is conj(F z) times the ramp of a shift by 2c (one FFT)
    shift = 2.0 * xp.asarray(centre, dtype=xp.float64)
    spectrum -= xp.conj(spectrum) * _phase_ramp(shift, n_y, n_x, spectrum.dtype, xp)[..., None]
    if sigma_px > 0:
        f_y, f_x = xp.fft.fftfreq(n_y), xp.fft.rfftfreq(n_x)
        taper = xp.exp(-2.0 * math.pi**2 * sigma_px**2 * (f_y[:, None] ** 2 + f_x[None, :] ** 2))
        spectrum *= taper.astype(xp.float32)[None, :, :, None]
    return xp.fft.irfft2(spectrum, s=(n_y, n_x), axes=(1, 2)).astype(xp.float32, copy=False)


def asymmetry_channels(
    inputs: Array, *, clip_sigma: tuple[float, float], softening_sigma: float, smoothing_px: float = 0.0
) -> Array:
    """The asymmetry channels alone: for each channel of ``inputs``, its scaled ``z - R z``.

    Parameters
    ----------
    inputs
        ``(n, y, x, c)`` float32 NumPy or CuPy array scaled by ``robust_asinh`` with these
        ``clip_sigma`` and ``softening_sigma`` (values ``asinh(z / s) / asinh(high / s)``).
    clip_sigma
        The recipe's ``(low, high)`` clip in noise units; ``high`` > 0.
    softening_sigma
        The recipe's asinh softening ``s`` in noise units, > 0.
    smoothing_px
        The recipe's ``asymmetry_smoothing_px``: Gaussian sigma in pixels applied to ``z - R z``
        (:func:`smoothed_difference`; 0, recipes before version 6: none).

    Returns
    -------
    Array
        ``(n, y, x, c)`` float32: for each input channel the scaled ``z - R z``, in ``[-1, 1]``,
        ``R`` the rotation about :func:`object_centre` of the sum of all ``c`` channels.
    """
    xp = array_namespace(inputs)
    high = max(abs(clip_sigma[0]), clip_sigma[1])
    norm = math.asinh(clip_sigma[1] / softening_sigma)
    noise_units = softening_sigma * xp.sinh(inputs * xp.float32(norm))
    centre = object_centre(noise_units)
    if smoothing_px > 0:
        raw = smoothed_difference(noise_units, centre, smoothing_px)
    else:  # as every recipe before version 6 computed it
        raw = noise_units - rotate_half_turn(noise_units, centre)
    difference = xp.clip(raw, -high, high) / xp.float32(softening_sigma)
    return (xp.arcsinh(difference) / xp.float32(math.asinh(high / softening_sigma))).astype(xp.float32)


def add_rotational_asymmetry(
    inputs: Array, *, clip_sigma: tuple[float, float], softening_sigma: float, smoothing_px: float = 0.0
) -> Array:
    """``inputs`` with one asymmetry channel per channel appended (module docstring).

    Parameters
    ----------
    inputs, clip_sigma, softening_sigma, smoothing_px
        As for :func:`asymmetry_channels`: ``(n, y, x, c)`` float32 scaled by ``robust_asinh``.

    Returns
    -------
    Array
        ``(n, y, x, 2 c)`` float32, contiguous: the ``c`` input channels, then
        :func:`asymmetry_channels`' ``c``.
    """
    xp = array_namespace(inputs)
    options = {"clip_sigma": clip_sigma, "softening_sigma": softening_sigma, "smoothing_px": smoothing_px}
    asymmetry = asymmetry_channels(inputs, **options)
    return xp.ascontiguousarray(xp.concatenate([inputs, asymmetry], axis=-1))
