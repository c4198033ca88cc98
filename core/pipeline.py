"""The whole SPECIAL pipeline in one call: pseudo-RGB → CLIP pseudo-labels with resolution
scaling (stage I) → noise-robust network (stage II).

Each stage is the same ``core`` function its own Processing algorithm calls; this module
only chains them, checks every parameter before the first (slow) stage starts, and makes
the outputs all-or-nothing: the stages write to temporary names beside the outputs, which
are moved into place only when the last stage has finished.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from . import classes as classes_mod
from . import clip_backbone, noiserobust, pseudo_rgb, pseudolabel, raster_io
from . import scene as scene_mod
from .device import resolve_device
from .errors import UserInputError
from .progress import Progress, as_progress

STAGE_RGB = "Pseudo-RGB"
STAGE_I = "Stage I (CLIP pseudo-labels)"
STAGE_II = "Stage II (noise-robust network)"

# Shares of the progress bar. Stage I (a ViT over every window at two scales) and stage II
# (training) take comparable time on a CPU for a 512 × 512 scene.
_RGB_SHARE = 0.02
_STAGE_I_END = 0.5


@dataclass
class ClassifyResult:
    output: str
    confidence: str
    pseudo_labels: Optional[str]
    rgb: Optional[str]
    model: Optional[str]
    class_names: list
    colours: list
    windows: int
    warnings: list = field(default_factory=list)
    history: list = field(default_factory=list)


@contextlib.contextmanager
def _stage(name: str):
    """Name the stage in the user's errors, so a message from deep inside says where."""
    try:
        yield
    except UserInputError as exc:
        raise UserInputError(f"{name}: {exc}") from None


def _check_parameters(input_path: str, mask_path: Optional[str], outputs: dict,
                      output_model: Optional[str], wavelengths_override: Optional[str],
                      bad_bands: Optional[str], progress: Progress) -> None:
    inputs = [p for p in (input_path, mask_path) if p]
    noiserobust.check_outputs(outputs, inputs, output_model)
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress) as src:
        if len(src.good) < 4:
            raise UserInputError(
                f"INPUT: '{input_path}' has {src.count} band(s)"
                f"{f', {len(src.good)} of them good' if src.bad else ''}. special:classify "
                f"needs a hyperspectral raster with at least 4 good bands: stage II learns "
                f"from the spectra. For an RGB image use special:pseudolabel alone.")
        src.require_wavelengths()
        if mask_path:
            with raster_io.open_raster(mask_path, "MASK") as mask:
                noiserobust.check_aligned(src, mask, "MASK", mask_path, input_path)


def classify(input_path: str, classes: Sequence[Sequence[str]], output: str,
             output_confidence: str, output_pseudo_labels: Optional[str] = None,
             output_rgb: Optional[str] = None, output_model: Optional[str] = None,
             model_name: str = clip_backbone.DEFAULT_MODEL,
             pretrained: str = clip_backbone.DEFAULT_PRETRAINED,
             scales=pseudolabel.DEFAULT_SCALES, window: int = pseudolabel.DEFAULT_WINDOW,
             stride: int = pseudolabel.DEFAULT_STRIDE,
             wavelengths_override: Optional[str] = None, targets: Optional[str] = None,
             schedule: Optional[noiserobust.Schedule] = None, device: str = "auto",
             mask_path: Optional[str] = None, cache_dir: Optional[str] = None,
             progress: Optional[Progress] = None,
             bad_bands: Optional[str] = None) -> ClassifyResult:
    """Classify a hyperspectral raster into ``classes`` with no training labels.

    ``classes``: one list of synonyms per class. Writes OUTPUT (classes 1..C, 0 = no data,
    colour table and class names) and OUTPUT_CONFIDENCE (BvSB of the final model, Float32,
    NaN = no data); optionally the stage I pseudo-labels, the pseudo-RGB and the stage II model
    file. Every raster is on INPUT's grid. Either every requested output is written or none.
    ``bad_bands``: BAD_BANDS text; bad bands are left out of every stage.
    """
    progress = as_progress(progress)
    classes = classes_mod.validate_classes([list(c) for c in classes])
    scales = pseudolabel.parse_scales(scales)
    targets_nm = pseudo_rgb.parse_targets(targets)
    schedule = (schedule or noiserobust.Schedule()).validate()
    requested = {"OUTPUT": output, "OUTPUT_CONFIDENCE": output_confidence,
                 "OUTPUT_PSEUDO_LABELS": output_pseudo_labels, "OUTPUT_RGB": output_rgb}
    rasters = {name: path for name, path in requested.items() if path}
    _check_parameters(input_path, mask_path, rasters, output_model, wavelengths_override,
                      bad_bands, progress.sub(0.0, 0.01))
    resolve_device(device)  # DEVICE=cuda without CUDA: say so before stage I
    targets_text = ",".join(f"{t:g}" for t in targets_nm)

    finals = list(rasters.values()) + ([output_model] if output_model else [])
    with raster_io.atomic_outputs(finals) as temps, tempfile.TemporaryDirectory(
            prefix=".special-classify-", dir=os.path.dirname(os.path.abspath(output))) as work:
        tmp = dict(zip(list(rasters) + ["OUTPUT_MODEL"], temps, strict=False))
        start = 0.0
        if output_rgb:
            with _stage(STAGE_RGB):
                progress.update(0.0, f"{STAGE_RGB}: rendering")
                pseudo_rgb.write_pseudo_rgb(input_path, tmp["OUTPUT_RGB"], wavelengths_override,
                                            targets_text, progress.sub(0.0, _RGB_SHARE),
                                            bad_bands=bad_bands)
            start = _RGB_SHARE
        labels = tmp.get("OUTPUT_PSEUDO_LABELS") or os.path.join(work, "pseudo_labels.tif")
        label_confidence = os.path.join(work, "pseudo_label_confidence.tif")
        with _stage(STAGE_I):
            stage_i = pseudolabel.run(
                input_path, classes, labels, label_confidence, None, model_name=model_name,
                pretrained=pretrained, device=device, scales=scales, window=window,
                stride=stride, wavelengths_override=wavelengths_override,
                targets=targets_text, cache_dir=cache_dir,
                progress=progress.sub(start, _STAGE_I_END), bad_bands=bad_bands)
        with _stage(STAGE_II):
            stage_ii = noiserobust.run(
                noiserobust.Inputs(input_path, labels, label_confidence, mask_path, bad_bands,
                                   wavelengths_override),
                tmp["OUTPUT"], tmp["OUTPUT_CONFIDENCE"], tmp.get("OUTPUT_MODEL"), schedule,
                device, progress.sub(_STAGE_I_END, 1.0))
        progress.check()  # a cancel after the last tile still leaves nothing behind
    return ClassifyResult(output, output_confidence, output_pseudo_labels, output_rgb,
                          output_model, stage_ii.class_names, stage_ii.colours,
                          stage_i.windows, stage_ii.warnings, stage_ii.history)
