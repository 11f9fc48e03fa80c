"""lenshunt's errors: one base class, and subclasses that also subclass the builtin they refine.

Per-run problems raise these with a message that says what, why and how to fix it. Per-object
problems do not raise out of a run: they become flags (:mod:`pipeline.flags`).
"""

from __future__ import annotations

from typing import Any


class LenshuntError(Exception):
    """Base class of every error lenshunt raises on purpose."""


class CutoutError(LenshuntError):
    """A cutout file could not be turned into an image; carries the flag it maps to."""

    def __init__(self, message: str, flag: int) -> None:
        super().__init__(message)
        self.flag = flag


class StoreError(LenshuntError, ValueError):
    """A Zarr store is missing, not a lenshunt store, or violates the store schema."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No store exists at the given path."""


class StoreExistsError(StoreError, FileExistsError):
    """A store (or something else) already exists where a new store was to be created."""


class StoreBusyError(StoreError, BlockingIOError):
    """Another process is writing the store (it holds the store's lock)."""


class SourceNotFoundError(LenshuntError, FileNotFoundError):
    """A cutout source folder is not there, or holds none of its layout's band folders (fresh-user trial:
    a bare ``FileNotFoundError``, outside ``except LenshuntError``)."""


class SourceMismatchError(StoreError):
    """An ingest was asked to add cutouts of a source other than the one the store was made from."""


class ScoreOutputError(LenshuntError, NotADirectoryError):
    """A score run's output path cannot hold a score run (e.g. it is a file)."""


class OutputBusyError(LenshuntError, BlockingIOError):
    """Another process is writing the same output folder (a score run or a training into one ``--out``)."""


class OptionValueError(LenshuntError, ValueError):
    """An option's value is not valid where no argument parser checked it (a flow's or a deployment's
    parameter, ``top_n: -1``)."""


class SavedOptionError(OptionValueError):
    """An option a work directory remembers for later runs (``score-run.json``'s threshold, the latest
    evaluation's ``report/evaluation.json``) is not valid, or its record cannot be read; the message
    names the file, the key and the value, and how to go on (pass the option, or correct the file)."""


class OutputPathError(LenshuntError, NotADirectoryError):
    """An output folder's path is taken by a file."""


class CatalogError(LenshuntError, ValueError):
    """A catalog table violates the catalog contract (columns, dtypes or values), or a file is no catalog."""


class ConservationError(LenshuntError, RuntimeError):
    """A stage's objects out differ from its objects in."""


class BundleError(LenshuntError, ValueError):
    """A model bundle is missing, corrupt, foreign, or inconsistent with its recipe."""


class ClusterError(LenshuntError, RuntimeError):
    """A Dask cluster could not be created or reached."""


class KerasBackendError(LenshuntError, ImportError):
    """The Keras backend selected (``KERAS_BACKEND`` or ``keras.json``) is not supported or not installed."""


class WorkersLostError(ClusterError):
    """A stage's Dask workers died under a task (``KilledWorker``), or none was left while work was pending.

    Not retried: Dask already ran the task on several workers, and the same settings fail the same
    way again (:mod:`pipeline.compute.workers`). The work finished before it is kept.
    """


_BOUNDS = {  # pydantic's error type of a bound -> (its key in the error's ctx, the operator)
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}


def validation_reason(error: dict[str, Any]) -> str:
    """Why one pydantic error failed, in the CLI's words.

    A bound is said as argparse types say it (``0 is not >= 1``, trial: pydantic's "Input should be
    greater than or equal to 1" beside argparse's wording); a validator's message comes without
    pydantic's ``Value error,`` prefix.

    Examples
    --------
    >>> validation_reason({"type": "greater_than_equal", "input": 0, "ctx": {"ge": 1}, "msg": "..."})
    '0 is not >= 1'
    >>> validation_reason({"type": "value_error", "msg": "Value error, folds must be >= 2"})
    'folds must be >= 2'
    """
    key, op = _BOUNDS.get(error["type"], (None, None))
    ctx = error.get("ctx") or {}
    if key in ctx and "input" in error:
        return f"{error['input']} is not {op} {ctx[key]}"
    cause = ctx.get("error")
    if error["type"] == "value_error" and cause is not None:
        return str(cause)
    return error["msg"].removeprefix("Value error, ")


def validation_problems(exc: Any) -> str:
    """A pydantic ``ValidationError`` as one line: ``field: message; field: message``."""
    problems = []
    for error in exc.errors():
        message = validation_reason(error)
        where = ".".join(map(str, error["loc"]))
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
