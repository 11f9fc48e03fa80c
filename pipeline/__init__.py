"""lenshunt: find strong gravitational lenses in survey-scale FITS cutouts.

``pipeline`` is the library. It knows nothing of Prefect: pure compute on arrays, I/O at the
edges, and the few modules that build Dask graphs. Heavy imports (TensorFlow, JAX, CuPy,
dask-cuda) happen inside the functions that need them, so ``import pipeline`` stays fast.
"""

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("lenshunt")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "code_commit"]


@functools.cache
def code_commit() -> str:
    """The git commit of the source tree this package runs from, ``+dirty`` when its tracked files
    differ from it; '' where it is no git checkout (an installed wheel) or git is absent.

    Trial: catalogs said ``CODEVER = 0.1.0``, which hundreds of commits share; a catalog's provenance
    records this too (``extras["code_commit"]``).
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    commit = head.stdout.strip() if head.returncode == 0 else ""
    return commit + ("+dirty" if commit and dirty.returncode == 0 and dirty.stdout.strip() else "")
