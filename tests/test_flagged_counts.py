"""``lenshunt info`` and the report count flagged objects alike: a real set, ingest, shipped model.

Trial: ``lenshunt info STORE`` said "flagged 0" while the report of the run that scored that store
counted objects flagged UNLIKE_TRAINING under "Flagged (any flag)": info counts the store's flags
(set at ingest), the report the catalog's, which a score run adds to; neither said which.
"""

from __future__ import annotations

import html
import re

import numpy as np
from astropy.io import fits
from cutouts import band_file, write_set

from flows.cli import main
from pipeline import paths
from pipeline.catalog import read_catalog
from pipeline.evaluation import evaluate_run
from pipeline.flags import Flag
from pipeline.paths import shipped_model
from pipeline.scoring.run import score_store
from pipeline.store.ingestion import ingest
from schemas.layout import load_layout

EUCLID = load_layout("euclid-sglc2")
IDS = list(range(300000, 300012))
INGEST_BITS = 0xFFFF  # bits 0-15: set at ingest (pipeline.flags)
RUN_FLAGS = "NOT_SCORED, SCORE_NONFINITE, UNLIKE_TRAINING, DUPLICATE_POSITION"


def test_info_and_the_report_count_flagged_objects_in_the_same_words(tmp_path, dask_client, capsys):
    source = write_set(EUCLID, tmp_path / "src", IDS)
    band_file(EUCLID, source, IDS[3], "H").write_bytes(b"not FITS" * 100)  # an ingest flag: UNREADABLE
    for object_id in IDS[6:9]:  # a small dark hole on a blank sky: nothing like the training objects
        for band in EUCLID.bands:
            with fits.open(band_file(EUCLID, source, object_id, band.name), mode="update") as hdul:
                n_y, n_x = hdul[0].data.shape
                y, x = np.mgrid[:n_y, :n_x]
                hole = -np.exp(-np.hypot(y - n_y / 2, x - n_x / 2) / (n_y / 20))
                hdul[0].data = (hole * np.nanmax(hdul[0].data)).astype(hdul[0].data.dtype)
    store, run = tmp_path / "store.zarr", tmp_path / "run"
    ingest(EUCLID, source, store, dask_client, chunk_objects=8)
    score_store(store, shipped_model(), run, dask_client, known_lenses=None)
    flags = read_catalog(paths.catalog_parquet(run))["flags"].to_numpy()
    unlike = int(np.count_nonzero(flags & int(Flag.UNLIKE_TRAINING)))
    assert unlike > 0, flags  # the shipped model finds these test images unlike its training set
    n_ingest = int(np.count_nonzero(flags & INGEST_BITS))
    n_run = int(np.count_nonzero(flags & ~INGEST_BITS))
    n_any = int(np.count_nonzero(flags))
    assert n_ingest == 1 and n_run >= unlike

    assert main(["info", str(store)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("flagged"))
    assert line == (
        f"flagged    1 object with an ingest flag (the store's own; a score run adds its own: {RUN_FLAGS})"
    )

    report = evaluate_run(run, store, top_n=2).report_path.read_text()
    row = re.search(r"<tr><th>Flagged</th><td>(.*?)</td></tr>", report)
    assert row is not None, report
    said = f"{n_any} objects: 1 with an ingest flag (the store's own), {n_run} with a score-run flag"
    present = ", ".join(  # trial: every run flag was named where only UNLIKE_TRAINING was set
        f"{name} {n}"
        for name in RUN_FLAGS.split(", ")
        if (n := int(np.count_nonzero(flags & int(Flag[name]))))
    )
    assert html.unescape(row.group(1)) == f"{said} ({present})"
    assert "Flagged (any flag)" not in report
