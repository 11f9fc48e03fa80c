"""Reading a JSON options file given on the command line (``lenshunt train --config FILE``).

New-user trial: a file that was not JSON, or JSON saved with a UTF-8 byte-order mark (Windows
Notepad), ended ``lenshunt train`` in a ``json.decoder.JSONDecodeError`` traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.training import TrainingError


def read_options_file(path: str | os.PathLike[str], option: str = "--config") -> dict[str, Any]:
    """The JSON object in ``path``, a leading UTF-8 byte-order mark allowed.

    Parameters
    ----------
    path : the file
    option : the option that named it, for the error

    Raises
    ------
    TrainingError
        In one line, naming the file (and line and column of a JSON error), where it cannot be read,
        is not UTF-8 text, is not JSON, or holds something other than a JSON object.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("wb", suffix=".json") as file:
    ...     _ = file.write(b'\\xef\\xbb\\xbf{"epochs": 3}')
    ...     file.flush()
    ...     read_options_file(file.name)
    {'epochs': 3}
    """
    fix = "give a JSON object of training options, as a run's OUT/training/config.json holds"
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{option} {path} is not UTF-8 text (byte {exc.start + 1}); {fix}") from None
    except OSError as exc:
        raise TrainingError(f"cannot read {option} {path} ({exc.strerror or exc}); check the path") from None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError(
            f"{option} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; {fix}"
        ) from None
    if not isinstance(options, dict):
        raise TrainingError(f"{option} {path} holds a JSON {type(options).__name__}, not an object; {fix}")
    return options
