"""Invalid pixels at the centre of the VIS cutout: the shipped model's scores with them filled from
their neighbours (recipe version 9, ``inpaint_px`` 1) against given the fill value (the sky, as
version 8 did), beside its scores of the untouched cutouts.

    python -m bench.invalid_centre STORE

STORE: a labelled euclid-sglc2 store (e.g. ``lenshunt simulate OUT --n 400 --seed 5`` then ``lenshunt
ingest``). Prints, per square hole (1, 3, 5, 9 px) and filling, the AUROC, the mean and largest
change of score, and the non-lenses moved past 0.5.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from pipeline import paths
from pipeline.models.bundle import load_bundle
from pipeline.models.integrity import file_sha256
from pipeline.preprocess.recipe import Recipe
from pipeline.scoring import score_groups
from pipeline.store import open_store


def zero_filling_copy(folder: Path) -> Path:
    """The shipped bundle with its recipe as version 8 (invalid pixels given the fill value)."""
    bundle = folder / "zero-fill"
    shutil.copytree(paths.shipped_model(), bundle)
    recipe = Recipe.load(bundle / "recipe.json")
    recipe.model_copy(update={"inpaint_px": 0.0, "version": 8}).save(bundle / "recipe.json")
    card = json.loads((bundle / "card.json").read_text())
    card["recipe_sha256"] = file_sha256(bundle / "recipe.json")
    (bundle / "card.json").write_text(json.dumps(card))
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    args = parser.parse_args()
    dataset = open_store(args.store)
    labels = dataset["label"].values
    groups = {group: dataset[group].values.astype(np.float32) for group in ("vis", "nir")}
    flags = np.zeros(labels.size, dtype=np.int32)
    non_lens = labels == 0
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {
            "neighbours": load_bundle(paths.shipped_model()),
            "sky": load_bundle(zero_filling_copy(Path(tmp))),
        }
        clean = score_groups(bundles["neighbours"], groups, flags, batch_size=128, tta=False)[0]
        print(
            f"{labels.size} objects ({int(non_lens.sum())} non-lenses); "
            f"untouched: AUROC {roc_auc_score(labels, clean):.4f}"
        )
        print(
            "| hole | filled with | AUROC | mean change, non-lenses | mean change, lenses | largest change "
            "| non-lenses past 0.5 |"
        )
        print("|---|---|---|---|---|---|---|")
        for half in (0, 1, 2, 4):
            holed = {group: images.copy() for group, images in groups.items()}
            holed["vis"][:, 0, 100 - half : 101 + half, 100 - half : 101 + half] = np.nan
            for name, bundle in bundles.items():
                score = score_groups(bundle, holed, flags, batch_size=128, tta=False)[0]
                change = score - clean
                crossed = int(((score > 0.5) & (clean <= 0.5) & non_lens).sum())
                print(
                    f"| {2 * half + 1}x{2 * half + 1} | {name} | {roc_auc_score(labels, score):.4f} | "
                    f"{change[non_lens].mean():+.3f} | {change[~non_lens].mean():+.3f} | "
                    f"{np.abs(change).max():.3f} | "
                    f"{crossed} |"
                )


if __name__ == "__main__":
    main()
