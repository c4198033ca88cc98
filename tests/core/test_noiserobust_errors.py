"""special:noiserobust and special:applymodel's engine (core.noiserobust, what scripts
see): bad input gets a clear error that names the parameter and the fix. Every case also
checks that nothing was written (no output, no .partial-* temp) and that every file already
in the folder, inputs included, is byte-for-byte unchanged. The same errors through
Processing: tests/processing/test_noiserobust_errors_processing.py."""

import os

import noiserobust_cases
import numpy as np
import pytest
import rasterio
from noiserobust_cases import (
    BANDS,
    COLS,
    MISALIGNED,
    NAMES,
    NO_CUDA,
    ROWS,
    WL,
    expect_error,
    make_scene,
    misaligned_scene,
    not_our_model,
    old_version,
    snapshot,
    stripes,
    train,
)
from rasterio.transform import Affine

from special_qgis.core import noiserobust
from special_qgis.core.errors import Cancelled
from special_qgis.core.hsi_net import MODEL_VERSION, StageIIModel
from special_qgis.core.progress import Progress

from rasters import TRANSFORM, make_cube, write_envi, write_gtiff

# The shared fixtures, bound here so that pytest finds them.
trained = noiserobust_cases.trained
model_copy = noiserobust_cases.model_copy


def apply(folder, scene, model, device="cpu", progress=None):
    folder = str(folder)
    return noiserobust.apply_model(scene, model, os.path.join(folder, "applied.tif"),
                                   os.path.join(folder, "applied_confidence.tif"), device,
                                   progress=progress)


# ----------------------------------------------------------------------- the labels

@pytest.mark.parametrize("case", ["all zero", "all outside MASK"])
def test_no_labelled_pixels(tmp_path, case):
    if case == "all zero":
        p = make_scene(tmp_path, labels=np.zeros((ROWS, COLS), np.uint8))
    else:
        p = make_scene(tmp_path, mask=np.zeros((ROWS, COLS)))
    msg = expect_error(tmp_path, lambda: train(p), "LABELS:", "no labelled pixels",
                       "special:pseudolabel")
    assert ("outside MASK" in msg) == (case == "all outside MASK")


def test_only_one_class_has_pixels(tmp_path):
    labels = np.where(stripes() > 0, 2, 0).astype(np.uint8)
    p = make_scene(tmp_path, labels=labels)
    expect_error(tmp_path, lambda: train(p), "LABELS:", "only one class ('trees')",
                 "at least two", "more class names")


def test_small_class_is_a_warning(tmp_path):
    labels = stripes()
    labels[labels == 3] = 1
    labels[5, 3:8] = 3  # 'roofs': 5 pixels
    p = make_scene(tmp_path, labels=labels)
    before = snapshot(tmp_path)
    result = train(p, samples_per_class=50)
    assert any("'roofs'" in w and "only 5 labelled pixels" in w and "SAMPLES_PER_CLASS=50" in w
               for w in result.warnings), result.warnings
    assert result.class_names == NAMES
    assert all(os.path.exists(f) for f in (p.out, p.out_conf, p.model))
    after = snapshot(tmp_path)
    assert {k: after[k] for k in before} == before


def test_negative_labels_refused(tmp_path):
    labels = stripes().astype(np.int16)
    labels[4, 4] = -1
    p = make_scene(tmp_path, labels=labels, label_dtype="int16")
    expect_error(tmp_path, lambda: train(p), "LABELS:", "negative values", "classes are 1..C",
                 "0 means unlabelled")


def test_float_labels_refused(tmp_path):
    p = make_scene(tmp_path, labels=stripes().astype(np.float32), label_dtype="float32",
                   names=None)
    expect_error(tmp_path, lambda: train(p), "LABELS:", "float32", "whole numbers 1..C",
                 "OUTPUT_LABELS")


# --------------------------------------------------------------------- the confidence

@pytest.mark.parametrize("value,shown", [(1.5, "1.5"), (-0.2, "-0.2"), (np.nan, "nan")])
def test_bad_confidence_at_labelled_pixel(tmp_path, value, shown):
    confidence = np.full((ROWS, COLS), 0.8, np.float32)
    confidence[7, 9] = value
    p = make_scene(tmp_path, confidence=confidence)
    expect_error(tmp_path, lambda: train(p), "CONFIDENCE:", f"the value {shown} at a labelled",
                 "[0, 1]", "Rescale it", "set those pixels to 0 in LABELS")


