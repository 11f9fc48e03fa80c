"""``lenshunt info STORE``: what a store holds (no Prefect flow, no Dask: metadata and two columns);
``lenshunt info BUNDLE``: what a model bundle or ensemble is (:func:`pipeline.models.model_lines`)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from flows.info_catalog import catalog_output_lines, is_catalog_output
from flows.info_scores import REASON_LINES, SCORES, is_score_folder, is_workdir, score_lines
from flows.preflight import PathCheckError
from pipeline import paths
from pipeline.errors import StoreError
from pipeline.flags import flagged_text
from pipeline.store import (
    NOT_RECORDED,
    interrupted_reread,
    older_rules_note,
    pending_warning,
    read_without_files,
    reread_line,
    store_layout,
    store_summary,
    store_writer_elsewhere,
)
from schemas.layout import Layout, available_layouts, load_layout

USES_PREFECT = False
HELP = (
    "summarise a store, a model bundle or ensemble, a work or score folder's latest run, or its catalog "
    "or report"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "store",
        type=Path,
        help="a lenshunt Zarr store, a model bundle or ensemble folder, a work directory (lenshunt run, "
        "serve: its latest run and its store), a score folder (its latest run), or a run's catalog "
        "(catalog.fits, .parquet, .vot, catalog_hats/) or report/ folder (what it is, how to open it)",
    )
    parser.add_argument(
        "--layout-yaml",
        action="store_true",
        help="print only the layout the store recorded, as a layout YAML file (to edit, or for another set)",
    )


def layout_lines(store: Path, name: str, layout: Layout) -> list[str]:
    """The layout a store recorded: its name, where it came from and each band's file and pixels
    (trial: only the name was said, and a layout file's store could not tell what it reads)."""
    if name not in available_layouts():
        origin = f"from a layout file; --layout {store} reads by it, info --layout-yaml prints it"
    elif load_layout(name).model_dump() == layout.model_dump():
        origin = "shipped"
    else:
        origin = f"an earlier version of the shipped one; the store reads by its own (--layout {store})"
    lines = [f"layout     {name}  groups {list(layout.groups)}  ({origin})"]
    for band in layout.bands:
        ny, nx = band.shape
        lines.append(
            f'  {band.name:<8} group {band.group:<6} {ny}x{nx} px at {band.pixel_scale_arcsec:g}"/px  '
            f"{band.path}"
        )
    return lines


def model_layout_yaml(bundle: Path) -> str:
    """The YAML of the layout a model bundle (or ensemble) was trained on: the shipped one of its name,
    else the layout file the bundle keeps (:func:`pipeline.models.recipe_layout_file`).

    Raises
    ------
    PathCheckError
        If the model was trained on a layout file's layout and keeps only its name (trained before
        lenshunt kept the file). Trial: ``info --layout-yaml BUNDLE > m.yaml`` wrote the model's
        summary, exit 0.
    """
    from pipeline.models import recipe_layout, recipe_layout_file, unkept_layout_reason

    name = recipe_layout(bundle)
    if name in available_layouts():
        return load_layout(name).to_yaml().rstrip("\n")
    if (kept := recipe_layout_file(bundle)) is not None:
        return load_layout(kept).to_yaml().rstrip("\n")
    raise PathCheckError(
        f"model {bundle} was trained on layout {name!r} from a layout file, and "
        f"{unkept_layout_reason(bundle)}: --layout-yaml prints it from a store made with it "
        "(lenshunt info --layout-yaml STORE)"
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.models import is_model_folder, model_lines

    if is_model_folder(args.store):  # fresh-user trial: "is not a Zarr v3 store (no zarr.json)"
        print(model_layout_yaml(args.store) if args.layout_yaml else "\n".join(model_lines(args.store)))
        return 0
    if not args.layout_yaml and is_score_folder(args.store):  # ops trial: "is not a Zarr v3 store"
        print("\n".join(score_lines(args.store)))
        return 0
    if is_catalog_output(args.store):  # trial: catalog.fits, catalog_hats/, report/ "not a Zarr v3 store"
        if args.layout_yaml:
            raise PathCheckError(
                f"{args.store} is a run's catalog or report: --layout-yaml prints the layout of a store or "
                f"model (lenshunt info --layout-yaml STORE)"
            )
        print("\n".join(catalog_output_lines(args.store)))
        return 0
    if is_workdir(args.store):  # its latest run, then its store
        if not args.layout_yaml:
            print(f"workdir    {args.store}")
            print("\n".join(score_lines(args.store / SCORES)))
        args.store = args.store / paths.WORKDIR_STORE
    try:
        summary = store_summary(args.store)
    except StoreError as error:  # final trial: said of stores only, though info takes a bundle too
        also = (
            f"info describes a store, a model bundle or ensemble, a work directory, a score folder or a "
            f"run's catalog or report, and {args.store} is none of them"
        )
        raise type(error)(f"{error}; {also}") from None
    attributes = summary.attributes
    if args.layout_yaml:
        print(attributes.layout_yaml, end="" if attributes.layout_yaml.endswith("\n") else "\n")
        return 0
    print(f"store      {args.store}")
    print("\n".join(layout_lines(args.store, attributes.layout, store_layout(attributes))))
    print(f"objects    {summary.n_objects}  (chunks of {attributes.chunk_objects})")
    writer = store_writer_elsewhere(args.store) or ""  # an ingest running, not interrupted (trial)
    if summary.n_pending:  # in the words of score, train and cutout, which leave them out
        left_out = pending_warning(args.store, "left out by score, train and cutout", writer=writer)
        print(f"pending    {left_out}")
    elif writer:
        print(
            f"writing    an ingest is still writing {args.store} ({writer}): "
            "the counts are partial until it finishes"
        )
    if (reread := interrupted_reread(args.store, attributes)) is not None:  # ops trial: said nowhere
        line = f"an ingest --reread is rewriting its objects now ({writer})" if writer else ""
        print(f"re-read    {line or reread_line(args.store, reread)}")
    print(f"labels     lens {summary.n_lens}, non-lens {summary.n_non_lens}, unknown {summary.n_unknown}")
    without = read_without_files(args.store)  # None: not recorded (a store ingested before it was)
    if without is not None and without.n:  # trial: said once by the ingest, then nowhere
        print(
            f"no file    {without.counted()}: not in the store, not scored; their files may not have "
            f"arrived yet (as {without.catalog} said)"  # trial: "the latest ingest's" read none
        )
    print(  # in the report's words (trial: 0 here, objects flagged UNLIKE_TRAINING in the report)
        f"flagged    {flagged_text(n_ingest=summary.n_flagged)}"
        + "".join(f"\n  {n:8d} {k}" for k, n in sorted(summary.flag_counts.items()))
    )
    if summary.reasons or summary.n_reasons_not_recorded:  # trial: the store keeps them, info said none
        print("reasons    ingest reasons of the flagged objects, the most common first (objects):")
        lines = [(n, reason) for reason, n in summary.reasons[:REASON_LINES]]
        lines += [(summary.n_reasons_not_recorded, NOT_RECORDED)] if summary.n_reasons_not_recorded else []
        print("\n".join(f"  {n:8d}  {reason}" for n, reason in lines))
    print(f"producer   {attributes.producer}, created {attributes.created:%Y-%m-%d %H:%M} UTC")
    older = older_rules_note(attributes.reader_revision, summary.n_objects)
    if older:
        print(f"WARNING    {older}")
    for sentence in summary.damage:  # new-user trial: a damaged store was called clean
        print(f"DAMAGED    {sentence}; ingest the cutouts into a new store")
    if summary.zero_fill:  # a store made before the fill values existed reads a deleted chunk as clean
        layout = attributes.layout if attributes.layout in available_layouts() else str(args.store)
        print(
            f"WARNING    {', '.join(summary.zero_fill)} lack the missing-chunk fill values (a store written "
            "by an older lenshunt): a missing chunk file of them would read as object id 0, non-lenses "
            "or clean objects, not as unknown and UNREADABLE; re-ingest into a new store to be safe: "
            f"lenshunt ingest {shlex.quote(attributes.source)} NEW_STORE --layout {shlex.quote(layout)} "
            "(with --catalog as for this store)"
        )
    return 0
