"""A fine-tuned bundle's record of the model it started from (``training/parent.json``), and the
bundle a catalog was scored by (:func:`scoring_bundle`).

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


def scoring_bundle(provenance: Any) -> tuple[Any, str]:
    """The bundle a catalog's provenance names (``extras["model_path"]``) where it still is the model
    that scored it (same sha256), else None and why not in words. Read by the evaluation's check of
    learned objects and by ``inspect --compare``, which opened and checked it each in its own way.

    Parameters
    ----------
    provenance : schemas.catalog.Provenance

    Returns
    -------
    (bundle, why)
        ``(ModelBundle or EnsembleBundle, "")``, or ``(None, why)``: the catalog records no path
        (scored before lenshunt recorded it), the bundle cannot be opened there, or another model is
        there now (replaced or retrained).
    """
    from pipeline.errors import LenshuntError
    from pipeline.models.bundle import load_bundle

    path = provenance.extras.get("model_path")
    if not path:
        return None, (
            f"its catalog does not record where its model {provenance.model_id} was "
            "(scored before lenshunt recorded it)"
        )
    try:
        bundle = load_bundle(str(path))
    except (LenshuntError, OSError) as exc:
        return None, f"its model {provenance.model_id} cannot be opened at {path} ({exc})"
    if bundle.sha256 != provenance.model_sha256:
        return None, (
            f"{path} no longer holds its model {provenance.model_id} (sha256 {provenance.model_sha256[:16]}, "
            f"now {bundle.sha256[:16]}: replaced or retrained)"
        )
    return bundle, ""
