"""PNG panels of one object, rendered on demand from the scored store and kept in a small cache.

Only the objects an inspector looks at are read (one row of each group's Zarr array) and drawn:
the colour composite and the per-band panels of :mod:`pipeline.evaluation.composites`, the same
pictures as the report's gallery. Nothing is precomputed.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from pipeline.errors import LenshuntError

COMPOSITE = "composite"


class UnknownObjectError(LenshuntError, KeyError):
    """An object id or band the store does not hold."""


class ImageReadError(LenshuntError, RuntimeError):
    """An object the store holds whose pixels cannot be read (a damaged chunk file)."""


class ObjectImages:
    """Read one object's cutouts from ``store`` and render its PNGs; thread-safe, LRU-cached.

    Parameters
    ----------
    store : pathlib.Path
        The Zarr store the run scored.
    cache_size : int
        Rendered PNGs kept in memory (each a few kB to tens of kB).
    """

    def __init__(self, store: str | Path, cache_size: int = 512) -> None:
        from pipeline.store.zarr_store import open_store, read_attributes, store_layout

        self.store = Path(store)
        self.layout = store_layout(read_attributes(self.store))
        self._dataset = open_store(self.store, chunks=None)
        ids = self._dataset["object_id"].values
        self._row_of = {int(object_id): row for row, object_id in enumerate(ids)}
        self._cache: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def panels(self) -> list[str]:
        """Names of the PNGs of an object: ``composite`` then the band names."""
        return [COMPOSITE, *self.layout.band_names]

    @property
    def scale_bars(self) -> dict[str, dict | None]:
        """Panel -> its scale bar (``label``, ``percent`` of the image's width), as the report's gallery
        draws it (:func:`~pipeline.evaluation.gallery.scale_bar`): the composite's on the finest
        group's grid, each band's at its own pixel scale."""
        from pipeline.evaluation.gallery import field_arcsec, scale_bar

        bars = {COMPOSITE: scale_bar(field_arcsec(self.layout))}
        for band in self.layout.band_names:
            bars[band] = scale_bar(field_arcsec(self.layout, self.layout.band(band).group))
        return bars

    def images(self, object_id: int, groups: list[str] | None = None) -> dict[str, np.ndarray]:
        """Group -> (n_band, ny, nx) cutouts of one object, of ``groups`` (None: every group).

        Raises
        ------
        UnknownObjectError
            For an id the store does not hold.
        ImageReadError
            Where a chunk of its pixels cannot be read or decoded (trial: a damaged chunk was a
            traceback on the server's console and a broken image on the page, unsaid).
        """
        from pipeline.store.cutouts import READ_ERRORS

        row = self._row_of.get(int(object_id))
        if row is None:
            raise UnknownObjectError(f"object {object_id} is not in store {self.store}")
        images = {}
        for group in self.layout.groups if groups is None else groups:
            try:
                images[group] = self._dataset[group][row].values
            except READ_ERRORS as error:
                raise ImageReadError(
                    f"the pixels of object {object_id} cannot be read from {self.store} (a damaged chunk "
                    f"of {group!r}: {type(error).__name__}); ingest the cutouts into a new store"
                ) from error
        return images

    def png(self, object_id: int, panel: str) -> bytes:
        """PNG bytes of the composite (``panel="composite"``) or of one band."""
        key = (int(object_id), panel)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = self._render(int(object_id), panel)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    def _render(self, object_id: int, panel: str) -> bytes:
        from PIL import Image

        from pipeline.evaluation.composites import band_panel, make_composite

        if panel != COMPOSITE and panel not in self.layout.band_names:
            raise UnknownObjectError(f"no panel {panel!r}: use {', '.join(self.panels)}")
        if panel == COMPOSITE:
            picture = Image.fromarray(make_composite(self.images(object_id), self.layout))
        else:  # its own group only: a damaged chunk of another leaves this panel drawable
            group = self.layout.band(panel).group
            index = list(self.layout.groups[group]).index(panel)
            picture = Image.fromarray(band_panel(self.images(object_id, [group])[group][index]))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()
