"""Path checks the CLI makes before Prefect or Dask start: a wrong path fails in a second, not 15.

Each check raises :class:`PathCheckError` with what is wrong, why and the fix.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import LenshuntError


class PathCheckError(LenshuntError, ValueError):
    """A path given on the command line cannot be used as it is."""


def existing_directory(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` must be an existing directory (e.g. the cutouts)."""
    path = Path(path)
    if not path.exists():
        raise PathCheckError(f"{what} {path} does not exist; check the path")
    if not path.is_dir():
        raise PathCheckError(f"{what} {path} is a file, not a directory; pass the directory")
    return path


def existing_path(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise PathCheckError(f"{what} {path} does not exist; check the path")
    return path


def writable_directory(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` must be a directory lenshunt can create or write into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PathCheckError(f"{what} {path} is a file, not a directory; pass a directory path")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PathCheckError(f"{what} {path}: {ancestor} is a file, not a directory; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only_fs(ancestor) else "is not writable by you"
        raise PathCheckError(f"{what} {path}: {ancestor} {why}; choose a writable path")
    return path


def catalog_writable(out_dir: str | os.PathLike[str], then: str) -> None:
    """The score run into ``out_dir`` can replace its catalogs (FITS, Parquet, VOTable, HATS).

    Trial: an immutable ``catalog.fits`` was found after the ingest and the scoring, and the HATS
    catalog alone stayed old beside new ones.
    """
    from pipeline.atomic import check_creatable, check_replaceable
    from pipeline.paths import catalog_fits, catalog_hats, catalog_parquet, catalog_votable

    out_dir = Path(out_dir)
    with _refused_unless_writable(f"the score run into {out_dir}", then):
        for path in (catalog_fits(out_dir), catalog_parquet(out_dir), catalog_votable(out_dir)):
            check_replaceable(path)
        if catalog_hats(out_dir).is_dir() and not catalog_hats(out_dir).is_symlink():
            check_creatable(catalog_hats(out_dir))


@contextlib.contextmanager
def _refused_unless_writable(writer: str, then: str) -> Iterator[None]:
    """Turn a probe's OSError into one line: the file or folder, why, who writes there, the fix."""
    try:
        yield
    except OSError as exc:
        where = exc.filename2 or exc.filename
        raise PathCheckError(
            f"{where} cannot be written ({exc.strerror or exc}), and {writer} writes there; make it "
            f"writable (e.g. chmod u+w, chattr -i) or move it away, then {then}"
        ) from None


def recorded_store(run_dir: str | os.PathLike[str]) -> Path:
    """The store the score run in ``run_dir`` recorded in its catalog, which must still be there.

    Raises
    ------
    PathCheckError
        When the run has no catalog, or its store is gone (then give ``--store``).
    pipeline.errors.CatalogError
        When its catalog cannot be read.
    """
    from pipeline.catalog import read_provenance, run_store
    from pipeline.paths import catalog_parquet

    if not catalog_parquet(run_dir).is_file():
        raise PathCheckError(f"{run_dir} has no catalog.parquet: {_run_hint(run_dir)}")
    store = run_store(run_dir, read_provenance(catalog_parquet(run_dir)))  # a copy beside the run first
    if not store.exists():
        raise PathCheckError(
            f"the store {store} that {run_dir} scored is not there; give its new place with --store"
        )
    return store


def score_run_directory(run_dir: str | os.PathLike[str], what: str) -> Path:
    """``run_dir`` must be a score run's folder: its catalog, or a stopped run's ``score-run.json``.

    Trial: ``lenshunt inspect WORKDIR --export`` (the work directory of ``lenshunt run``, or any
    folder, even a store) wrote empty grade tables into it and exited 0.
    """
    from pipeline.paths import catalog_parquet, score_run_file

    path = existing_directory(run_dir, what)
    if not (catalog_parquet(path).is_file() or score_run_file(path).is_file()):
        raise PathCheckError(f"{what} {path} holds no score run (no catalog.parquet): {_run_hint(path)}")
    return path


def _run_hint(run_dir: str | os.PathLike[str]) -> str:
    from pipeline.paths import catalog_parquet, score_run_file
    from pipeline.scoring import unfinished_run

    if (unfinished := unfinished_run(run_dir)) is not None:
        return unfinished

    scores = Path(run_dir) / "scores"
    if catalog_parquet(scores).is_file() or score_run_file(scores).is_file():
        return f"give {scores}, the scores of this `lenshunt run` work directory"  # trial: the work directory
    return "give the output directory of `lenshunt score`, or the scores/ folder of a `lenshunt run`"


def evaluation_writable(out_dir: str | os.PathLike[str], then: str) -> None:
    """The evaluation of the run in ``out_dir`` can replace its ``metrics.json`` and report page.

    Trial: an immutable ``report.html`` under ``lenshunt run`` was found after the ingest and the
    scoring, in three Prefect error lines; ``then`` is what to do once it is fixed.
    """
    from pipeline.evaluation import check_evaluation_writable

    with _refused_unless_writable(f"the evaluation of {out_dir}", then):
        check_evaluation_writable(out_dir)


def outside_stores(path: str | os.PathLike[str], what: str, *, itself: bool = True) -> Path:
    """``path`` must not lie inside a Zarr store (nor be one, with ``itself``).

    New-user trial: ``lenshunt run SRC WORKDIR`` with WORKDIR an existing store wrote its work
    directory (``store.zarr``, ``scores/``) inside that store.
    """
    path = Path(path)
    resolved = path.resolve()
    for ancestor in [resolved, *resolved.parents] if itself else list(resolved.parents):
        if (ancestor / "zarr.json").is_file():
            where = "is a Zarr store" if ancestor == resolved else f"lies inside the Zarr store {ancestor}"
            raise PathCheckError(
                f"{what} {path} {where}; choose a directory outside any store (to score a store, "
                "`lenshunt score STORE --out DIR`)"
            )
    return path


def outside_source(path: str | os.PathLike[str], source: str | os.PathLike[str], what: str) -> Path:
    """``path``, which lenshunt writes (a work directory, a store), must not be the cutout directory
    ``source`` nor lie inside it: every later ingest of ``source`` would scan lenshunt's own outputs
    (the store's chunks, the scores, the report's catalogs and cutouts) as inputs (trial: ``lenshunt
    serve --workdir`` inside ``--source``). The cutouts may lie inside the work directory.
    """
    path = Path(path)
    resolved, cutouts = path.resolve(), Path(source).resolve()
    if resolved == cutouts or cutouts in resolved.parents:
        where = "is" if resolved == cutouts else "lies inside"
        raise PathCheckError(
            f"{what} {path} {where} the cutout directory {source}: each ingest of it would read "
            f"lenshunt's own outputs as cutouts; choose a {what} outside {source} (the cutouts may lie "
            f"inside the {what})"
        )
    return path


def outside_bundles(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` must be no model bundle or ensemble folder, nor lie inside one.

    Fresh-user trial: ``lenshunt simulate --n 2 BUNDLE`` wrote ``cut/`` and ``truth.csv`` into a model
    bundle, exit 0.
    """
    from pipeline.models import is_model_folder

    path = Path(path)
    resolved = path.resolve()
    for ancestor in [resolved, *resolved.parents]:
        if is_model_folder(ancestor):
            where = "is" if ancestor == resolved else "lies inside"
            raise PathCheckError(
                f"{what} {path} {where} the model bundle {ancestor}; choose a folder outside any bundle"
            )
    return path


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


DEFAULT_LAYOUT = "euclid-sglc2"
"""The layout of a new store when no ``--layout`` is given."""


def layout_or_stores(
    layout: str | None, store: str | os.PathLike[str], model: str | os.PathLike[str] | None = None
) -> str:
    """The layout name :func:`layout_choice` takes."""
    return layout_choice(layout, store, model)[0]


def layout_choice(
    layout: str | None, store: str | os.PathLike[str], model: str | os.PathLike[str] | None = None
) -> tuple[str, str]:
    """The layout name and where it came from, in words (for :func:`layout_source`'s refusal; trial:
    "no band directory of layout 'euclid-sglc2'" said not why that layout): ``layout`` when given;
    else the layout ``store`` was ingested with; else, for a new store, the layout ``model`` was
    trained on where lenshunt ships it; else :data:`DEFAULT_LAYOUT`.

    New-user trials: a rerun of ``lenshunt ingest`` or ``lenshunt run`` on an ``sglc1-space`` store
    without ``--layout`` was told there was "no band directory of layout 'euclid-sglc2'"; so was
    ``lenshunt run SOURCE WORKDIR --model`` of a model trained on ``sglc1-ground``. A store made with
    a layout file gives its own path (``load_layout`` reads the layout the store recorded; trial: the
    file had to be passed again); so does a model trained on a layout file's layout, which keeps it
    (``layout.yaml``, :func:`pipeline.models.recipe_layout_file`; trial: ``--layout FILE.yaml`` was
    needed again).

    Raises
    ------
    PathCheckError
        If, for a new store, ``model``'s layout came from a YAML file the bundle does not keep (trained
        before lenshunt kept it): pass that file (trial: such a model, run without ``--layout``, was
        told only that the source had no euclid-sglc2 folder); or ``model`` does not exist or is a file.
    BundleError
        If, for a new store, ``model`` is no readable bundle (trial: a mistyped, empty or file
        ``--model`` was told of the default layout's missing folders).
    """
    from schemas.layout import available_layouts

    if layout is not None:
        return layout, "given with --layout"
    if not (Path(store) / "zarr.json").is_file():
        from pipeline.models import load_bundle, recipe_layout, recipe_layout_file, unkept_layout_reason

        trained = recipe_layout(model) if model is not None else None
        if model is not None and trained is None:  # trial: a mistyped --model was told of euclid-sglc2's
            existing_directory(model, "model bundle")  # folders; say what is wrong with the model instead
            load_bundle(model, features=False)
        if trained is not None and trained not in available_layouts():
            if (kept := recipe_layout_file(model)) is not None:
                origin = f"the layout {trained!r} model {model} was trained on (its {kept.name})"
                return str(kept), f"{origin}, as no --layout was given"
            raise PathCheckError(
                f"model {model} was trained on layout {trained!r} from a layout file, and "
                f"{unkept_layout_reason(model)}: pass that file with --layout FILE.yaml"
            )
        if trained is None:
            return DEFAULT_LAYOUT, _DEFAULT_ORIGIN
        return trained, f"the layout model {model} was trained on, as no --layout was given"
    from pipeline.store import read_attributes

    try:
        name = read_attributes(store).layout
    except (OSError, ValueError, LenshuntError):  # damaged: the command's own checks say what is wrong
        return DEFAULT_LAYOUT, _DEFAULT_ORIGIN
    if name in available_layouts():
        return name, f"the layout of the store {store}, as no --layout was given"
    recorded = f"the layout {name!r} the store {store} recorded from its layout file"
    return str(store), f"{recorded}, as no --layout was given"


_DEFAULT_ORIGIN = "the default, as no --layout was given"


def layout_source(
    layout,
    source: str | os.PathLike[str],
    origin: str | None = None,
    store: str | os.PathLike[str] | None = None,
) -> Path:
    """``source`` must be a directory holding at least one band directory of ``layout``.

    The refusal says where the layout came from (``origin``, :func:`layout_choice`), that the existing
    ``store``'s own layout finds the source's folders where it does, and names another shipped layout
    whose files the source holds.
    """
    source = existing_directory(source, "cutout directory")
    expected = sorted({source / Path(band.path).parent for band in layout.bands})
    if not any(directory.is_dir() for directory in expected):
        from pipeline.sources import band_folders_hint, other_layout_hint

        hint = _store_layout_hint(layout, source, store)  # trial: --layout of another layout, unsaid
        hint = hint or band_folders_hint(layout, source)  # trial: the set was one level down, and not said
        hint = hint or other_layout_hint(layout.name, source)  # fresh-user trial: sglc1-space, unsaid
        raise PathCheckError(
            f"no band directory of layout {layout.name!r}{f' ({origin})' if origin else ''} under {source}: "
            f"expected {[str(d) for d in expected]}{hint or '; check the source directory and --layout'}"
        )
    return source


def _store_layout_hint(layout, source: Path, store: str | os.PathLike[str] | None) -> str:
    """``"; the store S was made with layout X, whose band folders SOURCE holds: omit --layout ..."``
    where ``store`` exists with another layout than ``layout`` that finds ``source``'s folders."""
    if store is None or not (Path(store) / "zarr.json").is_file():
        return ""
    from schemas.layout import LayoutError, recorded_layout

    try:
        own = recorded_layout(store)
    except LayoutError:
        return ""
    if own.name == layout.name or not any((source / Path(band.path).parent).is_dir() for band in own.bands):
        return ""
    return (
        f"; the store {store} was made with layout {own.name!r}, whose band folders {source} holds: omit "
        "--layout (the store's own is then read)"
    )


def label_catalog(layout, source: str | os.PathLike[str], catalog: str | None) -> None:
    """The label catalog (given, or the layout's pattern under ``source``) must parse."""
    import numpy as np

    from pipeline.sources import labels_for

    if catalog:
        existing_path(catalog, "label catalog")
    labels_for(layout, np.zeros(0, dtype=np.int64), source, catalog)


def known_lens_table(spec: str | None) -> None:
    """``--known-lenses`` must load (lenscat installed, a table that reads with name, ra and dec).

    Trial: a missing or malformed table failed after Prefect started (``lenshunt run``: after its
    ingest).
    """
    from pipeline.catalog import load_known_lenses

    load_known_lenses(spec)


def match_radius(text: str) -> float:
    """argparse type: a known-lens match radius in (0, 3600) arcsec (trial: 0 failed after Prefect)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is not in (0, 3600) arcsec")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (new-user trial: ``--batch-size 0`` ended in tracebacks)."""
    return _integer_at_least(text, 1)


def shard_objects(text: str) -> int:
    """argparse type of ``--chunk-objects``: a shard holds whole inner chunks, so at most
    :data:`~pipeline.store.DEFAULT_INNER_CHUNK_OBJECTS` objects or a multiple of it (new-user trial:
    ``--chunk-objects 50`` was refused only after Prefect had started)."""
    from pipeline.store import DEFAULT_INNER_CHUNK_OBJECTS

    inner, value = DEFAULT_INNER_CHUNK_OBJECTS, positive_int(text)
    if value > inner and value % inner:
        below, above = value // inner * inner, (value // inner + 1) * inner
        raise argparse.ArgumentTypeError(f"{value} is not a multiple of {inner} (e.g. {below} or {above})")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (ids, seeds)."""
    return _integer_at_least(text, 0)


def _integer_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is not >= {minimum}")
    return value


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (trial: ``--beta 0`` or ``nan`` ended in a traceback)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number > 0")
    return value


def f_beta_weight(text: str) -> float:
    """argparse type: a beta of F-beta, a finite number in (0, 1e150] (its square a finite float; trial:
    ``--beta 1e200`` ended in an OverflowError after the catalog was read)."""
    from pipeline.evaluation import MAX_BETA

    value = positive_number(text)
    if value > MAX_BETA:
        raise argparse.ArgumentTypeError(f"{text} is too large for a beta of F-beta (at most {MAX_BETA:g})")
    return value


def probability(text: str) -> float:
    """argparse type: a number in [0, 1] (new-user trial: ``--threshold 2`` failed after scoring)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1]")
    return value