@pytest.mark.parametrize("where", ["unlabelled pixel", "labelled pixel outside MASK"])
def test_nan_confidence_where_unused_is_fine(tmp_path, where):
    confidence = np.full((ROWS, COLS), 0.8, np.float32)
    mask = None
    if where == "unlabelled pixel":
        confidence[0, 3:6] = np.nan  # row 0 is unlabelled
    else:
        confidence[10, 3] = np.nan
        mask = np.ones((ROWS, COLS))
        mask[10, 3] = 0
    p = make_scene(tmp_path, confidence=confidence, mask=mask)
    result = train(p)
    assert result.warnings == []
    with rasterio.open(p.out) as src:
        assert src.read(1).min() >= 1  # every pixel classified, the NaN ones included


# ------------------------------------------------------------------------ alignment


@pytest.mark.parametrize("case", MISALIGNED)
def test_misaligned_rasters(tmp_path, case):
    param, p = misaligned_scene(tmp_path, case)
    expect_error(tmp_path, lambda: train(p), f"{param}:", "is not on the same grid as INPUT",
                 MISALIGNED[case][2], f"resample {param} onto INPUT's grid", "warpreproject")


def test_misaligned_message_shows_the_difference(tmp_path):
    p = make_scene(tmp_path, which="confidence",
                   transform=TRANSFORM * Affine.translation(0, 0.4))  # 1 m south
    expect_error(tmp_path, lambda: train(p), "CONFIDENCE:", "4123455", "4123456")


# ------------------------------------------------------------------------- schedule

SCHEDULES = {
    "EPOCHS < WARMUP_EPOCHS": (dict(epochs=2, warmup_epochs=3),
                               ["EPOCHS (2) is smaller than WARMUP_EPOCHS (3)",
                                "raise EPOCHS or lower WARMUP_EPOCHS"]),
    "EPOCHS 0": (dict(epochs=0, warmup_epochs=0), ["EPOCHS must be at least 1", "it is 0"]),
    "LEARNING_RATE 0": (dict(learning_rate=0.0),
                        ["LEARNING_RATE must be a positive number", "default is 0.001"]),
    "LEARNING_RATE negative": (dict(learning_rate=-0.01),
                               ["LEARNING_RATE must be a positive number", "-0.01",
                                "default is 0.001"]),
    "LEARNING_RATE NaN": (dict(learning_rate=float("nan")),
                          ["LEARNING_RATE must be a positive number"]),
    "WARMUP_EPOCHS negative": (dict(warmup_epochs=-1), ["WARMUP_EPOCHS cannot be negative"]),
    "ITERATIONS 0": (dict(iterations=0), ["ITERATIONS must be at least 1"]),
    "SAMPLES_PER_CLASS 0": (dict(samples_per_class=0), ["SAMPLES_PER_CLASS must be at least 1"]),
}


@pytest.mark.parametrize("case", SCHEDULES)
def test_bad_schedule(tmp_path, case):
    schedule, words = SCHEDULES[case]
    p = make_scene(tmp_path)
    expect_error(tmp_path, lambda: train(p, **schedule), *words)


# ------------------------------------------------------------------------- devices

@NO_CUDA
def test_cuda_without_gpu(tmp_path, model_copy):
    p = make_scene(tmp_path)
    words = ["DEVICE:", "PyTorch sees no CUDA GPU", "DEVICE=cpu"]
    expect_error(tmp_path, lambda: train(p, device="cuda"), *words)
    expect_error(tmp_path, lambda: apply(tmp_path, p.cube, model_copy, device="cuda"), *words)


# ------------------------------------------------------------------------- outputs

@pytest.mark.parametrize("output,source", [
    ("OUTPUT", "cube"), ("OUTPUT", "labels"), ("OUTPUT_CONFIDENCE", "confidence"),
    ("OUTPUT_MODEL", "cube"), ("OUTPUT_MODEL", "mask"),
])
def test_output_equal_to_an_input(tmp_path, output, source):
    p = make_scene(tmp_path, mask=np.ones((ROWS, COLS)))
    target = getattr(p, source)
    if output == "OUTPUT":
        p.out = target
    elif output == "OUTPUT_CONFIDENCE":
        p.out_conf = target
    else:
        p.model = target
    msg = expect_error(tmp_path, lambda: train(p), f"{output}:", target, "is also an input")
    assert "choose another" in msg.lower()


