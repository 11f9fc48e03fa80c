"""What a stopped ``lenshunt train`` did to its OUT, in the words of the CLI's one-line stop message.

A stopped run removes an OUT it made that holds no bundle (``train_flow``; the folders above it that
it made too), leaves a bundle it was replacing with ``--overwrite`` as it was (the new one is written
beside it, :mod:`pipeline.training.replacement`), and keeps what it wrote in an OUT that existed
before, and the member bundles an ensemble finished. Trial: the message said how to train again, but
not that OUT was removed, or what was kept. The message compares OUT's files after the stop with
those before the run (:func:`out_files`), so it says what happened, not what should have.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.training import aside_dir, check_output, holds_bundle, working_dir

_SHOWN = 4
"""How many changed files the message names."""


def out_files(out: str | Path) -> dict[str, tuple[int, int]] | None:
    """(size, modification time in ns) of each file under ``out``, by path relative to it; None where
    ``out`` is not a folder. The run's lock file is left out (it holds the run's pid only)."""
    out = Path(out)
    if not out.is_dir():
        return None
    return {
        path.relative_to(out).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(out.rglob("*"))
        if path.is_file() and not (path.name.startswith(".lenshunt-") and path.name.endswith(".lock"))
    }


def _named(names: list[str]) -> str:
    """The first few of ``names``, and how many more."""
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def stopped_message(out: str | Path, before: dict[str, tuple[int, int]] | None, overwrite: bool) -> str:
    """What a train run stopped now left of ``out``, whose files were ``before`` (:func:`out_files`
    before the run; None: it did not exist), and how to train again.

    Examples
    --------
    >>> stopped_message("/no/such/model", None, False)  # doctest: +NORMALIZE_WHITESPACE
    '/no/such/model is not kept: it did not exist before this run, and nothing the run wrote is left;
     training does not resume: rerun the same command to train again from the start'
    """
    out = Path(out)
    after = out_files(out)
    members = sorted(member.name for member in out.glob("*") if member.is_dir() and holds_bundle(member))
    if after is None:
        said = (
            f"{out} is not kept: it did not exist before this run, and nothing the run wrote is left"
            if before is None
            else f"{out} no longer exists"
        )
        if aside_dir(out).is_dir():  # the stop came between the two renames that replace a bundle
            said += f"; the bundle it held is at {aside_dir(out)}, which the next run into it puts back"
    else:
        written = [name for name, state in after.items() if (before or {}).get(name) != state]
        if before is None:
            said = f"{out} is kept, made by this run: it holds {_what(written, members)}"
        elif not written:
            said = f"{out} is as it was before this run"
        else:
            said = f"{out} existed before this run and is kept, with what the run wrote there: "
            said += _what(written, members)
    work = working_dir(out)
    if overwrite and work.is_dir():
        said += f"; the unfinished new bundle {work} is left beside it (the next run into {out} removes it)"
    elif overwrite and after is not None and before is not None and _held_bundle(before):
        said += " (the new bundle, written beside it, is removed)"
    if members or _refused(out):  # review: a stopped --folds run with a member done was told to rerun it
        return f"{said}; training does not resume: rerun with --overwrite (or another OUT) to train again"
    return f"{said}; training does not resume: rerun the same command to train again from the start"


def _what(written: list[str], members: list[str]) -> str:
    """The files ``written``, those of finished member bundles (``members``) named by their folder.

    >>> _what(["fold-0/card.json", "fold-0/model.keras", "fold-1/training/split.json"], ["fold-0"])
    'the member bundles fold-0 and fold-1/training/split.json'
    """
    bundles = [member for member in members if any(name.startswith(f"{member}/") for name in written)]
    loose = [name for name in written if name.split("/")[0] not in bundles]
    parts = [f"the member bundles {', '.join(bundles)}"] if bundles else []
    parts += [_named(loose)] if loose else []
    return " and ".join(parts) or "nothing but its lock file"


def _held_bundle(files: dict[str, tuple[int, int]]) -> bool:
    """Whether ``files`` (:func:`out_files`) are those of a bundle or an ensemble."""
    return "card.json" in files or "ensemble.json" in files


def _refused(out: Path) -> bool:
    """Whether training into ``out`` without --overwrite is refused (:func:`check_output`)."""
    from pipeline.training import TrainingError

    try:
        check_output(out, False)
    except TrainingError:
        return True
    return False
