"""A package's public names imported on first use (PEP 562), so light commands skip heavy imports.

``lenshunt info`` and ``--help`` must not pay for xarray, Dask or pandas; the packages whose
modules import them (:mod:`pipeline.sources`, :mod:`pipeline.store`) export their names through
:func:`lazy_exports`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``.

    Parameters
    ----------
    package : str
        The package's dotted name (for the error message).
    exports : Mapping[str, str]
        Public name -> dotted name of the module that defines it.
    namespace : dict
        The package's ``globals()``; a name is cached there at first use.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` to assign at the package's top level.

    Raises
    ------
    AttributeError
        From ``__getattr__``, for a name ``exports`` does not list.
    """

    def module_getattr(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", exports)})

    return module_getattr, module_dir
