"""A command whose output another lenshunt process writes is refused before its module is imported.

``lenshunt run``, ``score``, ``train`` and ``ingest`` import Prefect, Dask and (for the model's
checks) TensorFlow as their modules load: 11 to 60 s on a busy machine. A second one into a work
directory, score folder, bundle folder or store that a running one holds was refused in one line,
but only after those imports (trial). :func:`refuse_if_busy` probes the same locks first, from the
command's words alone, and raises the refusal the command's own checks would raise (the same line).

The words are read as argparse reads them, from the few facts the probe needs (:data:`SHAPES`: the
positional arguments, the options that take no value or more than one; every other option takes
one); a test keeps these equal to the commands' parsers. Where the words are not plain (a help
option, an abbreviated option, a missing argument), the probe says nothing: argparse and the
command's own checks decide, as before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

RUN_BUSY = "wait for it to finish (a rerun then adds only what is new), or use another work directory"
"""What a second run into one work directory is told."""
TRAIN_BUSY = "wait for it to finish, or train into another directory"
"""What a second training into one OUT is told."""


class Shape(NamedTuple):
    """What of a command's words the probe reads."""

    positionals: tuple[str, ...]
    """Its positional arguments, in order (each takes one word)."""
    flags: frozenset[str]
    """Its options that take no value."""
    nargs: dict[str, int | str]
    """Its options that take other than one value (argparse's ``nargs``)."""


_CLUSTER_FLAGS = frozenset({"-h", "--help", "--dashboard"})
SHAPES: dict[str, Shape] = {
    "run": Shape(("source", "workdir"), _CLUSTER_FLAGS | {"--tta", "--overwrite"}, {}),
    "score": Shape(("store",), _CLUSTER_FLAGS | {"--tta", "--overwrite"}, {}),
    "ingest": Shape(("source", "store"), _CLUSTER_FLAGS | {"--source-moved", "--reread"}, {}),
    "train": Shape(
        ("store", "out"),
        frozenset(
            {"-h", "--help", "--overwrite", "--polar", "--no-polar", "--asymmetry", "--no-asymmetry"}
            | {"--no-augment", "--observing-augment", "--no-observing-augment", "--keep-start"}
            | {"--no-keep-start", "--grades-only", "--group-duplicates", "--no-group-duplicates"}
        ),
        {"--bands": "+", "--clip-sigma": 2, "--percentiles": 2, "--grades": "+"},
    ),
}
"""The words of the commands whose locks :func:`refuse_if_busy` probes."""

_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # argparse's: a negative number is a value, not an option


def read_words(shape: Shape, words: list[str]) -> tuple[dict[str, str], dict[str, str]] | None:
    """(positional arguments by name, the last value of each one-value option) of a command's
    ``words``, as argparse reads them; None where the probe cannot be sure (see the module)."""
    found: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(words):
        word, i = words[i], i + 1
        if word == "--":
            found += words[i:]
            break
        if not word.startswith("-") or word == "-" or _NUMBER.match(word):
            found.append(word)
            continue
        name, equals, value = word.partition("=")
        if name in shape.flags:
            if equals or name in ("-h", "--help"):
                return None  # help, or a value given to a flag: argparse's
            continue
        abbreviated = any(other.startswith(name) for other in shape.flags | set(shape.nargs))
        if not name.startswith("--") or (name not in shape.nargs and abbreviated):
            return None  # a short option, or an abbreviation (of a flag, or a list): argparse's
        nargs = shape.nargs.get(name, 1)
        if equals:
            if nargs != 1:
                return None
            values[name] = value
            continue
        taken = _values(words, i, nargs)
        if taken is None:
            return None
        if nargs == 1:
            values[name] = words[i]
        i += taken
    if len(found) != len(shape.positionals):
        return None
    return dict(zip(shape.positionals, found, strict=True)), values


def _values(words: list[str], start: int, nargs: int | str) -> int | None:
    """How many words from ``start`` an option of ``nargs`` takes; None where it would be an error."""
    taken = 0
    while start + taken < len(words) and (nargs == "+" or taken < int(nargs)):
        word = words[start + taken]
        if word == "--" or (word.startswith("-") and word != "-" and not _NUMBER.match(word)):
            break
        taken += 1
    if taken == 0 or (nargs != "+" and taken != int(nargs)):
        return None
    return taken


def refuse_if_busy(command: str, words: list[str]) -> None:
    """Raise the refusal of ``command`` (its words after its name) where another process holds a lock
    of what it writes; nothing where none does, or where the words are not plain (the module).

    Raises
    ------
    pipeline.errors.OutputBusyError, pipeline.errors.StoreBusyError
        Naming the holder, as the command's own checks do.
    """
    from pipeline import paths
    from pipeline.locking import SCORE_FOLDER_ADVICE, check_not_busy
    from pipeline.store import check_store_not_busy

    shape = SHAPES.get(command)
    read = read_words(shape, words) if shape is not None else None
    if read is None:
        return
    positionals, values = read
    if command == "run":
        workdir = Path(positionals["workdir"])
        check_not_busy(workdir, lock="run", advice=RUN_BUSY)  # the order of flows.run.check
        check_not_busy(workdir / "scores", lock="score", advice=SCORE_FOLDER_ADVICE)
        check_store_not_busy(workdir / paths.WORKDIR_STORE)
    elif command == "score" and "--out" in values:
        check_not_busy(Path(values["--out"]), lock="score", advice=SCORE_FOLDER_ADVICE)
    elif command == "train":
        check_not_busy(Path(positionals["out"]), lock="train", advice=TRAIN_BUSY)
    elif command == "ingest":
        check_store_not_busy(Path(positionals["store"]))
