"""Stage II's prediction: a trained :class:`~..hsi_net.StageIIModel` applied tile by tile
(with a halo) to a raster, written as the class map of :mod:`..class_map`, or to a cube
held in memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
from rasterio.windows import Window

from .. import classes as classes_mod
from .. import raster_io
from ..class_map import CONFIDENCE_NODATA, ClassMapWriter
from ..hsi_net import CubeReader, StageIIModel, predict_tiles, tiles
from ..progress import Progress

MODEL_EXTENSION = ".pt"
__all__ = ["CONFIDENCE_NODATA", "MODEL_EXTENSION", "check_outputs", "predict_array",
           "write_prediction"]


def check_outputs(rasters: dict, inputs: Sequence[str],
                  model: Optional[str] = None) -> None:
    """OUTPUT-style GeoTIFFs in ``rasters`` and the optional OUTPUT_MODEL file."""
    for param, path in rasters.items():
        raster_io.check_output_path(path, inputs, param)
    if model:
        # The .pt ending also keeps the model off an input's sidecars (.hdr, .aux.xml).
        raster_io.check_output_path(model, inputs, "OUTPUT_MODEL", (MODEL_EXTENSION,),
                                    "a PyTorch file")
    raster_io.check_distinct_outputs({**rasters, "OUTPUT_MODEL": model})


def write_prediction(model: StageIIModel, reader: CubeReader, src, device, output: str,
                     output_confidence: str, tile: int, progress: Progress,
                     extra_outputs: Sequence[tuple[str, Callable[[str], None]]] = ()) -> None:
    """Predict the whole scene tile by tile into OUTPUT and OUTPUT_CONFIDENCE (and any
    ``extra_outputs``: (path, writer(temp_path)) written in the same all-or-nothing step)."""
    network = model.predictor().to(device)
    last_read: dict = {}  # predict_tiles yields each tile right after reading it

    def read_standardised(y0, y1, x0, x1):
        block, invalid = reader.read(y0, y1, x0, x1)
        last_read.update(origin=(y0, x0), invalid=invalid)
        return model.stats.apply(block, invalid)

    paths = [output, output_confidence] + [p for p, _ in extra_outputs]
    shape = reader.shape
    with raster_io.atomic_outputs(paths) as temps:
        class_map = ClassMapWriter(src, temps[0], temps[1], len(model.class_names))
        with class_map:
            n_tiles = len(tiles(shape, tile))
            for i, ((y0, y1, x0, x1), probs) in enumerate(
                    predict_tiles(network, read_standardised, shape, device, tile)):
                progress.check()
                ry0, rx0 = last_read["origin"]
                invalid = last_read["invalid"][y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]
                class_map.write(Window(x0, y0, x1 - x0, y1 - y0), probs.argmax(0) + 1,
                                classes_mod.bvsb(probs), invalid)
                progress.update((i + 1) / n_tiles, f"stage II: predicting tile {i + 1}/{n_tiles}")
        class_map.write_legend(model.class_names, model.colours)
        for temp, (_, writer) in zip(temps[2:], extra_outputs, strict=True):
            writer(temp)




def predict_array(model: StageIIModel, cube: np.ndarray, invalid: np.ndarray, device,
                  tile: int) -> np.ndarray:
    """(C, rows, cols) float32 class probabilities of ``cube`` (bands, rows, cols) in the
    model's units; NaN where ``invalid``."""
    network = model.predictor().to(device)
    out = np.empty((len(model.class_names),) + cube.shape[1:], np.float32)
    for (y0, y1, x0, x1), probs in predict_tiles(
            network, lambda a, b, c, d: model.stats.apply(cube[:, a:b, c:d], invalid[a:b, c:d]),
            (cube.shape[1], cube.shape[2]), device, tile):
        out[:, y0:y1, x0:x1] = probs
    out[:, invalid] = np.nan
    return out
