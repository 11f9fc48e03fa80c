"""A fine-tuned bundle's record of the model it started from (``training/parent.json``).

Written by ``lenshunt train --init`` (:func:`pipeline.training.lineage.save_parent`); read by the
checks of what a bundle learned (:mod:`pipeline.models.lineage`) and by ``lenshunt inspect
--compare`` (:mod:`pipeline.inspection.round_models`), which sits beside training, not above it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PARENT_FILE = "parent.json"
"""A fine-tune's record of its ``--init`` bundle in ``training/``: ``init`` (resolved path),
``model_sha256`` (of its ``model.keras``), ``training_files`` (whether it had a ``training``
directory, hence a split that can be checked) and ``kept_start`` (no trained epoch beat the starting
weights, so the bundle holds them unchanged; absent in bundles trained before it was recorded)."""


def parent_record(bundle: str | Path) -> dict[str, Any]:
    """A fine-tuned ``bundle``'s :data:`PARENT_FILE` record; ``{}`` where it was not fine-tuned (or
    the record is missing or unreadable)."""
    try:
        record = json.loads((Path(bundle) / "training" / PARENT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
