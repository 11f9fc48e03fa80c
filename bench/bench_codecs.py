"""Image codecs for the store on real cutouts: compression ratio and encode/decode CPU time.

Blosc (the numcodecs implementation zarr uses) on inner chunks of 16 objects, as the store writes
them, one thread; best of 3. Two inputs: the images of a euclid-sglc2 set read as ingest reads
them (``--source``), and the real challenge cutouts in ``--real`` (one image per block).

    python -m bench.bench_codecs --source SET --real /work/shared/data/sglc1-samples
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.machine import record_header

CODECS = {
    "zstd 3 + bitshuffle (the old default)": ("zstd", 3, "bit"),
    "zstd 1 + bitshuffle": ("zstd", 1, "bit"),
    "zstd 1 + byte shuffle": ("zstd", 1, "byte"),
    "lz4 5 + bitshuffle (the new default)": ("lz4", 5, "bit"),
    "lz4 5 + byte shuffle": ("lz4", 5, "byte"),
    "lz4 5, no shuffle": ("lz4", 5, "none"),
    "no compression": None,
}


def measure(blocks: list[np.ndarray], spec) -> tuple[float, float, float]:
    """(ratio, encode s, decode s) of ``blocks`` with the codec ``spec``; best of 3."""
    from numcodecs import Blosc

    raw = sum(b.nbytes for b in blocks)
    codec = None
    if spec:
        shuffle = {"bit": Blosc.BITSHUFFLE, "byte": Blosc.SHUFFLE, "none": Blosc.NOSHUFFLE}[spec[2]]
        codec = Blosc(spec[0], spec[1], shuffle)
    best_encode = best_decode = float("inf")
    size = raw
    for _ in range(3):
        tic = time.process_time()
        encoded = [codec.encode(b) if codec else b.tobytes() for b in blocks]
        best_encode = min(best_encode, time.process_time() - tic)
        size = sum(len(e) for e in encoded)
        tic = time.process_time()
        for e in encoded:
            codec.decode(e) if codec else np.frombuffer(e, np.float32).copy()
        best_decode = min(best_decode, time.process_time() - tic)
    return raw / size, best_encode, best_decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--n", type=int, default=512, help="objects of --source")
    parser.add_argument("--real", type=Path, default=None, help="folder of real cutouts (*.fits)")
    args = parser.parse_args()

    import numcodecs.blosc

    from pipeline.sources import discover
    from pipeline.store.reading import read_objects
    from schemas.layout import load_layout

    numcodecs.blosc.use_threads = False
    layout = load_layout("euclid-sglc2")
    manifest = discover(layout, args.source)
    manifest = manifest.select_or_missing(manifest.object_ids[: args.n])
    dataset, _ = read_objects(layout, manifest, -np.ones(len(manifest), dtype=np.int8))
    inputs = {}
    arrays = [dataset[group].values for group in layout.groups]
    inputs[f"simulated euclid-sglc2 ({len(manifest)} objects)"] = (
        [np.ascontiguousarray(a[i : i + 16]) for a in arrays for i in range(0, len(manifest), 16)],
        len(manifest),
    )
    if args.real:
        from astropy.io import fits

        images = [fits.getdata(p).astype(np.float32) for p in sorted(args.real.glob("*.fits"))]
        # One image per block: copies in one block would compress against each other.
        inputs[f"real SGLC1 cutouts ({len(images)} files, 101x101, one per block)"] = (
            [np.ascontiguousarray(image[None]) for image in images],
            len(images),
        )
    print(record_header("Store image codecs: ratio and CPU time"))
    for name, (blocks, n) in inputs.items():
        raw = sum(b.nbytes for b in blocks)
        print(f"\n{name}, {raw / n / 1e3:.0f} kB per object:\n")
        print("| codec (Blosc) | ratio | encode ms/object | decode ms/object | encode MB/s |")
        print("|---|---|---|---|---|")
        for label, spec in CODECS.items():
            ratio, encode, decode = measure(blocks, spec)
            print(
                f"| {label} | {ratio:.3f} | {encode / n * 1e3:.3f} | {decode / n * 1e3:.3f} "
                f"| {raw / encode / 1e6:.0f} |"
            )


if __name__ == "__main__":
    main()
