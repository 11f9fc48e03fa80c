"""lenshunt: find strong gravitational lenses in survey-scale FITS cutouts.

``pipeline`` is the library. It knows nothing of Prefect: pure compute on arrays, I/O at the
edges, and the few modules that build Dask graphs. Heavy imports (TensorFlow, JAX, CuPy,
dask-cuda) happen inside the functions that need them, so ``import pipeline`` stays fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lenshunt")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
