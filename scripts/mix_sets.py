"""Mix labelled cutout sets of one layout (e.g. several simulators) into one directory with one catalog.

``lenshunt ingest`` reads one directory and one label catalog, and a store never mixes sets. To
train on objects of several simulators (``scripts/train_shipped_model.sh``), this tool makes one
source directory of them: the first ``N`` objects (by id) of each set, their band files hard-linked
(copied across file systems) to the layout's paths, and one catalog holding every row with the
union of the columns, a ``simulator`` column naming the set, a ``kind`` column where a set
names its kinds ``sim_kind`` (lenshunt's simulator), and every set's ``# column NAME: [UNIT]``
header lines (a set that declares none has the layout's ``catalog.units``)::

    python scripts/mix_sets.py OUT --layout euclid-sglc2 ours=DIR:8000 othersim=DIR:8000 ...

The Einstein radius is carried as ``ein_area`` (the challenge catalogs' column, which
``lenshunt train --outputs theta_e`` reads first): a set whose catalog has ``theta_e`` but no
``ein_area`` gets ``ein_area = pi theta_e**2`` in the square of ``theta_e``'s unit.

Errors (one line, exit status 2, nothing written): an id in two sets, a set with fewer than ``N``
catalogued objects, an object of the catalog without a file in some band, two sets declaring
different units for one column, a set name used twice, or an ``OUT`` that is not empty.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.sources.discovery import discover
from pipeline.sources.labels import find_label_catalog
from pipeline.training.targets import header_units
from schemas.layout import Layout, load_layout

SET_COLUMN = "simulator"


class MixError(Exception):
    """A set that cannot be mixed (the message says which and why)."""


@dataclass(frozen=True)
class SetSpec:
    """One input set: its name (the ``simulator`` column), directory and number of objects."""

    name: str
    root: Path
    n: int


def parse_set(text: str) -> SetSpec:
    """``NAME=DIR:N`` -> :class:`SetSpec` (argparse type)."""
    name, sep, rest = text.partition("=")
    root, colon, n = rest.rpartition(":")
    if not sep or not name or not colon or not root:
        raise argparse.ArgumentTypeError(f"a set is NAME=DIR:N, got {text!r}")
    try:
        count = int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"N in {text!r} is not an integer") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"N in {text!r} must be at least 1")
    return SetSpec(name, Path(root), count)


def read_set(layout: Layout, spec: SetSpec) -> tuple[pd.DataFrame, dict[str, str], dict[str, list[Path]]]:
    """The first ``spec.n`` catalog rows by id, the header units, and each band's files for them."""
    catalog = find_label_catalog(layout, spec.root)
    if catalog is None:
        raise MixError(f"set {spec.name}: no catalog matching {layout.catalog.pattern!r} in {spec.root}")
    text = catalog.read_text(encoding="utf-8-sig")
    table = pd.read_csv(io.StringIO(text), comment=layout.catalog.comment, skipinitialspace=True)
    id_column = layout.catalog.id_column
    table = table.sort_values(id_column, kind="stable")
    if table[id_column].duplicated().any():
        raise MixError(f"set {spec.name}: {catalog} repeats ids; mix sets with one row per object")
    if len(table) < spec.n:
        raise MixError(f"set {spec.name}: {catalog} has {len(table)} objects, fewer than the {spec.n} asked")
    table = table.head(spec.n).reset_index(drop=True)
    # the layout's catalog.units are the units of a catalog that declares none (the challenge's own)
    units = {**dict(layout.catalog.units or {}), **header_units(catalog, layout.catalog.comment)}
    if "ein_area" not in table.columns and "theta_e" in table.columns:
        unit = units.get("theta_e") or "arcsec"
        table["ein_area"] = math.pi * pd.to_numeric(table["theta_e"], errors="coerce") ** 2
        units["ein_area"] = f"{unit}2" if unit.isalpha() else f"({unit})2"
    if "kind" not in table.columns and "sim_kind" in table.columns:  # lenshunt's name for it
        table["kind"] = table["sim_kind"]
    table[SET_COLUMN] = spec.name
    manifest = discover(layout, spec.root)
    where = {int(object_id): row for row, object_id in enumerate(manifest.object_ids)}
    files: dict[str, list[Path]] = {band.name: [] for band in layout.bands}
    for object_id in table[id_column].astype(np.int64):
        row = where.get(int(object_id))
        for band in layout.bands:
            path = None if row is None else manifest.paths[band.name][row]
            if path is None:
                raise MixError(
                    f"set {spec.name}: object {object_id} has no {band.name} file under {spec.root}"
                )
            files[band.name].append(Path(path))
    return table, units, files


