"""The command line of :func:`pipeline.training.domains.main` (``python -m pipeline.training.domains``)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["build_parser", "pairs"]


def build_parser() -> argparse.ArgumentParser:
    """The options of the domain check."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.training.domains",
        description="score a bundle on in-domain and shifted labelled stores; report the AUROC drops",
    )
    parser.add_argument("bundle", type=Path, help="model bundle or ensemble directory")
    parser.add_argument(
        "--domain", action="append", required=True, metavar="NAME=STORE", help="a labelled store (repeat)"
    )
    parser.add_argument("--reference", default=None, help="the in-domain store's name (default: the first)")
    parser.add_argument(
        "--ceiling",
        action="append",
        default=[],
        metavar="NAME=BUNDLE",
        help="a model trained on domain NAME itself (never on its store): its AUROC there is the "
        "domain's ceiling, and the report gives this model's transfer gap to it (none where that model "
        "learned from the store's objects, was trained on it, or cannot be checked) (repeat)",
    )
    parser.add_argument(
        "--ceiling-from",
        action="append",
        default=[],
        metavar="NAME=CARD",
        help="carry domain NAME's ceiling from an earlier check of the same held-out store (its card.json "
        "or bundle) instead of scoring the ceiling model again (repeat)",
    )
    parser.add_argument("--tta", action="store_true", help="average over the 8 dihedral transforms")
    parser.add_argument("--dry-run", action="store_true", help="print only; leave the card alone")
    parser.add_argument(
        "--note",
        action="append",
        default=None,
        help="sentence appended to the card's notes, unless they have it already (repeat)",
    )
    return parser


def pairs(parser: argparse.ArgumentParser, items: list[str], option: str, what: str) -> dict[str, str]:
    """``NAME=VALUE`` items as a dict; a malformed or repeated name is the parser's usage error."""
    named: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            parser.error(f"{option} takes NAME={what}, got {item!r}")
        if name in named:
            parser.error(f"{option} names {name!r} twice ({named[name]} and {value}); give one each")
        named[name] = value
    return named
