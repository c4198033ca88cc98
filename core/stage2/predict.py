"""Stage II's prediction: a trained :class:`~..hsi_net.StageIIModel` applied tile by tile
(with a halo) to a raster, written as the class map of :mod:`..class_map`, or to a cube
held in memory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
import rasterio
from rasterio.windows import Window

from .. import classes as classes_mod
from .. import raster_io
from ..class_map import CONFIDENCE_NODATA, ClassMapWriter
from ..final_map import GUIDE_COMPONENTS, FinalMap, estimate_priors, finish, grid_sample
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
    ``extra_outputs``: (path, writer(temp_path)) written in the same all-or-nothing step).

    With the model's final map active (class priors, smoothing) it takes two passes: the
    network's probabilities and the guide go tile by tile into a temporary raster beside
    OUTPUT (and a grid sample of them into memory, for the priors), then strips of it are
    finished and written."""
    final = model.final or FinalMap()
    paths = [output, output_confidence] + [p for p, _ in extra_outputs]
    n_classes = len(model.class_names)
    with raster_io.atomic_outputs(paths) as temps:
        class_map = ClassMapWriter(src, temps[0], temps[1], n_classes)
        if not final.active:
            with class_map:
                for window, probs, invalid, _ in _network_tiles(
                        model, reader, device, tile, progress.sub(0.0, 1.0), None):
                    class_map.write(window, probs.argmax(0) + 1, classes_mod.bvsb(probs),
                                    invalid)
        else:
            fd, probs_path = tempfile.mkstemp(prefix=".partial-probabilities-", suffix=".tif",
                                              dir=os.path.dirname(os.path.abspath(output)))
            os.close(fd)
            try:
                priors = _first_pass(model, reader, src, device, tile, final, probs_path,
                                     progress.sub(0.0, 0.8))
                with class_map:
                    _second_pass(probs_path, final, priors, class_map, n_classes,
                                 progress.sub(0.8, 1.0))
            finally:
                for leftover in (probs_path, probs_path + ".aux.xml"):
                    if os.path.exists(leftover):
                        os.remove(leftover)
        class_map.write_legend(model.class_names, model.colours)
        for temp, (_, writer) in zip(temps[2:], extra_outputs, strict=True):
            writer(temp)


def _network_tiles(model: StageIIModel, reader: CubeReader, device, tile: int,
                   progress: Progress, guide_of: Optional[FinalMap]):
    """(window, probabilities (C, h, w), invalid (h, w), guide (3, h, w) or None) of every
    tile, from the network (with the spectral prior); the guide of ``guide_of``."""
    network = model.predictor().to(device)
    last_read: dict = {}  # predict_tiles yields each tile right after reading it

    def read_standardised(y0, y1, x0, x1):
        block, invalid = reader.read(y0, y1, x0, x1)
        standardised = model.stats.apply(block, invalid)
        last_read.update(origin=(y0, x0), invalid=invalid, block=standardised)
        return standardised

    n_tiles = len(tiles(reader.shape, tile))
    for i, ((y0, y1, x0, x1), probs) in enumerate(
            predict_tiles(network, read_standardised, reader.shape, device, tile)):
        progress.check()
        ry0, rx0 = last_read["origin"]
        core = (slice(y0 - ry0, y1 - ry0), slice(x0 - rx0, x1 - rx0))
        guide = None
        if guide_of is not None:
            guide = guide_of.guide(last_read["block"][(slice(None),) + core])
        yield (Window(x0, y0, x1 - x0, y1 - y0), probs, last_read["invalid"][core], guide)
        progress.update((i + 1) / n_tiles, f"stage II: predicting tile {i + 1}/{n_tiles}")


