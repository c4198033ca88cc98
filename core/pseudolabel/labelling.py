"""Running stage I on a raster: the scene's normalisation, then the labels, confidence and
probabilities written tile by tile."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import rasterio
from rasterio.windows import Window

from .. import classes as classes_mod
from .. import clip_backbone, pseudo_rgb, raster_io
from .. import scene as scene_mod
from ..class_map import CONFIDENCE_NODATA, ClassMapWriter
from ..device import describe_device
from ..errors import UserInputError
from ..progress import Progress, as_progress
from .options import (
    _MAX_SAMPLES,
    DEFAULT_SCALES,
    DEFAULT_STRIDE,
    DEFAULT_TILE,
    DEFAULT_WINDOW,
    QUANTILES,
    StageIOptions,
    check_window,
    parse_scales,
)
from .segmenter import DenseSegmenter


class _Normaliser:
    """Per channel: clip to the 0.1 % / 99.9 % quantiles of valid pixels, map to [0, 1];
    invalid pixels take the channel median (a neutral value that does not disturb CLIP)."""

    def __init__(self, reader: pseudo_rgb.PlanReader, shape: tuple, progress: Progress) -> None:
        height, width = shape
        step = max(1, math.ceil(math.sqrt(height * width / _MAX_SAMPLES)))
        samples = []
        windows = raster_io.row_windows(height, width, reader.bytes_per_pixel)
        for i, window in enumerate(windows):
            progress.check()
            rgb, invalid = reader.read(window)
            rgb, invalid = rgb[:, ::step, ::step], invalid[::step, ::step]
            samples.append(rgb[:, ~invalid & np.isfinite(rgb).all(0)])
            progress.update((i + 1) / len(windows), "stage I: scene statistics")
        values = np.concatenate(samples, axis=1) if samples else np.empty((3, 0))
        if values.shape[1] == 0:
            raise UserInputError("INPUT has no valid pixels: every pixel is nodata.")
        self.lo = np.quantile(values, QUANTILES[0], axis=1).astype(np.float32)
        self.hi = np.quantile(values, QUANTILES[1], axis=1).astype(np.float32)
        self.hi = np.where(self.hi > self.lo, self.hi, self.lo + 1.0).astype(np.float32)
        self.fill = np.clip((np.median(values, axis=1) - self.lo) / (self.hi - self.lo), 0, 1)

    def __call__(self, rgb: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        out = (rgb - self.lo[:, None, None]) / (self.hi - self.lo)[:, None, None]
        out = np.clip(out, 0.0, 1.0)
        bad = invalid | ~np.isfinite(rgb).all(0)
        out[:, bad] = self.fill[:, None]
        return out.astype(np.float32)


@dataclass
class StageIResult:
    labels: str
    confidence: str
    probabilities: Optional[str]
    class_names: list
    windows: int


def run(input_path: str, classes: Sequence[Sequence[str]], output_labels: str,
        output_confidence: str, output_probabilities: Optional[str] = None,
        model_name: str = clip_backbone.DEFAULT_MODEL,
        pretrained: str = clip_backbone.DEFAULT_PRETRAINED, device: str = "auto",
        scales=DEFAULT_SCALES, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE,
        wavelengths_override: Optional[str] = None, targets: Optional[str] = None,
        cache_dir: Optional[str] = None, tile: int = DEFAULT_TILE,
        batch_size: Optional[int] = None, progress: Optional[Progress] = None,
        bad_bands: Optional[str] = None) -> StageIResult:
    """CLIP pseudo-labels for a hyperspectral (or 3-band RGB) raster.

    Writes the label raster (1..C, 0 = no data, colour table and category names), the
    BvSB confidence (Float32, NaN = no data) and optionally the fused class probabilities
    (C bands, Float32), all on the input's grid. ``classes``: one list of synonyms per
    class. A 3-band input is taken as RGB; more bands as hyperspectral (pseudo-RGB at
    ``targets``, default 655,553,451 nm).
    """
    progress = as_progress(progress)
    classes = classes_mod.validate_classes([list(c) for c in classes])
    scales = parse_scales(scales)
    outputs = [p for p in (output_labels, output_confidence, output_probabilities) if p]
    named = {"OUTPUT_LABELS": output_labels, "OUTPUT_CONFIDENCE": output_confidence,
             "OUTPUT_PROBABILITIES": output_probabilities}
    for name, path in named.items():
        if path:
            raster_io.check_output_path(path, [input_path], name)
    raster_io.check_distinct_outputs(named)

    targets_nm = pseudo_rgb.parse_targets(targets)
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress.sub(0.0, 0.02)) as src:
        progress.log_lines(src.band_report())
        if src.count == 3:
            weights = pseudo_rgb.rgb_weights(src)
        else:
            src.require_wavelengths()
            weights = pseudo_rgb.scene_weights(src, targets_nm)
        reader = pseudo_rgb.PlanReader(src, weights)
        shape = src.shape

        backbone = clip_backbone.load(model_name, pretrained, device, cache_dir,
                                      progress.sub(0.0, 0.05))
        check_window(window, stride, backbone.patch_size)
        if min(shape) < backbone.patch_size:
            raise UserInputError(
                f"INPUT is {shape[1]} × {shape[0]} pixels, smaller than one "
                f"{backbone.patch_size} × {backbone.patch_size} patch of {model_name}.")
        progress.update(0.05, f"stage I: on {describe_device(backbone.device)}")
        normalise = _Normaliser(reader, shape, progress.sub(0.05, 0.1))
        progress.update(0.1, "stage I: encoding the class names")
        segmenter = DenseSegmenter(backbone, classes,
                                   StageIOptions(scales, window, stride, tile, batch_size))
        total = segmenter.count_windows(shape)
        done = [0]
        run_progress = progress.sub(0.12, 1.0)

        def read_rgb(y0, y1, x0, x1):
            rgb, invalid = reader.read(Window(x0, y0, x1 - x0, y1 - y0))
            return normalise(rgb, invalid)

        def on_batch(n):
            done[0] += n
            run_progress.update(done[0] / total, f"stage I: window {done[0]}/{total}")
            run_progress.check()

        names = classes_mod.class_names(classes)
        n_cls = len(classes)
        prob_profile = raster_io.geotiff_profile(src, n_cls, "float32", CONFIDENCE_NODATA)
        with raster_io.atomic_outputs(outputs) as temps:
            tmp = dict(zip(outputs, temps, strict=True))
            class_map = ClassMapWriter(src, tmp[output_labels], tmp[output_confidence], n_cls)
            with class_map, contextlib.ExitStack() as stack:
                if output_probabilities:
                    dst_p = stack.enter_context(
                        rasterio.open(tmp[output_probabilities], "w", **prob_profile))
                    for i, name in enumerate(names, start=1):
                        dst_p.set_band_description(i, name)
                run_progress.check()
                for core in raster_io.tiles(shape, tile):
                    probs = segmenter.tile_probabilities(core, shape, read_rgb, on_batch)
                    win = Window(core[2], core[0], core[3] - core[2], core[1] - core[0])
                    _, invalid = reader.read(win)
                    class_map.write(win, (probs.argmax(0) + 1).cpu().numpy(),
                                    classes_mod.bvsb(probs).cpu().numpy(), invalid)
                    if output_probabilities:
                        probs = probs.cpu().numpy().astype(np.float32)
                        probs[:, invalid] = CONFIDENCE_NODATA
                        dst_p.write(probs, window=win)
            class_map.write_legend(names)
    return StageIResult(output_labels, output_confidence, output_probabilities, names, total)
