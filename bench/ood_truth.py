"""Which simulated objects a score run flagged UNLIKE_TRAINING, by their simulation truth.

A score run's catalog (``OUT/catalog.parquet``) joined with its simulated set's truth catalog (the
``image_catalog_sim.csv`` that ``lenshunt simulate`` writes): per set, the share flagged
UNLIKE_TRAINING (``ood_score > 1``) of the lenses, of the non-lenses and per kind of scene
(``sim_kind``), and how the flagged lenses differ from the others in effective magnification
(``mag_eff``), surface-brightness contrast and score. Written to explain the flags of ``make
demo`` (its set is the standard instrument, a shifted domain of the shipped model).

Usage::

    python -m bench.ood_truth NAME=SCORE_OUT=SIMULATED_FOLDER [NAME=SCORE_OUT=SIMULATED_FOLDER ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from pipeline.flags import Flag

TRUTH_FILE = "image_catalog_sim.csv"


def flagged_truth(score_out: Path, simulated: Path) -> pd.DataFrame:
    """The catalog's objects with their truth columns and a boolean ``unlike`` column.

    Raises
    ------
    ValueError
        If an object of the catalog has no row in the truth catalog.
    """
    catalog = pd.read_parquet(score_out / "catalog.parquet")
    truth = pd.read_csv(simulated / TRUTH_FILE, comment="#")
    joined = catalog.merge(truth, left_on="object_id", right_on="ID", how="left", validate="one_to_one")
    if joined["ID"].isna().any():
        raise ValueError(f"{int(joined['ID'].isna().sum())} object(s) of {score_out} have no truth row")
    joined["unlike"] = (joined["flags"].to_numpy(dtype=np.int64) & int(Flag.UNLIKE_TRAINING)) > 0
    return joined


def describe(name: str, joined: pd.DataFrame) -> list[str]:
    """Lines for one set: shares flagged, per kind, and the flagged lenses against the others."""
    lenses, others = joined[joined["label"] == 1], joined[joined["label"] == 0]
    kinds = joined.groupby("sim_kind")["unlike"].agg(["sum", "size"])
    lines = [
        f"{name}: {int(joined['unlike'].sum())} of {len(joined)} flagged; lenses "
        f"{int(lenses['unlike'].sum())} of {len(lenses)}, non-lenses {int(others['unlike'].sum())} of "
        f"{len(others)}; per kind: "
        + ", ".join(f"{kind} {int(row['sum'])}/{int(row['size'])}" for kind, row in kinds.iterrows())
    ]
    flagged, rest = lenses[lenses["unlike"]], lenses[~lenses["unlike"]]
    if len(flagged) and len(rest):
        p90 = rest["mag_eff"].quantile(0.9)
        rho = spearmanr(lenses["ood_score"], lenses["mag_eff"]).statistic
        lines.append(
            f"  flagged lenses: mag_eff median {flagged['mag_eff'].median():.1f} (others "
            f"{rest['mag_eff'].median():.1f}; {int((flagged['mag_eff'] > p90).sum())} of {len(flagged)} "
            f"above the others' 90th percentile {p90:.1f}), sb_contrast median "
            f"{flagged['sb_contrast'].median():.2f} ({rest['sb_contrast'].median():.2f}), least score "
            f"{flagged['score'].min():.3f}; Spearman(ood_score, mag_eff) over the lenses {rho:.2f}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ood_truth", description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", help="NAME=SCORE_OUT=SIMULATED_FOLDER")
    args = parser.parse_args(argv)
    pooled = {}
    for entry in args.sets:
        name, score_out, simulated = entry.split("=", 2)
        joined = flagged_truth(Path(score_out), Path(simulated))
        pooled.setdefault(name.split("#")[0], []).append(joined)
        print("\n".join(describe(name, joined)))
    for name, parts in pooled.items():
        if len(parts) > 1:
            print("\n".join(describe(f"{name} (all {len(parts)})", pd.concat(parts, ignore_index=True))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
