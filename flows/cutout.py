"""``lenshunt cutout STORE OBJECT_ID [OBJECT_ID ...] --out DIR``: objects' bands as FITS files with
the input WCS.

No Prefect flow: it reads the objects and writes a few small files each. With several ids, one that
cannot be written (not in the store, a file that exists) is said in an error line and the others
are still written; the exit status is 1 if any object got no file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.preflight import outside_stores
from pipeline.errors import StoreError
from pipeline.store import interrupted_reread, reread_line, store_writer_elsewhere, write_cutouts

USES_PREFECT = False  # reads the store and writes FITS files; no flow runs
WRITES_IN = "out"  # a full disk's error names it (flows.cli)

HELP = "write objects' bands as FITS files with the input's pixels and WCS (for DS9, Aladin, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, help="a lenshunt Zarr store")
    parser.add_argument(
        "object_ids",
        type=int,
        nargs="+",
        metavar="OBJECT_ID",
        help="the objects' ids (catalog column object_id), one or more",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory for <OBJECT_ID>_<BAND>.fits (the id with the layout's id_digits)",
    )
    parser.add_argument("--bands", nargs="+", default=None, help="bands to write (default: all)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")


def run(args: argparse.Namespace) -> int:
    outside_stores(args.out, "--out")  # trial: files written inside the store made it warn on every read
    try:
        state = interrupted_reread(args.store)
    except StoreError:  # no store: write_cutouts says so
        state = None
    if state is not None:  # trial: said in the cutouts' COMMENT alone
        writer = store_writer_elsewhere(args.store)  # running, not interrupted: as info says (review)
        said = f"an ingest --reread is rewriting the objects of {args.store} now ({writer})" if writer else ""
        print(f"lenshunt cutout: warning: {said or reread_line(args.store, state)}", file=sys.stderr)
    if len(args.object_ids) == 1:  # its error is the command's (flows.cli)
        return 0 if _write(args, args.object_ids[0], "") else 1
    written = 0
    for object_id in dict.fromkeys(args.object_ids):  # trial: one id only; each id once
        try:
            written += _write(args, object_id, f"{object_id} ")
        except StoreError as exc:  # the others are still written
            print(f"lenshunt cutout: error: {exc}", file=sys.stderr)
    return 0 if written == len(set(args.object_ids)) else 1


def _write(args: argparse.Namespace, object_id: int, label: str) -> bool:
    """Write one object's cutouts and say so, each line after ``label``; whether any file was written."""
    result = write_cutouts(args.store, object_id, args.out, bands=args.bands, overwrite=args.overwrite)
    for band, path in result.files.items():
        note = result.notes.get(band)
        print(f"{label}{band:6s} {path}" + (f" ({note})" if note else ""))
    for band, reason in result.skipped.items():
        print(f"{label}{band:6s} not written: {reason}")
    warning = result.position_warning()  # trial: a cutout placed its object 278" off in DS9, unsaid
    if warning:
        print(f"lenshunt cutout: warning: {warning}", file=sys.stderr)
    return bool(result.files)
