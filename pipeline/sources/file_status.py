"""What a path that is no regular file is, in words: a named pipe, a folder, a broken symbolic link."""

from __future__ import annotations

import os
import stat


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words (``a named pipe``, ``a socket``, ...).

    >>> file_kind(stat.S_IFIFO)
    'a named pipe'
    """
    kinds = {stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device"}
    kinds |= {stat.S_ISBLK: "a block device", stat.S_ISDIR: "a folder"}
    return next((word for test, word in kinds.items() if test(mode)), "not a file")


def missing_reason(path: str) -> str:
    """Why ``path`` is missing: a broken symbolic link says where its target should be (trial: "missing
    file", so the link was not found to fix), by folder so that a moved folder is one reason."""
    if not os.path.islink(path):
        return "missing file"
    folder = os.path.dirname(os.path.realpath(path))  # of the last link's target, as far as links resolve
    if not os.path.isdir(folder):
        return f"broken symbolic link (target folder {folder} missing)"
    return f"broken symbolic link (target missing in {folder})"
