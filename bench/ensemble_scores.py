"""AUROC of the mean of several baseline runs' scores against each run alone, per test set and kind.

Each RUN_DIR holds one ``python -m bench.baseline_cnn ... --save-scores RUN_DIR`` run's scores,
one ``NAME.npz`` per test store. For every test name in all of them, this prints each run's AUROC,
the ensemble's (the mean of the runs' scores per object, as a lenshunt ensemble bundle scores:
``pipeline.models.ensemble``), and the ensemble's AUROC of all lenses against each non-lens kind::

    python -m bench.ensemble_scores runs/scores/seed0 runs/scores/seed1 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation import auroc
from pipeline.evaluation.breakdown import auroc_by_kind


class ScoresMismatchError(ValueError):
    """Runs whose saved scores are not of the same objects in the same order with the same labels."""


REQUIRED = ("object_id", "label", "score")
"""Arrays every saved run has, each of shape (n,)."""


def load_run(path: Path) -> dict[str, np.ndarray]:
    """One saved ``NAME.npz``: ``object_id``, ``label``, ``score`` and maybe ``kind``, shapes (n,).

    Raises
    ------
    ScoresMismatchError
        Not a readable ``.npz`` of those arrays, or arrays of other shapes.
    """
    try:
        with np.load(path, allow_pickle=False) as saved:
            run = {key: saved[key] for key in saved.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ScoresMismatchError(f"{path} is not a saved run's scores ({exc})") from exc
    missing = [key for key in REQUIRED if key not in run]
    if missing:
        raise ScoresMismatchError(
            f"{path} lacks {', '.join(missing)}: not saved by bench.baseline_cnn --save-scores"
        )
    shapes = {run[key].shape for key in (*REQUIRED, *(["kind"] if "kind" in run else []))}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ScoresMismatchError(f"{path} holds arrays of shapes {sorted(shapes)}, not one (n,)")
    return run


def ensemble_table(runs: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, float]:
    """{``<run name>``: AUROC of each run, ``ensemble``: AUROC of the mean score, ``ensemble_<kind>``:
    the mean score's AUROC of all lenses against the non-lenses of each kind}.

    Raises
    ------
    ScoresMismatchError
        The runs scored other objects, in another order, or with other labels.
    """
    first = runs[0]
    for name, run in zip(names[1:], runs[1:]):
        for key in ("object_id", "label"):
            if run[key].shape != first[key].shape or not np.array_equal(run[key], first[key]):
                raise ScoresMismatchError(f"{name} has other {key}s than {names[0]}: not the same test store")
    labels = first["label"]
    labelled = labels >= 0
    row = {name: float(auroc(labels[labelled], run["score"][labelled])) for name, run in zip(names, runs)}
    mean = np.mean([run["score"] for run in runs], axis=0)
    row["ensemble"] = float(auroc(labels[labelled], mean[labelled]))
    if "kind" in first:
        row |= {
            f"ensemble_{kind}": value
            for kind, (_, value) in auroc_by_kind(labels, mean, first["kind"]).items()
        }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    missing = [str(run) for run in args.runs if not run.is_dir()]
    if missing:
        parser.error(f"not a directory of saved scores: {', '.join(missing)}")
    if len(args.runs) < 2 or len({run.resolve() for run in args.runs}) != len(args.runs):
        parser.error("an ensemble needs at least two run directories, each given once")
    if args.json is not None and args.json.is_dir():
        parser.error(f"--json {args.json} is a directory: give a file")
    saved = [{p.stem for p in run.glob("*.npz")} for run in args.runs]
    tests = sorted(set.intersection(*saved))
    if not tests:
        parser.error("no test name (NAME.npz) is in every run directory")
    for name in sorted(set.union(*saved) - set(tests)):
        print(f"bench.ensemble_scores: {name} is not in every run directory: left out", file=sys.stderr)
    names = [str(run) for run in args.runs]
    rows: dict[str, dict[str, float]] = {}
    for test in tests:
        try:
            rows[test] = ensemble_table([load_run(run / f"{test}.npz") for run in args.runs], names)
        except ScoresMismatchError as error:
            print(f"bench.ensemble_scores: {test}: {error}", file=sys.stderr)
            return 2
    print("| test | " + " | ".join(names) + " | ensemble |")
    print("|---|" + "---|" * (len(names) + 1))
    for test, row in rows.items():
        print(f"| {test} | " + " | ".join(f"{row[name]:.3f}" for name in [*names, "ensemble"]) + " |")
    for test, row in rows.items():
        kinds = {
            key.removeprefix("ensemble_"): value for key, value in row.items() if key.startswith("ensemble_")
        }
        if kinds:
            print(
                f"{test}, ensemble by kind: "
                + ", ".join(f"{kind} {value:.3f}" for kind, value in kinds.items())
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
