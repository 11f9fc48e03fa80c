"""The Examples sections of the library's docstrings run and print what they say (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import pipeline
import schemas


def _modules() -> list[str]:
    names = []
    for package in (pipeline, schemas):
        names.append(package.__name__)
        found = pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
        names.extend(info.name for info in found)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
