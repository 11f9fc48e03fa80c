"""A path field of a pydantic model that takes a ``str`` or any ``os.PathLike`` and keeps the ``str``.

A field typed ``str`` refuses a :class:`pathlib.Path` ("Input should be a valid string"; fresh-user
trial: ``TrainConfig(init=pipeline.paths.shipped_model())``). :data:`PathText` takes either and stores
:func:`os.fspath` of it, so the model, its JSON and its equality are those a ``str`` gave.

Examples
--------
>>> from pathlib import Path
>>> from pydantic import BaseModel
>>> class Example(BaseModel):
...     where: PathText
...     many: tuple[PathText, ...] = ()
>>> Example(where=Path("models/a"), many=(Path("b"),)).model_dump_json()
'{"where":"models/a","many":["b"]}'
>>> Example(where=Path("models/a")) == Example(where="models/a")
True
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import BeforeValidator


def fspath_or_value(value: Any) -> Any:
    """``os.fspath(value)`` of a path-like ``value`` (str paths only: a bytes path stays as given and
    is refused as a string is); anything else unchanged, for the ``str`` validation to judge."""
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return path if isinstance(path, str) else value
    return value


PathText = Annotated[str, BeforeValidator(fspath_or_value)]
"""A ``str`` field that also takes an ``os.PathLike`` (stored as its ``os.fspath`` string)."""
