"""What the integrity checks of a cutout file cost: the whole read against the checks alone.

A read of a cutout (:func:`pipeline.sources.read_band`) now reads a compressed file's stream to its end
with its CRC checked (:func:`pipeline.sources.compressed.whole_bytes`), checks an HDU's ``DATASUM`` and
``CHECKSUM`` cards where it has them (:func:`pipeline.sources.checksums.checksum_defect`), and has astropy
rather than cfitsio decode a ``.fits.fz`` of GZIP tiles (cfitsio hung on a corrupt one). Side by side in
one run, per file (medians of ``--repeats`` passes over ``--n`` files of each kind, 101x101 float32): the
whole ``read_band``, the stream check alone, the checksum check alone, and for GZIP_1 ``.fits.fz`` the
two decoders of its pixels (fitsio, astropy).

    python -m bench.bench_integrity --n 200 --repeats 5
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits

from bench.machine import record_header
from pipeline.sources import read_band
from pipeline.sources.checksums import checksum_defect
from pipeline.sources.compressed import whole_bytes


def write_files(root: Path, n: int) -> dict[str, list[Path]]:
    """``n`` files of each kind: plain, plain with checksum cards, gzip, GZIP_1 and RICE_1 ``.fits.fz``."""
    rng = np.random.default_rng(0)
    kinds: dict[str, list[Path]] = {k: [] for k in ("plain", "checksums", "gzip", "fz-gzip", "fz-rice")}
    for i in range(n):
        image = rng.normal(0, 1, (101, 101)).astype(np.float32)
        fits.PrimaryHDU(image).writeto(root / f"p{i}.fits")
        fits.PrimaryHDU(image).writeto(root / f"c{i}.fits", checksum=True)
        (root / f"g{i}.fits.gz").write_bytes(gzip.compress((root / f"p{i}.fits").read_bytes()))
        for kind, compression in (("fz-gzip", "GZIP_1"), ("fz-rice", "RICE_1")):
            path = root / f"{kind}{i}.fits.fz"
            fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, compression_type=compression)]).writeto(
                path
            )
            kinds[kind].append(path)
        kinds["plain"].append(root / f"p{i}.fits")
        kinds["checksums"].append(root / f"c{i}.fits")
        kinds["gzip"].append(root / f"g{i}.fits.gz")
    return kinds


def per_file_us(files: list[Path], work: Callable[[Path], object], repeats: int) -> float:
    """Median over ``repeats`` passes of the time per file, microseconds (after one pass unmeasured)."""
    for path in files:
        work(path)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for path in files:
            work(path)
        times.append((time.perf_counter() - start) / len(files) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import fitsio

    with tempfile.TemporaryDirectory() as folder:
        kinds = write_files(Path(folder), args.n)
        rows = []
        for kind, files in kinds.items():
            assert all(read_band(path, (101, 101), position=False).flags == 0 for path in files), kind
            read = per_file_us(files, lambda p: read_band(p, (101, 101), position=False), args.repeats)
            stream = per_file_us(
                files, lambda p: whole_bytes(str(p), p.stat().st_size, 1 << 26), args.repeats
            )
            raws = {p: whole_bytes(str(p), p.stat().st_size, 1 << 26) for p in files}
            index = 1 if kind.startswith("fz") else 0
            sums = per_file_us(files, lambda p, r=raws, i=index: checksum_defect(r[p], i), args.repeats)
            rows.append(f"| {kind} | {read:.0f} | {stream:.0f} | {sums:.0f} |")
        gzip_fz = kinds["fz-gzip"]
        by_fitsio = per_file_us(gzip_fz, lambda p: fitsio.read(str(p), ext=1), args.repeats)
        by_astropy = per_file_us(gzip_fz, lambda p: np.array(fits.getdata(p, ext=1)), args.repeats)
    print(record_header("Integrity checks of a cutout read: the whole read against the checks alone"))
    print(
        f"- {args.n} files of each kind, 101x101 float32, {args.repeats} passes (medians), "
        "microseconds a file\n"
    )
    print("| files | read_band | stream read to its end | DATASUM/CHECKSUM check |\n|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"\n- GZIP_1 .fits.fz pixels: fitsio {by_fitsio:.0f} us, astropy {by_astropy:.0f} us a file "
        f"(ratio {by_astropy / by_fitsio:.1f}x): the price of astropy's decoding, which says a corrupt tile "
        "is corrupt where cfitsio hung"
    )


if __name__ == "__main__":
    main()
