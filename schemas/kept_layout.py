"""Whether the layout file a model bundle keeps (``layout.yaml``) is the one it was trained with.

``lenshunt train`` keeps the training store's layout in the bundle and its sha256 in the bundle's
card (``layout_sha256``; :func:`pipeline.models.bundle.save_bundle`). A file edited since (a band
renamed, another masked value) would read new sets otherwise than the model was trained on, without
a word (trial). An ensemble keeps a copy of its first member's file, checked against that member's
card. Bundles saved before the card recorded the sum are not checked.

This module reads JSON and bytes only: the layout loader (:func:`schemas.layout.load_layout` of a
bundle folder) and the model package (:func:`pipeline.models.recipe_layout_file`) share it.

Examples
--------
>>> kept_layout_problem(Path("/no/such/bundle/layout.yaml"))
''
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CARD_NAME = "card.json"
"""A bundle's card (:data:`pipeline.models.integrity.CARD_FILE`)."""

ENSEMBLE_NAME = "ensemble.json"
"""An ensemble's member list (:data:`pipeline.models.integrity.ENSEMBLE_FILE`)."""


def _card_of(folder: Path) -> Path:
    """The card vouching for ``folder``'s layout file: its own, or an ensemble's first member's."""
    if not (folder / CARD_NAME).is_file() and (folder / ENSEMBLE_NAME).is_file():
        try:
            first = json.loads((folder / ENSEMBLE_NAME).read_text())["members"][0]["path"]
            return folder / str(first) / CARD_NAME
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return folder / CARD_NAME
    return folder / CARD_NAME


def kept_layout_problem(layout_file: str | Path) -> str:
    """What is wrong with a bundle's kept ``layout_file`` against its card's ``layout_sha256``, in words.

    Parameters
    ----------
    layout_file : str or pathlib.Path
        The ``layout.yaml`` in a bundle (or ensemble) folder.

    Returns
    -------
    str
        ``""`` where the file's sha256 is the card's, or the card (or its sum) is missing or unreadable
        (an older bundle: the bundle's own checks say what is wrong with a damaged card); else a
        sentence naming both sums and the way out.
    """
    layout_file = Path(layout_file)
    card = _card_of(layout_file.parent)
    try:
        expected = json.loads(card.read_text()).get("layout_sha256", "")
        actual = hashlib.sha256(layout_file.read_bytes()).hexdigest()
    except (OSError, ValueError, AttributeError):
        return ""
    if not isinstance(expected, str) or not expected or actual == expected:
        return ""
    return (
        f"{layout_file} has sha256 {actual[:12]}..., the card {card} says {expected[:12]}...: it was edited "
        "or replaced after training, and would read new cutouts otherwise than the model was trained on; "
        "restore it (lenshunt info --layout-yaml TRAINING_STORE writes the training store's layout)"
    )
