"""The options an evaluation takes from the run's latest one (``report/evaluation.json``), and what it says.

A plain ``lenshunt evaluate`` (or ``run``, or a served firing) keeps the gallery size and beta of the
latest evaluation (trial: ``--top-n 24`` went back to 48). A saved value that is not valid is an
error naming the file, the key and the value (trial: ``"top_n": "ten"`` became 48 without a word), as
an unreadable ``score-run.json`` is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.errors import OptionValueError, SavedOptionError
from pipeline.evaluation.metrics import MAX_BETA

DEFAULT_TOP_N = 48
"""Gallery candidates of a run's first evaluation."""
DEFAULT_BETA = 1.0
"""beta of the F-beta score of a run's first evaluation (F1)."""

OPTION_KEYS = ("top_n", "beta", "threshold")
"""The keys of ``report/evaluation.json``: the options the latest evaluation used."""

_WHAT = {
    "top_n": "a whole number >= 0 (0: no gallery)",
    "beta": f"a number > 0 and <= {MAX_BETA:g}",
    "threshold": "a probability in [0, 1]",
}
_OPTION = {"top_n": "--top-n N", "beta": "--beta B (lenshunt evaluate)", "threshold": "--threshold T"}
_DEFAULT = {"top_n": f"{DEFAULT_TOP_N}", "beta": f"{DEFAULT_BETA:g}", "threshold": "the score run's"}


def valid_option(key: str, value: Any) -> bool:
    """Whether ``value`` is a valid ``key`` (``top_n``, ``beta`` or ``threshold``) of an evaluation.

    >>> valid_option("top_n", 0), valid_option("top_n", "ten"), valid_option("top_n", True)
    (True, False, False)
    >>> valid_option("threshold", 1.7), valid_option("beta", 2), valid_option("beta", 1e200)
    (False, True, False)
    """
    if isinstance(value, bool):
        return False
    if key == "top_n":
        return isinstance(value, int) and value >= 0
    if not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return 0 < value <= MAX_BETA if key == "beta" else 0 <= value <= 1


def check_options(*, top_n: Any = None, beta: Any = None, threshold: Any = None) -> None:
    """Refuse a given option that is not valid (a flow's parameter, which no argument parser checked:
    a deployment's ``top_n: -1``); None is not given.

    Raises
    ------
    pipeline.errors.OptionValueError
        Naming the option and its value.
    """
    for key, value in {"top_n": top_n, "beta": beta, "threshold": threshold}.items():
        if value is not None and not valid_option(key, value):
            raise OptionValueError(f"{key} {value!r} is not {_WHAT[key]}")


def earlier_options(out_dir: str | Path, wanted: Collection[str] = OPTION_KEYS) -> dict[str, Any]:
    """The options of ``wanted`` (those the command was not given) that the run's latest evaluation used
    (:data:`pipeline.paths.EVALUATION_OPTIONS`); {} where none is recorded. A key missing (or null)
    there is not recorded; the others in the file are not read.

    Raises
    ------
    pipeline.errors.SavedOptionError
        If a wanted option is not valid there, or the file cannot be read: naming the file, the key and
        the value, and what to do (pass the option, or correct or delete the file).

    Examples
    --------
    >>> earlier_options("/no/such/run")
    {}
    """
    wanted = [key for key in OPTION_KEYS if key in wanted]
    path = paths.report_dir(Path(out_dir)) / paths.EVALUATION_OPTIONS
    if not wanted:
        return {}
    try:
        options = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SavedOptionError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}), so the options of the run's latest "
            f"evaluation are unknown; {_fix(wanted)}"
        ) from exc
    if not isinstance(options, dict):
        raise SavedOptionError(f"{path} holds no options (a JSON object); {_fix(wanted)}")
    valid = {}
    for key in wanted:
        value = options.get(key)
        if value is None:
            continue
        if not valid_option(key, value):
            raise SavedOptionError(
                f"{path}: the saved {key} {json.dumps(value)} is not {_WHAT[key]}; {_fix([key])}"
            )
        valid[key] = value if key == "top_n" else float(value)
    return valid


def _fix(keys: list[str]) -> str:
    """How to go on past a saved option of ``keys`` that is not valid."""
    defaults = ", ".join(f"{key} {_DEFAULT[key]}" for key in keys)
    return (
        f"pass {' and '.join(_OPTION[key] for key in keys)} to use another value, or correct the value in "
        f"that file, or delete it (without it an evaluation takes the defaults: {defaults})"
    )


def options_taken(
    earlier: dict[str, Any],
    *,
    threshold: float | None,
    beta: float | None,
    top_n: int | None,
    run_threshold: float,
) -> str | None:
    """Which options not given come from the latest evaluation, and a threshold that does not (trial:
    a bare evaluate after ``--threshold 0.9 --top-n 5 --beta 2`` kept the gallery and beta, went back
    to the score run's threshold, and said nothing). None when nothing is taken or changed.

    >>> options_taken({"top_n": 5, "beta": 2.0, "threshold": 0.9}, threshold=None, beta=None,
    ...               top_n=None, run_threshold=0.5)  # doctest: +ELLIPSIS
    "--top-n 5 and --beta 2 as the run's latest evaluation; --threshold 0.5, the score run's (that ..."
    >>> options_taken({"top_n": 10**12}, threshold=None, beta=None, top_n=None, run_threshold=0.5)
    "--top-n 1000000000000 as the run's latest evaluation"
    """
    given = {"top_n": (top_n, DEFAULT_TOP_N), "beta": (beta, DEFAULT_BETA)}  # the defaults go unsaid
    kept = [
        f"--{name.replace('_', '-')} {earlier[name] if name == 'top_n' else format(earlier[name], 'g')}"
        for name, (value, default) in given.items()
        if value is None and earlier.get(name, default) != default
    ]
    parts = [f"{' and '.join(kept)} as the run's latest evaluation"] if kept else []
    before = earlier.get("threshold")
    if threshold is None and before is not None and before != run_threshold:
        parts.append(f"--threshold {run_threshold:g}, the score run's (that evaluation used {before:g})")
    return "; ".join(parts) or None
