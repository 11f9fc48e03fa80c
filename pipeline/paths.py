"""Every storage name lenshunt uses, in one place. Functions here build paths; they create nothing.

A store is a Zarr v3 directory; lenshunt's own bookkeeping lives in its ``_lenshunt/`` folder,
which Zarr and xarray ignore. A score run writes into its output directory.
"""

from __future__ import annotations

import re
from pathlib import Path

BOOKKEEPING = "_lenshunt"

_CFITSIO_PLAIN = re.compile(r"^/[A-Za-z0-9_./,=@%-]*$")


def cfitsio_plain(path: str | Path) -> bool:
    """Whether cfitsio (fitsio) takes absolute ``path`` as a plain file name.

    cfitsio parses ``[...]``, ``(...)``, ``+n``, ``!``, ``~`` and ``scheme://`` in file names as its
    extended-filename syntax (cfitsio User's Guide, "Extended File Name Syntax"); a path of only
    these characters has none of it.

    >>> cfitsio_plain("/data/EUC_VIS/imageEUC_VIS-100002.fits"), cfitsio_plain("/data/run(2)/a.fits")
    (True, False)
    """
    return bool(_CFITSIO_PLAIN.match(str(path)))


def bookkeeping_dir(store: Path) -> Path:
    return Path(store) / BOOKKEEPING


def ingest_plan_dir(store: Path, plan_id: str) -> Path:
    """Folder of one ingest plan: the plan file and one done marker per region."""
    return bookkeeping_dir(store) / "ingest" / plan_id


def ingest_plan_file(store: Path, plan_id: str) -> Path:
    return ingest_plan_dir(store, plan_id) / "plan.json"


def region_done_marker(store: Path, plan_id: str, region_index: int) -> Path:
    return ingest_plan_dir(store, plan_id) / f"region-{region_index:06d}.done.json"


def region_file_table(store: Path, plan_id: str, region_index: int) -> Path:
    """The band files one ingest region read: sizes and modification times (read once its marker exists)."""
    return ingest_plan_dir(store, plan_id) / f"region-{region_index:06d}.files.npz"


def ingest_report_file(store: Path, plan_id: str) -> Path:
    return bookkeeping_dir(store) / "reports" / f"ingest-{plan_id}.json"


def store_lock_file(store: Path) -> Path:
    """The lock a store's single writer holds (``flock``; the kernel releases it when the holder dies)."""
    return bookkeeping_dir(store) / "writer.lock"


def repair_record_file(store: Path, repair_id: str) -> Path:
    """Record of one re-read of flagged objects whose files changed: their rows and file stats."""
    return bookkeeping_dir(store) / "repairs" / f"repair-{repair_id}.json"


def repair_file_table(store: Path, repair_id: str, shard: int) -> Path:
    """The band files one re-read read in one shard (read once the repair record exists)."""
    return repair_records_dir(store) / f"repair-{repair_id}-shard-{shard:06d}.files.npz"


def file_baseline_table(store: Path, baseline_id: str) -> Path:
    """Band files of stored objects that no ingest had recorded (stores made before file tables)."""
    return bookkeeping_dir(store) / "files" / f"baseline-{baseline_id}.files.npz"


def without_files_record(store: Path) -> Path:
    """The label catalog's objects with no file in the source and not in the store, as of the latest
    ingest: their ids and labels (:mod:`pipeline.store.without_files`)."""
    return bookkeeping_dir(store) / "labels" / "without-files.npz"


def repair_records_dir(store: Path) -> Path:
    return bookkeeping_dir(store) / "repairs"


def score_parts_dir(out_dir: Path) -> Path:
    """Per-chunk score parts of a score run (its resume state)."""
    return Path(out_dir) / "parts"


SCORE_PART_NAME = re.compile(r"^scores-(\d{12})-(\d{12})\.parquet$")
"""A finished score part's file name: its first row and the row after its last (12 digits each)."""


def score_part_file(out_dir: Path, start: int, stop: int) -> Path:
    return score_parts_dir(out_dir) / f"scores-{start:012d}-{stop:012d}.parquet"


OWN_FILE_PREFIX = ".lenshunt-"
"""How the names of lenshunt's own lock and bookkeeping files in a folder begin (``.lenshunt-run.lock``,
``.lenshunt-catalog-files.json``, ...): discovery never calls them ignored inputs (trial: a work
directory inside a band folder had its run lock listed as an ignored file)."""


def output_lock_file(out_dir: Path, purpose: str) -> Path:
    """The lock a ``purpose`` run (``score``, ``train``) holds on its output folder (``flock``)."""
    return Path(out_dir) / f"{OWN_FILE_PREFIX}{purpose}.lock"


