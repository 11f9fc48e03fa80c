"""Smallest model inputs the architectures build for, importable without Keras.

Training refuses options that give smaller inputs before any image is read
(:meth:`pipeline.training.TrainConfig.check_input_shapes`); the builders check them again.
"""

from __future__ import annotations

__all__ = ["EFFICIENTNET_MIN_SIZE", "MIN_INPUT_PIXELS", "MIN_POLAR_PIXELS"]

MIN_POLAR_PIXELS = 4
"""Smallest image side :class:`~pipeline.models.polar.PolarView` takes (two radii, and bilinear
samples inside the image)."""

EFFICIENTNET_MIN_SIZE = 32
"""Smallest input side keras.applications' EfficientNet accepts."""

MIN_INPUT_PIXELS: dict[str, int] = {
    f"efficientnet_{variant}": EFFICIENTNET_MIN_SIZE for variant in ("b0", "b1", "b2")
}
"""Smallest input side per architecture (those not named: any)."""
