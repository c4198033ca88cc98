"""special:noiserobust and special:applymodel through Processing (what users see): bad
input gets a clear error that names the parameter, and nothing is written or changed. The
engine's errors, case by case: tests/core/test_noiserobust_errors.py."""

import noiserobust_cases
import pytest
from noiserobust_cases import (
    BANDS,
    MISALIGNED,
    NO_CUDA,
    expect_error,
    make_scene,
    misaligned_scene,
    not_our_model,
    old_version,
)

from rasters import make_cube, write_gtiff

# The shared fixtures, bound here so that pytest finds them.
trained = noiserobust_cases.trained
model_copy = noiserobust_cases.model_copy


def processing_error(folder, alg, params, *words) -> str:
    import processing
    from qgis.core import QgsProcessingException

    return expect_error(folder, lambda: processing.run(alg, params), *words,
                        error=QgsProcessingException)


def noiserobust_params(p, **extra) -> dict:
    params = {"INPUT": p.cube, "LABELS": p.labels, "CONFIDENCE": p.confidence, "EPOCHS": 1,
              "WARMUP_EPOCHS": 1, "ITERATIONS": 1, "SAMPLES_PER_CLASS": 50, "DEVICE": "cpu",
              "OUTPUT": p.out, "OUTPUT_CONFIDENCE": p.out_conf}
    if p.mask:
        params["MASK"] = p.mask
    params.update(extra)
    return params


@pytest.mark.parametrize("case", MISALIGNED)
def test_misaligned_rasters_processing(provider, tmp_path, case):
    param, p = misaligned_scene(tmp_path, case)
    processing_error(tmp_path, "special:noiserobust", noiserobust_params(p), f"{param}:",
                     "is not on the same grid as INPUT", f"resample {param} onto INPUT's grid")


@pytest.mark.parametrize("params,words", [
    ({"EPOCHS": 2, "WARMUP_EPOCHS": 3}, ["EPOCHS (2) is smaller than WARMUP_EPOCHS (3)",
                                         "raise EPOCHS or lower WARMUP_EPOCHS"]),
    ({"LEARNING_RATE": -0.01}, ["LEARNING_RATE must be a positive number"]),
    # EPOCHS has minValue 1: QGIS itself refuses it before the algorithm runs.
    ({"EPOCHS": 0, "WARMUP_EPOCHS": 0}, ["EPOCHS"]),
], ids=["EPOCHS < WARMUP_EPOCHS", "LEARNING_RATE negative", "EPOCHS 0"])
def test_bad_schedule_processing(provider, tmp_path, params, words):
    p = make_scene(tmp_path)
    processing_error(tmp_path, "special:noiserobust", noiserobust_params(p, **params), *words)


@NO_CUDA
def test_cuda_without_gpu_processing(provider, tmp_path):
    p = make_scene(tmp_path)
    processing_error(tmp_path, "special:noiserobust", noiserobust_params(p, DEVICE="cuda"),
                     "DEVICE:", "PyTorch sees no CUDA GPU")


@pytest.mark.parametrize("kind", ["text file", "other dict", "other version"])
def test_model_not_ours_processing(provider, tmp_path, trained, kind):
    p = make_scene(tmp_path)
    if kind == "other version":
        model, words = old_version(trained, tmp_path), ["MODEL:", "different version"]
    else:
        model = not_our_model(tmp_path, kind)
        words = ["MODEL:", "is not a special_qgis stage II model", "special:noiserobust"]
    processing_error(tmp_path, "special:applymodel",
                     {"INPUT": p.cube, "MODEL": model, "DEVICE": "cpu",
                      "OUTPUT": str(tmp_path / "a.tif"),
                      "OUTPUT_CONFIDENCE": str(tmp_path / "ac.tif")}, *words)


def test_apply_to_other_band_count_processing(provider, tmp_path, model_copy):
    scene = write_gtiff(str(tmp_path / "scene.tif"), make_cube(12, 16, 16))
    processing_error(tmp_path, "special:applymodel",
                     {"INPUT": scene, "MODEL": model_copy, "DEVICE": "cpu",
                      "OUTPUT": str(tmp_path / "a.tif"),
                      "OUTPUT_CONFIDENCE": str(tmp_path / "ac.tif")},
                     "INPUT:", "has 12 bands", f"trained on {BANDS} bands")


def test_cancel_through_processing(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    p = make_scene(tmp_path)
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 20 else None)
    params = noiserobust_params(p, EPOCHS=2, ITERATIONS=3)
    expect_error(tmp_path, lambda: processing.run("special:noiserobust", params,
                                                  feedback=feedback),
                 "Cancelled: no output was written", error=QgsProcessingException)