def test_outputs_must_differ(tmp_path):
    p = make_scene(tmp_path)
    p.out_conf = p.out
    expect_error(tmp_path, lambda: train(p), "OUTPUT, OUTPUT_CONFIDENCE", "must be different files")


def test_apply_output_equal_to_an_input(tmp_path, model_copy):
    p = make_scene(tmp_path)
    run = noiserobust.apply_model
    expect_error(tmp_path, lambda: run(p.cube, model_copy, p.cube, p.out_conf, "cpu"),
                 "OUTPUT:", "is also an input")
    expect_error(tmp_path, lambda: run(p.cube, model_copy, p.out, model_copy, "cpu"),
                 "OUTPUT_CONFIDENCE:", "is also an input")


def test_output_model_in_missing_folder(tmp_path):
    p = make_scene(tmp_path)
    missing = tmp_path / "no" / "such"
    p.model = str(missing / "model.pt")
    expect_error(tmp_path, lambda: train(p), "OUTPUT_MODEL:", str(missing), "does not exist")
    assert not (tmp_path / "no").exists()


def test_output_model_in_missing_folder_says_how_to_fix(tmp_path):
    p = make_scene(tmp_path)
    p.model = str(tmp_path / "no" / "model.pt")
    expect_error(tmp_path, lambda: train(p), "OUTPUT_MODEL:", "Create it first")


@pytest.mark.parametrize("sidecar", ["LABELS legend .aux.xml", "ENVI INPUT .hdr"])
def test_output_model_onto_an_input_sidecar(tmp_path, sidecar):
    p = make_scene(tmp_path)
    if sidecar == "ENVI INPUT .hdr":
        img = write_envi(str(tmp_path / "scene.img"), make_cube(BANDS, ROWS, COLS), WL)
        p.inputs = noiserobust.Inputs(img, p.labels, p.confidence)
        p.model = str(tmp_path / "scene.hdr")
    else:
        p.model = p.labels + ".aux.xml"
    expect_error(tmp_path, lambda: train(p), "OUTPUT_MODEL:", "must end in .pt")


# -------------------------------------------------------------------- model files


NOT_OURS = ["text file", "other dict", "plain state_dict", "other format", "truncated model"]


@pytest.mark.parametrize("kind", NOT_OURS + ["missing"])
def test_model_not_ours(tmp_path, trained, kind):
    p = make_scene(tmp_path)
    model = not_our_model(tmp_path, kind, trained)
    words = (["MODEL:", "does not exist", model] if kind == "missing" else
             ["MODEL:", model, "is not a special_qgis stage II model",
              "OUTPUT_MODEL file written by", "special:noiserobust"])
    expect_error(tmp_path, lambda: apply(tmp_path, p.cube, model), *words)


def test_model_of_another_version(tmp_path, trained):
    p = make_scene(tmp_path)
    model = old_version(trained, tmp_path)
    expect_error(tmp_path, lambda: apply(tmp_path, p.cube, model), "MODEL:",
                 "written by a different version of special_qgis",
                 f"model format {MODEL_VERSION + 1}", f"this version reads {MODEL_VERSION}",
                 "Train the model again with special:noiserobust")


def test_saved_model_round_trips(trained):
    """The file the error tests start from is a real model (so they test what they say)."""
    model = StageIIModel.load(trained)
    assert model.bands == BANDS and model.class_names == NAMES
    np.testing.assert_allclose(model.wavelengths_nm, WL)


# ---------------------------------------------------------- applying to another scene

def test_apply_to_other_band_count(tmp_path, model_copy):
    scene = write_gtiff(str(tmp_path / "scene.tif"), make_cube(12, 16, 16),
                        np.linspace(450, 950, 12))
    expect_error(tmp_path, lambda: apply(tmp_path, scene, model_copy), "INPUT:", scene,
                 "has 12 bands", f"trained on {BANDS} bands", "same band set")


