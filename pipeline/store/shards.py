"""Write whole shards of the store's sharded arrays straight to their files.

An ingest region owns whole shards (:func:`~pipeline.store.ingestion.plan_regions`), so its
images need no read-modify-write: each inner chunk is encoded with the array's own codecs
(numcodecs, exactly as zarr's codec objects call it), the shard index is appended with its
CRC32C, and the shard is written in one call. The bytes follow the Zarr v3 ``sharding_indexed``
codec (index at the end, ``(offset, nbytes)`` little-endian uint64 per inner chunk, empty chunks
``2**64 - 1``), so zarr reads them as its own; ``tests/test_ingest.py`` reads shards written here
back with zarr and compares them with zarr's own writes.

Measured on the 2-core machine (bench/RESULTS.md), this cut the store write of an ingest region
from about 0.5 to about 0.2 ms of CPU per euclid-sglc2 object: zarr's asynchronous codec
pipeline copies and checks every inner chunk several times.

Anything this module does not know (another layout of codecs, a region that does not start a
shard, a remote store) returns False, and the caller writes through zarr.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_EMPTY = np.uint64(2**64 - 1)
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _inner_codec(config: dict):
    """A numcodecs codec doing what zarr's inner ``blosc`` or ``zstd`` codec does, or None."""
    name, conf = config["name"], config.get("configuration", {})
    if name == "blosc":
        from numcodecs import Blosc

        return Blosc.from_config(
            {
                "cname": conf["cname"],
                "clevel": conf["clevel"],
                "shuffle": _SHUFFLE[conf["shuffle"]],
                "blocksize": conf.get("blocksize", 0),
                "typesize": conf["typesize"],
            }
        )
    if name == "zstd" and not conf.get("checksum", False):
        from numcodecs import Zstd

        return Zstd(level=conf.get("level", 0))
    return None


def write_whole_shard(array_dir: Path, start: int, values: np.ndarray) -> bool:
    """Write ``values`` as the shard of rows ``start:`` of the array stored in ``array_dir``.

    ``values`` must fill the shard, or end where the array ends. Returns False (nothing written)
    when the array, its codecs or the region are not of the one kind this writer handles.
    """
    try:
        meta = json.loads((array_dir / "zarr.json").read_text())
        (sharding,) = meta["codecs"]
        if sharding["name"] != "sharding_indexed":
            return False
        conf = sharding["configuration"]
        inner_codecs, index_codecs = conf["codecs"], conf["index_codecs"]
        if conf.get("index_location", "end") != "end" or len(inner_codecs) != 2:
            return False
        if inner_codecs[0] != {"name": "bytes", "configuration": {"endian": "little"}}:
            return False
        if [c["name"] for c in index_codecs] != ["bytes", "crc32c"]:
            return False
        if index_codecs[0].get("configuration", {}).get("endian", "little") != "little":
            return False
        if meta["chunk_key_encoding"] != {"name": "default", "configuration": {"separator": "/"}}:
            return False
        codec = _inner_codec(inner_codecs[1])
    except (OSError, KeyError, ValueError, TypeError):
        return False
    if codec is None:
        return False
    shape = tuple(meta["shape"])
    shard_shape = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    inner_shape = tuple(conf["chunk_shape"])
    rows, inner_rows = shard_shape[0], inner_shape[0]
    dtype = np.dtype(meta["data_type"]).newbyteorder("<")
    if shard_shape[1:] != shape[1:] or inner_shape[1:] != shape[1:] or rows % inner_rows:
        return False
    n = len(values)
    if start % rows or tuple(values.shape[1:]) != shape[1:] or n != min(rows, shape[0] - start):
        return False
    fill = meta["fill_value"]
    fill = np.nan if fill == "NaN" else fill
    values = np.ascontiguousarray(values, dtype=dtype)
    n_inner = rows // inner_rows
    index = np.full((n_inner, 2), _EMPTY, dtype="<u8")
    parts: list[bytes] = []
    offset = 0
    for j in range(-(-n // inner_rows)):
        block = values[j * inner_rows : (j + 1) * inner_rows]
        if len(block) < inner_rows:  # the array's last inner chunk: padded with the fill value
            padded = np.full((inner_rows, *shape[1:]), fill, dtype=dtype)
            padded[: len(block)] = block
            block = padded
        encoded = bytes(codec.encode(block.view(np.uint8).reshape(-1)))
        index[j] = (offset, len(encoded))
        offset += len(encoded)
        parts.append(encoded)
    import google_crc32c

    index_bytes = index.tobytes()
    parts.append(index_bytes)
    parts.append(np.uint32(google_crc32c.value(index_bytes)).tobytes())
    key = "/".join(["c", str(start // rows), *("0" for _ in shape[1:])])
    path = array_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:
        stream.writelines(parts)
    return True