def _first_pass(model: StageIIModel, reader: CubeReader, src, device, tile: int,
                final: FinalMap, path: str, progress: Progress):
    """The network's probabilities (NaN = no data) and the guide into ``path``; returns
    the scene's class priors (None for equal priors)."""
    n_classes = len(model.class_names)
    step = grid_sample(reader.shape)
    sample = []
    # Uncompressed: it is read back once, right away. The guide's bands only when smoothing.
    guide_bands = GUIDE_COMPONENTS if final.smooths else 0
    profile = raster_io.geotiff_profile(src, n_classes + guide_bands, "float32", None)
    del profile["compress"], profile["predictor"]
    with rasterio.open(path, "w", **profile) as dst:
        for window, probs, invalid, guide in _network_tiles(
                model, reader, device, tile, progress, final if final.smooths else None):
            probs = probs.copy()
            probs[:, invalid] = np.nan
            # The grid of every step-th row and column of the whole scene, in this tile.
            rows = slice((-window.row_off) % step, None, step)
            cols = slice((-window.col_off) % step, None, step)
            picked = probs[:, rows, cols].reshape(n_classes, -1).T
            sample.append(picked[~np.isnan(picked[:, 0])])
            dst.write(probs, window=window, indexes=list(range(1, n_classes + 1)))
            if guide is not None:
                dst.write(guide, window=window,
                          indexes=list(range(n_classes + 1, n_classes + 1 + guide_bands)))
    if final.class_priors != "scene":
        return None
    progress.update(1.0, "stage II: estimating the class priors of the scene")
    return estimate_priors(np.concatenate(sample))


_STRIP = 256


def _second_pass(path: str, final: FinalMap, priors, class_map: ClassMapWriter,
                 n_classes: int, progress: Progress) -> None:
    """Finish strips of the first pass's raster (with a halo of rows, which makes the
    smoothing equal to the whole image's) and write the class map."""
    halo = final.halo
    with rasterio.open(path) as ds:
        height, width = ds.height, ds.width
        for y0 in range(0, height, _STRIP):
            progress.check()
            y1 = min(height, y0 + _STRIP)
            a, b = max(0, y0 - halo), min(height, y1 + halo)
            block = ds.read(window=Window(0, a, width, b - a))
            probs = finish(block[:n_classes], block[n_classes:] if final.smooths else None,
                           final, priors)[:, y0 - a:y1 - a]  # (the guide: bands after C)
            invalid = np.isnan(probs[0])
            filled = np.where(invalid, 0.0, probs)
            class_map.write(Window(0, y0, width, y1 - y0), filled.argmax(0) + 1,
                            classes_mod.bvsb(filled), invalid)
            progress.update(y1 / height, "stage II: the final map")


def predict_array(model: StageIIModel, cube: np.ndarray, invalid: np.ndarray, device,
                  tile: int, final: Optional[FinalMap] = None) -> np.ndarray:
    """(C, rows, cols) float32 class probabilities of ``cube`` (bands, rows, cols) in the
    model's units, finished as the model's final map says (or as ``final`` says); NaN
    where ``invalid``."""
    final = final or model.final or FinalMap()
    network = model.predictor().to(device)
    out = np.empty((len(model.class_names),) + cube.shape[1:], np.float32)
    guide = (np.empty((GUIDE_COMPONENTS,) + cube.shape[1:], np.float32) if final.smooths
             else None)

    def read_standardised(a, b, c, d):
        block = model.stats.apply(cube[:, a:b, c:d], invalid[a:b, c:d])
        if guide is not None:  # from the block already standardised (halos overlap: same values)
            guide[:, a:b, c:d] = final.guide(block)
        return block

    for (y0, y1, x0, x1), probs in predict_tiles(
            network, read_standardised, (cube.shape[1], cube.shape[2]), device, tile):
        out[:, y0:y1, x0:x1] = probs
    out[:, invalid] = np.nan
    if not final.active:
        return out
    step = grid_sample(invalid.shape)
    sample = out[:, ::step, ::step].reshape(len(out), -1).T
    priors = (estimate_priors(sample[~np.isnan(sample[:, 0])])
              if final.class_priors == "scene" else None)
    return finish(out, guide, final, priors)
