"""The package layout's rules, read from the source: the library's stages and what may import what.

``pipeline`` never imports ``prefect`` or ``flows``; a stage imports only stages below it (lazy
imports inside functions count too); ``flows`` imports only the public names of each package.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Stage rank, lowest first: a module may import its own stage and lower-ranked ones only, and
# stages of one rank are independent of each other.
STAGE_RANK = {
    "base": 0,  # pipeline/__init__, atomic, errors, flags, lazy, locking, paths
    "sources": 1,
    "compute": 1,
    "store": 2,
    "simulate": 2,  # counts lenses with the label reader's rule evaluation (sources)
    "preprocess": 3,
    "models": 4,
    "catalog": 5,
    "evaluation": 6,
    "scoring": 7,
    "training": 7,
    "inspection": 7,  # the grading page; grade logs and consensus live in evaluation
}
TOP_MODULES = {"atomic", "errors", "flags", "lazy", "locking", "paths", "rates"}
FORBIDDEN_IN_LIBRARY = ("prefect", "flows")


def _stage(module: str) -> str | None:
    """Stage of a dotted ``pipeline`` module name, None outside ``pipeline``."""
    parts = module.split(".")
    if parts[0] != "pipeline":
        return None
    if len(parts) == 1 or parts[1] in TOP_MODULES or parts[1] in ("__version__", "code_commit"):
        return "base"
    return parts[1]


def _imports(path: Path, text: str | None = None) -> list[tuple[int, str, list[str]]]:
    """Every import in a file (or in ``text`` as that file), at any depth: (line, module, names)."""
    tree = ast.parse(path.read_text() if text is None else text, filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def _library_files() -> list[Path]:
    return sorted((REPO / "pipeline").rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_stage_package_is_ranked():
    packages = {p.name for p in (REPO / "pipeline").iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(STAGE_RANK), f"unranked stage packages: {packages - set(STAGE_RANK)}"
    loose = {p.stem for p in (REPO / "pipeline").glob("*.py")} - {"__init__"}
    assert loose == TOP_MODULES


def test_library_never_imports_prefect_or_flows():
    offenders = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in _library_files()
        for line, module, _names in _imports(path)
        if module.split(".")[0] in FORBIDDEN_IN_LIBRARY
    ]
    assert offenders == []


def _import_violations(files: list[Path], texts: dict[Path, str] | None = None) -> list[str]:
    violations = []
    for path in files:
        own = _stage(_module_name(path))
        for line, module, names in _imports(path, (texts or {}).get(path)):
            targets = [module]
            if module == "pipeline":  # ``from pipeline import paths``: the names are modules
                targets = [f"pipeline.{name}" for name in names]
            for target in targets:
                stage = _stage(target)
                if stage is None or stage == own:
                    continue
                if STAGE_RANK[stage] >= STAGE_RANK[own]:
                    violations.append(f"{path.relative_to(REPO)}:{line}: {own} imports {target} ({stage})")
    return violations


def test_lower_stages_never_import_higher_ones():
    assert _import_violations(_library_files()) == []


def test_the_layering_check_catches_an_upward_import():
    """The rule above can fail: a store module importing scoring (even lazily) is reported."""
    store_module = REPO / "pipeline" / "store" / "zarr_store.py"
    text = "from pipeline.flags import Flag\n\ndef f():\n    from pipeline.scoring import score_store\n"
    violations = _import_violations([store_module], {store_module: text})
    assert violations == ["pipeline/store/zarr_store.py:4: store imports pipeline.scoring (scoring)"]


def test_flows_import_only_public_names():
    """``flows`` uses ``from pipeline.<package> import <name in __all__>`` (or a top-level module)."""
    offenders = []
    for path in sorted((REPO / "flows").glob("*.py")):
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "pipeline":
                continue
            where = f"{path.relative_to(REPO)}:{line}"
            if len(parts) > 2:
                offenders.append(f"{where}: imports the private module {module}")
                continue
            if len(parts) == 1 or parts[1] in TOP_MODULES:
                continue
            exported = set(importlib.import_module(module).__all__)
            offenders.extend(
                f"{where}: {module}.{name} is not public" for name in names if name not in exported
            )
    assert offenders == []


@pytest.mark.parametrize("package", sorted(p for p in STAGE_RANK if p != "base"))
def test_each_package_says_what_it_holds_and_exports_it(package):
    module = importlib.import_module(f"pipeline.{package}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40
    assert module.__all__, f"pipeline.{package} exports nothing"
    for name in module.__all__:
        assert getattr(module, name) is not None


@pytest.mark.parametrize("package", sorted(p for p in STAGE_RANK if p != "base"))
def test_no_exported_name_shadows_a_submodule(package):
    """``import pipeline.store.ingestion as m`` must give the module, not a function of that name."""
    modules = {p.stem for p in (REPO / "pipeline" / package).glob("*.py")}
    exported = set(importlib.import_module(f"pipeline.{package}").__all__)
    assert exported & modules == set()