def same_unit(a: str, b: str) -> bool:
    """Whether two catalog units are the same (astropy's reading; ``AB mag`` is read as ``mag``)."""
    from astropy import units as u

    from pipeline.training.targets import AB_MAG_UNIT

    a, b = ("mag" if AB_MAG_UNIT.match(x) else x.strip() for x in (a, b))
    if a == b:
        return True
    try:
        return u.Unit(a or "") == u.Unit(b or "")
    except ValueError:
        return False


def merged_units(per_set: dict[str, dict[str, str]]) -> dict[str, str]:
    """Column -> unit over all sets; a column two sets give different units is an error."""
    units: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, set_units in per_set.items():
        for column, unit in set_units.items():
            if column in units and not same_unit(units[column], unit):
                raise MixError(
                    f"column {column!r} is [{units[column]}] in set {owner[column]} and [{unit}] "
                    f"in set {name}; convert one catalog first"
                )
            units.setdefault(column, unit)
            owner.setdefault(column, name)
    return units


def link(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target``, or copy it where a link cannot be made."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def mix_sets(out: Path, layout: Layout, specs: list[SetSpec]) -> pd.DataFrame:
    """Write the mixed directory ``out`` (see the module docstring); returns the mixed catalog.

    Raises
    ------
    MixError
        For the reasons the module docstring lists; nothing is written then.
    """
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise MixError(f"set names must differ, got {names}")
    if out.exists() and any(out.iterdir()):
        raise MixError(f"{out} is not empty; give a new directory")
    tables, units, files = {}, {}, {}
    for spec in specs:
        tables[spec.name], units[spec.name], files[spec.name] = read_set(layout, spec)
    id_column = layout.catalog.id_column
    seen: dict[int, str] = {}
    for name, table in tables.items():
        for object_id in table[id_column].astype(np.int64):
            if int(object_id) in seen:
                raise MixError(f"object id {object_id} is in set {seen[int(object_id)]} and in set {name}")
            seen[int(object_id)] = name
    all_units = merged_units(units)
    for band in layout.bands:
        for spec in specs:
            for object_id, source in zip(tables[spec.name][id_column], files[spec.name][band.name]):
                target = out / band.path_for(int(object_id), layout.id_digits)
                if source.name.startswith(target.name):  # keep a compression suffix (.gz, .fz)
                    target = target.with_name(source.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                link(source, target)
    mixed = pd.concat(list(tables.values()), ignore_index=True).sort_values(id_column, kind="stable")
    head = [f"mixed set ({layout.name}): " + ", ".join(f"{s.name}: {s.n} objects of {s.root}" for s in specs)]
    head.append(f"label rule: {layout.catalog.label_rule}")
    head.append(f"column {SET_COLUMN}: which set the object comes from")
    head += [f"column {column}: [{unit}]" for column, unit in all_units.items()]
    pattern = layout.catalog.pattern
    name = pattern.replace("*", "_mix", 1) if "*" in pattern else pattern
    with open(out / name, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{layout.catalog.comment} {line}\n" for line in head))
        mixed.to_csv(handle, index=False, na_rep="nan")
    return mixed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/mix_sets.py", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="new directory for the mixed set")
    parser.add_argument(
        "sets", nargs="+", type=parse_set, metavar="NAME=DIR:N", help="a set and how many of its objects"
    )
    parser.add_argument("--layout", default="euclid-sglc2", help="layout name or YAML path")
    args = parser.parse_args(argv)
    try:
        mixed = mix_sets(args.out, load_layout(args.layout), args.sets)
    except (MixError, OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    counts = mixed[SET_COLUMN].value_counts().to_dict()
    print(f"{len(mixed)} objects in {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
