"""``python -m bench.thirdsim.preview SET OUT.png [--n 8]``: VIS and colour views, lenses and non-lenses."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits


def _read(root: Path, band: str, object_id: int) -> np.ndarray:
    return fits.getdata(root / f"Public/EUC_{band}/imageEUC_{band}-{object_id:06d}.fits").astype(float)


def _stretch(img: np.ndarray, sigma: float, hi: float) -> np.ndarray:
    return np.clip(np.arcsinh(img / (3 * sigma)) / np.arcsinh(hi / (3 * sigma)), 0, 1)


def _colour(root: Path, object_id: int) -> np.ndarray:
    from scipy.ndimage import zoom

    vis = _read(root, "VIS", object_id)
    bands = [zoom(_read(root, b, object_id), 200 / 66, order=1)[:200, :200] for b in ("H", "J")]
    chans = [bands[0], bands[1], vis * 9]  # VIS pixels are 9x smaller: per-area match
    out = []
    for c in chans:
        s = 1.4826 * np.median(np.abs(c - np.median(c)))
        out.append(_stretch(c - np.median(c), s, np.percentile(c, 99.7)))
    return np.dstack(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("png")
    parser.add_argument("--n", type=int, default=8)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(args.root)
    text = (root / "image_catalog_thirdsim.csv").read_text()
    cat = pd.read_csv(io.StringIO(text), comment="#")
    lens = cat.query("n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20")
    non = cat.drop(lens.index)
    lens = lens.sort_values("mag_source").iloc[:: max(1, len(lens) // args.n)].head(args.n)
    non = non.drop_duplicates("kind").head(args.n)
    fig, axes = plt.subplots(4, args.n, figsize=(2.2 * args.n, 9.4))
    for row_off, table in ((0, lens), (2, non)):
        for k, (_, r) in enumerate(table.iterrows()):
            vis = _read(root, "VIS", int(r.ID))
            s = 1.4826 * np.median(np.abs(vis - np.median(vis)))
            axes[row_off, k].imshow(
                _stretch(vis - np.median(vis), s, np.percentile(vis, 99.8)), origin="lower", cmap="gray"
            )
            axes[row_off + 1, k].imshow(_colour(root, int(r.ID)), origin="lower")
            title = f"{int(r.ID)} {r.kind}"
            if r.kind == "lens":
                title += f"\nθE={r.theta_e:.2f} ms={r.mag_source:.1f} μ={r.mag_eff:.1f}"
            axes[row_off, k].set_title(title, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.png, dpi=80)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
