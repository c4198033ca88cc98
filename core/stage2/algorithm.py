"""Stage II's Processing algorithms on rasters: :func:`run` (train on stage I's
pseudo-labels and classify the scene) and :func:`apply_model` (classify another scene with
a saved model). Both stream: training reads a bounded cache, prediction goes tile by tile."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import raster_io
from .. import scene as scene_mod
from ..device import describe_device, resolve_device
from ..hsi_net import DEFAULT_PREDICT_TILE, CubeReader, StageIIModel
from ..progress import Progress, as_progress
from .predict import check_outputs, write_prediction
from .rasters import Inputs, _open_inputs, build_cache, summarise_labels
from .schedule import MIN_POOL, Schedule, pool_thresholds
from .trainer import fit_chips


@dataclass
class StageIIResult:
    output: str
    confidence: str
    model: Optional[str]
    class_names: list
    colours: list
    warnings: list
    history: list


def run(inputs: Inputs, output: str, output_confidence: str,
        output_model: Optional[str] = None, schedule: Optional[Schedule] = None,
        device: str = "auto", progress: Optional[Progress] = None,
        on_epoch=None, threads: Optional[int] = None) -> StageIIResult:
    """Train the network on stage I's pseudo-labels and classify the whole scene.

    Writes OUTPUT (classes 1..C, 0 = no data, legend from LABELS), OUTPUT_CONFIDENCE
    (BvSB of the final model, Float32, NaN = no data) and optionally the model file.
    ``on_epoch(epoch, trainer)`` is a hook for benchmarks. ``threads``: PyTorch's CPU
    threads (None: the SPECIAL_QGIS_THREADS environment variable, else PyTorch's default).
    """
    progress = as_progress(progress)
    schedule = (schedule or Schedule()).validate()
    in_paths = [p for p in (inputs.input_path, inputs.labels_path, inputs.confidence_path,
                            inputs.mask_path) if p]
    check_outputs({"OUTPUT": output, "OUTPUT_CONFIDENCE": output_confidence}, in_paths,
                   output_model)
    torch_device = resolve_device(device, threads)
    rng = np.random.default_rng(schedule.seed)
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        src, lab, conf, mask = _open_inputs(stack, inputs, progress.sub(0.0, 0.01))
        progress.log_lines(src.band_report())
        progress.update(0.01, f"stage II: on {describe_device(torch_device)}; checking the labels")
        summary = summarise_labels(lab, conf, mask, inputs, schedule.samples_per_class)
        reader = CubeReader(src)
        thresholds = pool_thresholds(summary.histograms, schedule.random_set_fraction,
                                     MIN_POOL)
        chips = build_cache(reader, lab, conf, mask, schedule, thresholds, rng,
                            progress.sub(0.0, 0.08))
        n_classes = len(summary.class_names)
        trainer, stats, prior = fit_chips(chips, n_classes, schedule, torch_device, rng,
                                          progress, on_epoch)
        del chips
        prior_weight, prior_bias = prior or (None, None)
        model = StageIIModel(trainer.network.cpu(), stats, summary.class_names,
                             summary.colours, src.good_wavelengths,
                             schedule.width,
                             {**schedule.model_info(),
                              "trained_on": os.path.basename(inputs.input_path)},
                             prior_weight, prior_bias, bands_used=src.good,
                             source_bands=src.count, final=trainer.final)
        extra = [(output_model, model.save)] if output_model else []
        write_prediction(model, reader, src, torch_device, output, output_confidence,
                         schedule.predict_tile, progress.sub(0.85, 1.0), extra)
    return StageIIResult(output, output_confidence, output_model, summary.class_names,
                         summary.colours, summary.warnings, trainer.history)


def apply_model(input_path: str, model_path: str, output: str, output_confidence: str,
                device: str = "auto", tile: int = DEFAULT_PREDICT_TILE,
                progress: Optional[Progress] = None, bad_bands: Optional[str] = None,
                wavelengths_override: Optional[str] = None,
                threads: Optional[int] = None) -> StageIIResult:
    """Classify ``input_path`` with a model saved by :func:`run`. The model's bands are
    found in INPUT by wavelength (or by number when either lacks wavelengths)."""
    progress = as_progress(progress)
    check_outputs({"OUTPUT": output, "OUTPUT_CONFIDENCE": output_confidence},
                   [input_path, model_path])
    model = StageIIModel.load(model_path)
    torch_device = resolve_device(device, threads)
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress.sub(0.0, 0.02)) as src:
        progress.log_lines(src.band_report())
        bands, warnings = model.match_bands(src)
        write_prediction(model, CubeReader(src, bands), src, torch_device, output,
                         output_confidence, tile, progress.sub(0.02, 1.0))
    return StageIIResult(output, output_confidence, None, model.class_names, model.colours,
                         warnings, [])
