"""What an evaluation says of labelled objects missing from its counts: counts, notes and a list.

The label catalog's objects that have no file were never ingested (:mod:`pipeline.store.without_files`
records them at each ingest), so they are in no catalog; a labelled lens among them is lost to
completeness as an unscored lens is (trial: it dropped out of every count, ``n_pos_unscored``
included). The evaluation counts them in ``metrics.json`` (``n_catalog_without_files``,
``n_pos_without_files``), says so in a note, and lists their ids and labels in the report's
``files/`` folder (:data:`pipeline.paths.WITHOUT_FILES_LIST`).

The recall stays over the store's lenses (an unscored one counts as missed). The challenges define
completeness over the lenses of the set, but a part of a set ingested on purpose (one tile of a
100k-row catalog) would make a recall counting the catalog's other lenses meaningless; the note says
what recall counts, and the counts give the rest. A store ingested before the record existed has
none: the counts are None ("not recorded") and nothing is said.

Objects a later ingest brought into the store after the run was scored (late files) are in the
store but not in the run's catalog: :func:`not_in_run_note` says how many of them are labelled.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.atomic import write_text_atomic
from pipeline.evaluation.downloads import Download
from pipeline.evaluation.metrics import Metrics
from pipeline.store.without_files import WithoutFiles

WRITTEN = "written"
"""How the list is placed (:attr:`pipeline.evaluation.downloads.Download.how`): written there."""


def without_files_note(record: WithoutFiles | None) -> str | None:
    """The note on the label catalog's objects without a file; None where none is recorded.

    >>> without_files_note(WithoutFiles(np.array([100006, 300003]), np.array([1, 0], np.int8), "c.csv"))
    ... # doctest: +ELLIPSIS
    '2 object(s) of the label catalog (1 lens) have no file (ids 100006, 300003): not in the store, ...'
    """
    if record is None or not record.n:
        return None
    return (
        f"{record.counted()}: not in the store, so not scored and left out of the metrics; recall counts "
        "the lenses of the store only (a part of a set ingested on purpose would make a recall over "
        f"the whole catalog meaningless). Their list: report/files/{paths.WITHOUT_FILES_LIST}; ingest "
        "their files, score and evaluate again to count them"
    )


def with_without_files(metrics: Metrics, record: WithoutFiles | None) -> Metrics:
    """``metrics`` with ``n_catalog_without_files`` and ``n_pos_without_files`` set from ``record``
    (left None where it is None: not recorded) and :func:`without_files_note` after its notes."""
    if record is None:
        return metrics
    note = without_files_note(record)
    return metrics.model_copy(
        update={
            "n_catalog_without_files": record.n,
            "n_pos_without_files": record.n_lenses,
            "notes": [*metrics.notes, note] if note else metrics.notes,
        }
    )


def without_files_download(folder: Path, record: WithoutFiles | None) -> Download | None:
    """Write the list (``object_id,label``) into ``folder/files/`` for the page's "Files:" line; None
    (and nothing written) where no object without a file is recorded."""
    if record is None or not record.n:
        return None
    target = Path(folder) / "files" / paths.WITHOUT_FILES_LIST
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, record.csv_text())
    name = f"Label-catalog objects without files (CSV, {record.n:,})"
    return Download(name, "files/" + quote(paths.WITHOUT_FILES_LIST), WRITTEN, target)


def not_in_run_note(catalog: pd.DataFrame, store: Path) -> tuple[str, ...]:
    """A note where labelled objects of ``store`` are not in the run's ``catalog``: ingested after it
    was scored (files that arrived late), so in no count of this evaluation."""
    from pipeline.store.zarr_store import open_store

    dataset = open_store(store, chunks=None)
    ids, labels = dataset["object_id"].values, dataset["label"].values
    missing = (labels >= 0) & ~np.isin(ids, catalog["object_id"].to_numpy())
    if not missing.any():
        return ()
    n_lenses = int(np.count_nonzero(labels[missing] == 1))
    shown = ", ".join(str(i) for i in ids[missing][:5]) + (", ..." if missing.sum() > 5 else "")
    lenses = f"{n_lenses} lens" + ("es" if n_lenses != 1 else "")
    return (
        f"{int(missing.sum())} labelled object(s) of the store ({lenses}; "
        f"ids {shown}) are not in this run's catalog (ingested after it was scored): not in the metrics; "
        "score into the same --out again, then evaluate (a work directory: `lenshunt run` again)",
    )
