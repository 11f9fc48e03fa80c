"""The Keras backend a lenshunt process (or Dask worker) would load, checked before Keras is imported.

Keras picks its backend from ``KERAS_BACKEND``, else from ``keras.json`` in ``KERAS_HOME`` (default
``~/.keras``). A backend lenshunt does not support, one misspelt, or one not installed, failed deep in
a flow with ``ModuleNotFoundError: No module named 'torch'`` or ``ValueError: Unable to import backend
: foo``, which the CLI labelled a bug (trial). :func:`check_keras_backend` says it in one line first:
the CLI calls it for every command that loads Keras, and :mod:`pipeline.models.bundle` before it
loads a model (on a Dask worker, whose environment may differ: a GPU worker picks JAX unless
``KERAS_BACKEND`` is set, :mod:`pipeline.compute.gpu_worker`).
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from pipeline.errors import KerasBackendError

__all__ = [
    "SUPPORTED_BACKENDS",
    "check_keras_backend",
    "import_keras",
    "keras_backend_problem",
    "worker_backend_note",
]

SUPPORTED_BACKENDS = ("tensorflow", "jax")
"""The Keras backends lenshunt's models are built and tested with."""


def _configured(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The backend Keras would pick and where it is set; ``(None, "")``: Keras' own default."""
    if environ.get("KERAS_BACKEND"):  # empty: unset, as Keras reads it (trial: '' was refused)
        return environ["KERAS_BACKEND"], "KERAS_BACKEND"
    home = Path(environ.get("KERAS_HOME") or Path("~/.keras").expanduser())
    try:
        backend = json.loads((home / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):  # no file, or one Keras itself ignores
        return None, ""
    return (backend, f"the backend of {home / 'keras.json'}") if isinstance(backend, str) else (None, "")


def keras_backend_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why Keras would fail to load its backend in this process, in one line; None: no problem seen.

    Parameters
    ----------
    environ
        The environment to read (default ``os.environ``).
    """
    name, where = _configured(os.environ if environ is None else environ)
    if name is None:
        return None
    installed = [backend for backend in SUPPORTED_BACKENDS if _installed(backend)]
    choices = " or ".join(installed) or "tensorflow or jax (neither is installed)"
    # trial: "or unset it" was said of keras.json's backend, which only an edit of that file changes
    fix = "or unset it" if where == "KERAS_BACKEND" else "or edit that file"
    if name not in SUPPORTED_BACKENDS:
        return (
            f"{where} is {name!r}, not a Keras backend lenshunt supports ({', '.join(SUPPORTED_BACKENDS)}): "
            f"set KERAS_BACKEND to {choices}, {fix}"
        )
    if name not in installed:
        missing = [module for module in (name, *REQUIRES.get(name, ())) if not _found(module)] or [name]
        return (
            f"{where} is {name!r}, which is not installed here (no module {missing[0]!r}): install it, or "
            f"set KERAS_BACKEND to {choices}"
        )
    return None


REQUIRES = {"jax": ("jaxlib",)}
"""Modules a backend cannot import without (``pip install jax`` alone brings no ``jaxlib`` on some
platforms), looked for as the backend's own module is, without importing them."""


def _installed(module: str) -> bool:
    """Whether top-level ``module`` (and what it requires, :data:`REQUIRES`) is on ``sys.path``, without
    importing it, and past the import hooks (:func:`~pipeline.compute.quiet.quiet_tensorflow`'s finder
    serves ``tensorflow`` once: the import)."""
    return all(_found(name) for name in (module, *REQUIRES.get(module, ())))


def _found(module: str) -> bool:
    """Whether top-level ``module`` is imported or on ``sys.path`` (:func:`_installed`)."""
    return module in sys.modules or importlib.machinery.PathFinder.find_spec(module) is not None


def check_keras_backend() -> None:
    """Raise :class:`~pipeline.errors.KerasBackendError` when :func:`keras_backend_problem` sees one."""
    problem = keras_backend_problem()
    if problem is not None:
        raise KerasBackendError(problem)


def import_keras() -> ModuleType:
    """``keras``, imported after :func:`check_keras_backend`; a backend that is installed but fails to
    import (a missing or broken ``jaxlib``, a damaged TensorFlow) raises one line too. TensorFlow's
    start-up noise is filtered (:func:`~pipeline.compute.quiet.quiet_tensorflow`; trial: a Python
    script loading a model printed the absl and oneDNN lines the CLI hides).

    Trial: with ``jaxlib`` unimportable, ``KERAS_BACKEND=jax lenshunt score`` ended after screens of
    Dask and Prefect retries in "unexpected ModuleNotFoundError: jax requires jaxlib ... (a bug)":
    the check above sees only whether the backend's module is on the path.

    Raises
    ------
    KerasBackendError
        Naming the backend, where it was chosen, the import error, and the fix.
    """
    from pipeline.compute.quiet import quiet_tensorflow

    check_keras_backend()
    quiet_tensorflow()
    try:
        import keras
    except KerasBackendError:
        raise
    except Exception as exc:  # ImportError, or RuntimeError (a jaxlib older than jax needs), ...
        name, where = _configured(os.environ)
        chosen = f"{name!r} ({where})" if name else "'tensorflow' (Keras' default)"
        others = [backend for backend in SUPPORTED_BACKENDS if backend != (name or "tensorflow")]
        raise KerasBackendError(
            f"Keras could not import its backend {chosen}, which is installed but fails to import "
            f"({type(exc).__name__}: {exc}): reinstall it (pip install --force-reinstall), or set "
            f"KERAS_BACKEND to {' or '.join(others)}"
        ) from exc
    return keras


def worker_backend_note(worker_backends: Iterable[str], environ: Mapping[str, str] | None = None) -> str:
    """One line where Dask workers ran another Keras backend than this process is set to; else ``""``.

    Each worker loads Keras with its own environment: workers started by hand (``dask worker``,
    ``--scheduler``) without ``KERAS_BACKEND`` score under TensorFlow whatever the client's is
    (fresh-user trial: ``KERAS_BACKEND=jax lenshunt score --scheduler`` scored under TensorFlow unsaid).

    Parameters
    ----------
    worker_backends
        The backends the workers reported (``""`` or ``unknown``: not known, ignored).
    environ
        The client's environment (default ``os.environ``).

    >>> worker_backend_note(["tensorflow"], {"KERAS_BACKEND": "jax"})  # doctest: +NORMALIZE_WHITESPACE
    "the Dask workers' Keras backend was used (tensorflow), not this process's KERAS_BACKEND (jax):
     each worker loads Keras with its own environment; to score with jax, start the workers with
     KERAS_BACKEND=jax"
    >>> worker_backend_note(["jax"], {"KERAS_BACKEND": "jax"})
    ''
    """
    name, where = _configured(os.environ if environ is None else environ)
    used = sorted({backend for backend in worker_backends if backend and backend != "unknown"})
    if name is None or not [backend for backend in used if backend != name]:
        return ""
    setting = "this process's KERAS_BACKEND" if where == "KERAS_BACKEND" else where
    return (
        f"the Dask workers' Keras backend was used ({', '.join(used)}), not {setting} ({name}): each "
        f"worker loads Keras with its own environment; to score with {name}, start the workers with "
        f"KERAS_BACKEND={name}"
    )
