"""The ``lenshunt`` command line: one subcommand per flow, each in its own module.

Every command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, str] = {
    "simulate": "flows.simulate",
    "ingest": "flows.ingest",
    "train": "flows.train",
    "score": "flows.score",
    "evaluate": "flows.evaluate",
    "run": "flows.run",
    "serve": "flows.serve",
    "info": "flows.info",
    "cutout": "flows.cutout",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenshunt",
        description="Find strong gravitational lenses in survey-scale FITS cutouts.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from pipeline import __version__

        print(f"lenshunt {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from flows.common import summaries_off_console
    from pipeline.compute import quiet_tensorflow
    from pipeline.errors import LenshuntError
    from schemas.layout import LayoutError

    quiet_tensorflow()
    summaries_off_console()
    try:
        return int(args._module.run(args) or 0)
    except (LenshuntError, LayoutError, FileNotFoundError) as exc:
        print(f"lenshunt {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