@pytest.mark.parametrize("fmt", ["GeoTIFF", "ENVI"])
def test_apply_to_other_wavelengths(tmp_path, model_copy, fmt):
    wl = WL.copy()
    wl[3] += 3.0  # band 4: 3 nm off, beyond the 1 nm tolerance
    cube = make_cube(BANDS, 16, 16)
    if fmt == "GeoTIFF":
        scene = write_gtiff(str(tmp_path / "scene.tif"), cube, wl)
    else:
        scene = write_envi(str(tmp_path / "scene.img"), cube, wl)
    expect_error(tmp_path, lambda: apply(tmp_path, scene, model_copy), "INPUT:",
                 f"band 4 of '{scene}' is at {wl[3]:.1f} nm",
                 f"model's band 4 is at {WL[3]:.1f} nm", "same band set")


def test_apply_within_wavelength_tolerance(tmp_path, model_copy):
    scene = write_gtiff(str(tmp_path / "scene.tif"), make_cube(BANDS, 16, 16), WL + 0.5)
    result = apply(tmp_path, scene, model_copy)
    assert result.warnings == []
    assert os.path.exists(tmp_path / "applied.tif")


def test_apply_without_wavelengths_warns(tmp_path, model_copy):
    scene = write_gtiff(str(tmp_path / "scene.tif"), make_cube(BANDS, 16, 16))
    before = snapshot(tmp_path)
    result = apply(tmp_path, scene, model_copy)
    assert len(result.warnings) == 1
    assert "wavelengths" in result.warnings[0] and "only the band count" in result.warnings[0]
    assert result.class_names == NAMES
    with rasterio.open(tmp_path / "applied.tif") as src:
        assert src.shape == (16, 16) and src.read(1).min() >= 1
    after = snapshot(tmp_path)
    assert {k: after[k] for k in before} == before


# ------------------------------------------------------------------- cancellation

def cancel_when(predicate):
    """A Progress whose cancel check turns True once ``predicate(texts, checks)`` does;
    ``texts`` are the progress texts so far, ``checks`` the number of checks."""
    texts, checks = [], [0]

    def cancelled():
        checks[0] += 1
        return predicate(texts, checks[0])

    return Progress(lambda fraction, text: texts.append(text), cancelled), texts


def test_cancel_during_training(tmp_path):
    p = make_scene(tmp_path)
    progress, texts = cancel_when(lambda texts, checks: any("iteration 2/3" in t for t in texts))
    expect_error(tmp_path, lambda: train(p, progress, epochs=2, warmup_epochs=1, iterations=3),
                 "Cancelled", error=Cancelled)
    assert any("iteration 2/3" in t for t in texts)  # it was cancelled while training
    assert not any("predicting" in t for t in texts)


def test_cancel_during_prediction_keeps_previous_outputs(tmp_path):
    """Cancelled while the temporary outputs exist: they go, the previous outputs stay."""
    p = make_scene(tmp_path)
    write_gtiff(p.out, np.ones((1, ROWS, COLS), np.uint8))
    write_gtiff(p.out_conf, np.zeros((1, ROWS, COLS), np.float32))
    with open(p.model, "wb") as fh:
        fh.write(b"previous model")
    with open(p.out + ".aux.xml", "w") as fh:
        fh.write("<PAMDataset/>\n")
    progress, texts = cancel_when(lambda texts, _: any("predicting" in t for t in texts))
    expect_error(tmp_path, lambda: train(p, progress, predict_tile=16), "Cancelled",
                 error=Cancelled)
    assert any("predicting tile 1/4" in t for t in texts)


def test_failed_run_keeps_previous_outputs(tmp_path):
    p = make_scene(tmp_path)
    train(p)
    expect_error(tmp_path, lambda: train(p, learning_rate=-1.0), "LEARNING_RATE")
    expect_error(tmp_path, lambda: train(p, device="tpu"), "DEVICE:")


def test_failure_writing_the_model_keeps_previous_outputs(tmp_path, monkeypatch):
    """OUTPUT, OUTPUT_CONFIDENCE and OUTPUT_MODEL are replaced all together or not at all."""
    p = make_scene(tmp_path)
    train(p)

    def broken_save(self, path):
        with open(path, "wb") as fh:
            fh.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(StageIIModel, "save", broken_save)
    expect_error(tmp_path, lambda: train(p, seed=1), "disk full", error=OSError)


