"""Whole-file writes that readers never see half done, and that leave nothing behind when they fail."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file beside it and a rename; return the path.

    A failed write or rename (a full disk, an immutable or unwritable target) deletes the temporary
    (``.NAME.PID.tmp``) before the error propagates (trial: each failed report left one behind).

    Raises
    ------
    OSError
        As the write or :func:`os.replace` raised it.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    return path
