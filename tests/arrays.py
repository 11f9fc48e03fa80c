"""Array helpers for tests that run on NumPy and, where a GPU is, CuPy."""

from __future__ import annotations

import numpy as np


def host(x) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array."""
    return x.get() if hasattr(x, "get") else np.asarray(x)
