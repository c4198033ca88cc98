"""The class map both stages write: a class raster (values 1..C, 0 = no data, with a
legend from :func:`classes.write_class_metadata`) and its confidence raster (Float32,
best-minus-second-best probability, NaN = no data), on the input's grid, tile by tile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import rasterio
from rasterio.windows import Window

from . import classes as classes_mod
from . import raster_io

# No data in the confidence raster (and in stage I's probabilities).
CONFIDENCE_NODATA = float("nan")
CONFIDENCE_DESCRIPTION = "confidence (best minus second-best)"


class ClassMapWriter:
    """Writes OUTPUT-style class and confidence rasters on ``src``'s grid.

    ``labels_path`` and ``confidence_path`` are the files to write (usually the temporary
    paths of :func:`raster_io.atomic_outputs`). Use as a context manager, :meth:`write`
    every tile, and :meth:`write_legend` once the rasters are closed.
    """

    def __init__(self, src, labels_path: str, confidence_path: str, n_classes: int) -> None:
        self.labels_path = labels_path
        self.confidence_path = confidence_path
        self.label_profile = raster_io.geotiff_profile(
            src, 1, classes_mod.label_dtype(n_classes), classes_mod.NODATA_LABEL)
        self.confidence_profile = raster_io.geotiff_profile(src, 1, "float32",
                                                            CONFIDENCE_NODATA)
        self._labels: Any = None
        self._confidence: Any = None

    def __enter__(self) -> ClassMapWriter:
        self._labels = rasterio.open(self.labels_path, "w", **self.label_profile)
        try:
            self._confidence = rasterio.open(self.confidence_path, "w",
                                             **self.confidence_profile)
            self._confidence.set_band_description(1, CONFIDENCE_DESCRIPTION)
        except BaseException:
            self._labels.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for dst in (self._labels, self._confidence):
            if dst is not None:
                dst.close()
        self._labels = self._confidence = None

    def write(self, window: Window, labels: np.ndarray, confidence: np.ndarray,
              invalid: Optional[np.ndarray] = None) -> None:
        """One tile: ``labels`` (rows, cols) 1..C, ``confidence`` (rows, cols); pixels
        ``invalid`` become no data in both."""
        labels = labels.astype(self.label_profile["dtype"])
        confidence = confidence.astype(np.float32)
        if invalid is not None:
            labels[invalid] = classes_mod.NODATA_LABEL
            confidence[invalid] = CONFIDENCE_NODATA
        self._labels.write(labels[None], window=window)
        self._confidence.write(confidence[None], window=window)

    def write_legend(self, names: Sequence[str],
                     rgb: Optional[Sequence[Sequence[int]]] = None) -> None:
        """The class raster's colour table and category names (after :meth:`close`)."""
        classes_mod.write_class_metadata(self.labels_path, names, rgb)
