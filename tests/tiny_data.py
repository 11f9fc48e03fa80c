"""Small two-resolution layouts and flux-like random images for recipe, model and bundle tests."""

from __future__ import annotations

import numpy as np

from schemas.layout import Layout, parse_layout

FLUX_SCALE = 1e-11
"""Pixel values of the challenge sets are flux-like, of this order."""


def tiny_layout(vis: int = 64, nir: int = 32, masked_value: float | None = None) -> Layout:
    """A Euclid-like layout with a VIS group of ``vis`` pixels and a Y, J, H group of ``nir``."""

    def band(name: str, size: int, scale: float, group: str) -> dict[str, object]:
        path = f"{name}/{{id}}.fits"
        shape = [size, size]
        return {"name": name, "path": path, "shape": shape, "pixel_scale_arcsec": scale, "group": group}

    bands = [band("VIS", vis, 0.1, "vis"), *(band(b, nir, 0.2, "nir") for b in ("Y", "J", "H"))]
    return parse_layout({"name": "tiny", "bands": bands, "masked_value": masked_value}, source="tiny")


def flux_images(layout: Layout, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per group ``(n, band, y, x)`` float32 images: noise plus a bright central blob, flux-like scale."""
    rng = np.random.default_rng(seed)
    groups = {}
    for group, bands in layout.groups.items():
        n_y, n_x = layout.group_shape(group)
        y, x = np.mgrid[:n_y, :n_x]
        blob = 20 * np.exp(-(((y - n_y / 2) ** 2 + (x - n_x / 2) ** 2) / (2 * (n_y / 8) ** 2)))
        noise = rng.normal(size=(n, len(bands), n_y, n_x))
        amplitude = rng.uniform(0.5, 2.0, size=(n, len(bands), 1, 1))
        groups[group] = ((noise + amplitude * blob) * FLUX_SCALE).astype(np.float32)
    return groups


def without_pixel_scales(recipe):
    """``recipe`` as it was fitted before recipes recorded pixel scales (version 8 adds them alone):
    of the oldest version its inputs need, for the tests of the versions before 8."""
    from pipeline.preprocess import Recipe

    return Recipe.model_validate(recipe.model_dump(exclude={"version", "pixel_scales"}))
