"""Uniform random samples of pixel values from a stream of chunks, in bounded memory.

Used to measure per-band statistics (percentiles) of a store far bigger than memory.

Examples
--------
>>> import numpy as np
>>> reservoir = PixelReservoir(1000, np.random.default_rng(0))
>>> for start in range(0, 100_000, 10_000):
...     reservoir.add(np.arange(start, start + 10_000, dtype=np.float32))
>>> reservoir.values().size, reservoir.n_seen
(1000, 100000)
"""

from __future__ import annotations

import numpy as np

SUB_BATCH = 1 << 22
"""Values handled at once, to bound the memory of one :meth:`PixelReservoir.add`."""


class PixelReservoir:
    """Bottom-k sample: keeps the ``capacity`` values with the smallest uniform random keys.

    Every value seen so far is equally likely to be kept, whatever the chunk sizes, and the
    result is reproducible for a given generator state and order of chunks. Once full, only
    values whose key would fall under the current k-th smallest key are drawn (their number is
    binomial), so most of a big stream costs one random draw per chunk rather than per value.

    Parameters
    ----------
    capacity
        Most values kept; ``None`` keeps every value.
    rng
        Source of the random keys.
    """

    def __init__(self, capacity: int | None, rng: np.random.Generator) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be a positive number of values or None, got {capacity}")
        self.capacity = capacity
        self.rng = rng
        self.n_seen = 0
        self._values: list[np.ndarray] = []
        self._keys = np.empty(0, dtype=np.float64)
        self._kept = np.empty(0, dtype=np.float32)

    def add(self, values: np.ndarray) -> None:
        """Offer a 1-D array of (finite) values to the sample."""
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if self.capacity is None:
            self._values.append(values)
            self.n_seen += values.size
            return
        for start in range(0, values.size, SUB_BATCH):
            self._add_bounded(values[start : start + SUB_BATCH], self.capacity)

    def _add_bounded(self, values: np.ndarray, capacity: int) -> None:
        self.n_seen += values.size
        if self._keys.size < capacity:
            threshold = 1.0
            keys = self.rng.random(values.size)
            candidates = values
        else:
            threshold = float(self._keys.max())
            n_candidates = int(self.rng.binomial(values.size, threshold))
            if n_candidates == 0:
                return
            positions = self.rng.choice(values.size, size=n_candidates, replace=False)
            keys = self.rng.random(n_candidates) * threshold
            candidates = values[positions]
        all_keys = np.concatenate([self._keys, keys])
        all_values = np.concatenate([self._kept, candidates])
        if all_keys.size > capacity:
            keep = np.argpartition(all_keys, capacity - 1)[:capacity]
            all_keys, all_values = all_keys[keep], all_values[keep]
        self._keys, self._kept = all_keys, all_values

    def values(self) -> np.ndarray:
        """The sampled values (all values when the capacity is ``None``), float32."""
        if self.capacity is None:
            return np.concatenate(self._values) if self._values else np.empty(0, dtype=np.float32)
        return self._kept