WORKDIR_STORE = "store.zarr"
"""The store of a work directory (``lenshunt run`` and ``serve``): ``WORKDIR/store.zarr``."""


def workdir_of_store(store: str | Path) -> Path | None:
    """The work directory whose store ``store`` is (``WORKDIR/store.zarr``, in a folder a ``lenshunt
    run`` or ``serve`` has locked: its lock file is kept), else None."""
    store = Path(store)
    if store.name != WORKDIR_STORE:
        return None
    workdir = store.parent
    locked = any(output_lock_file(workdir, purpose).exists() for purpose in ("run", "serve"))
    return workdir if locked else None


def score_lock_file(out_dir: Path) -> Path:
    """The lock a score run holds on its output folder (``flock``; one score run per folder at a time)."""
    return output_lock_file(out_dir, "score")


def score_run_file(out_dir: Path) -> Path:
    """What a score run was started with (model hash, store, options), to refuse mixed resumes."""
    return Path(out_dir) / "score-run.json"


def catalog_fits(out_dir: Path) -> Path:
    return Path(out_dir) / "catalog.fits"


def catalog_parquet(out_dir: Path) -> Path:
    return Path(out_dir) / "catalog.parquet"


def catalog_votable(out_dir: Path) -> Path:
    return Path(out_dir) / "catalog.vot"


def catalog_hats(out_dir: Path) -> Path:
    """The run's HATS catalog directory (``lsdb.read_hats`` opens it)."""
    return Path(out_dir) / "catalog_hats"


def catalog_files_record(out_dir: Path) -> Path:
    """The record of the catalog files written, with their digest, size and modification time
    (:mod:`pipeline.catalog.digest`): a file is kept by a rerun only as recorded there."""
    return Path(out_dir) / f"{OWN_FILE_PREFIX}catalog-files.json"


def metrics_file(out_dir: Path) -> Path:
    return Path(out_dir) / "metrics.json"


def report_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "report"


REPORT_FILE = "report.html"
"""The page ``lenshunt evaluate`` writes in :func:`report_dir` (:mod:`pipeline.evaluation.report`)."""

REPORT_STAGE = ".evaluating"
"""The folder in :func:`report_dir` an evaluation writes into before it moves its files into place."""

REPORT_WRITTEN = (
    REPORT_FILE,
    "roc.png",
    "precision_recall.png",
    "score_histogram.png",
    "score_distribution.png",
    "gallery",
    "files",
    REPORT_STAGE,
)
"""Every name ``lenshunt evaluate`` writes in :func:`report_dir` (pages, plots, the gallery's and
the downloads' folders) but :data:`EVALUATION_OPTIONS`; a score run that changes the catalog deletes
these, and nothing else there."""

EVALUATION_OPTIONS = "evaluation.json"
"""The options of the latest evaluation in :func:`report_dir` (gallery size ``top_n``, ``beta``,
``threshold``): an evaluation that is not given them takes that one's (trial: ``lenshunt evaluate``
of a run evaluated with ``--top-n 24`` made a gallery of 48). Not in :data:`REPORT_WRITTEN`: the
user's choices outlive a score run that deletes the evaluation's results."""

WITHOUT_FILES_LIST = "objects_without_files.csv"
"""The list an evaluation writes into the report's ``files/`` folder of the label catalog's objects that
have no file (``object_id,label``; :mod:`pipeline.evaluation.without_files`), where the store records some."""

REPORT_DOWNLOADS = ("catalog.fits", "catalog.parquet", "catalog.vot", "metrics.json", WITHOUT_FILES_LIST)
"""The files the evaluation places into the report's ``files/`` folder (the run's catalogs and
metrics, :func:`catalog_fits` ... :func:`metrics_file`, copied or linked, and the list
:data:`WITHOUT_FILES_LIST` it writes); anything else there is the user's."""


def shipped_model() -> Path:
    """The default model bundle shipped inside the package (see docs/model-card.md)."""
    return Path(__file__).parent / "models" / "shipped" / "default"


def store_path_hint(path: Path) -> str:
    """What to say of a folder ``path`` given as a STORE that is no Zarr store: the stores directly
    inside it (``*.zarr`` with a ``zarr.json``: a run's work folder holds ``store.zarr``; new-user
    trial: ``lenshunt cutout demo/work ID`` did not say so), else to check the path.

    >>> store_path_hint(Path("/nonexistent"))
    'is it the right path?'
    """
    inside = sorted(child for child in Path(path).glob("*.zarr") if (child / "zarr.json").is_file())
    if not inside:
        return "is it the right path?"
    return "did you mean " + " or ".join(str(store) for store in inside[:3]) + "?"
