"""Shared by the stage II error tests (tests/core/test_noiserobust_errors.py, through core;
tests/processing/test_noiserobust_errors_processing.py, through Processing): small scenes,
a quick training run, the check that an error left the folder exactly as it was, and the
misaligned rasters and foreign model files the errors are about.

``trained`` and ``model_copy`` are fixtures: a test module uses them by binding them to
module-level names (``trained = noiserobust_cases.trained``)."""

import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import Affine

from special_qgis.core import noiserobust
from special_qgis.core.classes import write_class_metadata
from special_qgis.core.errors import UserInputError
from special_qgis.core.hsi_net import MODEL_VERSION

from rasters import CRS_UTM, TRANSFORM, file_digest, make_cube, write_gtiff

BANDS, ROWS, COLS = 10, 32, 32
WL = np.linspace(450.0, 950.0, BANDS)
NAMES = ["water", "trees", "roofs"]
# A schedule that trains in well under a second on a 32 × 32 scene.
QUICK = dict(epochs=1, warmup_epochs=1, iterations=1, samples_per_class=50)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


# ------------------------------------------------------------------------------ scenes

def write_band(path, values, dtype=None, crs=CRS_UTM, transform=TRANSFORM, nodata=None):
    """A one-band GeoTIFF on the test grid (or on ``crs``/``transform`` when given)."""
    values = np.asarray(values)
    dtype = dtype or values.dtype.name
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1],
                       height=values.shape[0], count=1, dtype=dtype, crs=crs,
                       transform=transform, nodata=nodata) as dst:
        dst.write(values.astype(dtype)[None])
    return str(path)


def stripes(rows=ROWS, cols=COLS) -> np.ndarray:
    """Classes 1, 2, 3 in vertical stripes; row 0 is unlabelled (0)."""
    labels = np.zeros((rows, cols), np.uint8)
    labels[:, : cols // 3] = 1
    labels[:, cols // 3: 2 * cols // 3] = 2
    labels[:, 2 * cols // 3:] = 3
    labels[0] = 0
    return labels


def make_scene(folder, labels=None, confidence=None, mask=None, label_dtype="uint8",
               names=NAMES, which=None, **moved) -> SimpleNamespace:
    """cube.tif (10 bands, wavelengths in band metadata), labels.tif (with a legend),
    confidence.tif and optionally mask.tif, all on the test grid, except that the raster
    named by ``which`` ("labels", "confidence" or "mask") gets ``moved``'s crs/transform."""
    folder = str(folder)
    labels = stripes() if labels is None else labels
    confidence = (np.full(labels.shape, 0.8, np.float32) if confidence is None
                  else confidence.astype(np.float32))

    def grid(name):
        return moved if name == which else {}

    p = SimpleNamespace(folder=folder, mask=None)
    p.cube = write_gtiff(os.path.join(folder, "cube.tif"), make_cube(BANDS, ROWS, COLS), WL)
    p.labels = write_band(os.path.join(folder, "labels.tif"), labels, label_dtype,
                          **grid("labels"))
    if names:
        write_class_metadata(p.labels, names)
    p.confidence = write_band(os.path.join(folder, "confidence.tif"), confidence,
                              **grid("confidence"))
    if mask is not None:
        p.mask = write_band(os.path.join(folder, "mask.tif"), mask.astype(np.uint8),
                            **grid("mask"))
    p.inputs = noiserobust.Inputs(p.cube, p.labels, p.confidence, p.mask)
    p.out = os.path.join(folder, "classes.tif")
    p.out_conf = os.path.join(folder, "classes_confidence.tif")
    p.model = os.path.join(folder, "model.pt")
    return p


def train(p, progress=None, device="cpu", output_model="default", **schedule):
    model = p.model if output_model == "default" else output_model
    return noiserobust.run(p.inputs, p.out, p.out_conf, model,
                           noiserobust.Schedule(**{**QUICK, **schedule}), device,
                           progress=progress)


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its SHA-256: compares inputs, outputs and temps."""
    out = {}
    for root, _, files in os.walk(str(folder)):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, str(folder))] = file_digest(path)
    return out


def expect_error(folder, call, *words, error=UserInputError) -> str:
    """``call()`` raises ``error`` whose message has every one of ``words``; the folder
    is exactly as before (no output, no temp, inputs unchanged)."""
    before = snapshot(folder)
    with pytest.raises(error) as err:
        call()
    msg = str(err.value)
    for word in words:
        assert word in msg, f"{word!r} not in {msg!r}"
    assert snapshot(folder) == before
    assert not any(".partial-" in name for name in os.listdir(str(folder)))
    return msg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real model file from a quick run (10 bands with wavelengths, 3 classes)."""
    folder = tmp_path_factory.mktemp("trained")
    p = make_scene(folder)
    train(p)
    return p.model


@pytest.fixture
def model_copy(trained, tmp_path):
    """The trained model copied into the test's folder, so snapshots cover it."""
    return shutil.copy(trained, str(tmp_path / "model.pt"))


# ------------------------------------------------------------------------ alignment

MISALIGNED = {
    # which raster, how it is moved, what the message must also say
    "LABELS of another size": ("labels", {}, "30 × 32 pixels"),
    "CONFIDENCE shifted": ("confidence", {"transform": TRANSFORM * Affine.translation(1, 0)},
                           "(512347.500, 4123456.000)"),
    "MASK in another CRS": ("mask", {"crs": CRS.from_epsg(32634)}, "EPSG:32634"),
}


def misaligned_scene(folder, case):
    which, grid, _ = MISALIGNED[case]
    param = which.upper()
    labels, mask = stripes(), None
    if case == "LABELS of another size":
        labels = labels[:, :30]
        return param, make_scene(folder, labels=labels,
                                 confidence=np.full((ROWS, COLS), 0.8, np.float32))
    if which == "mask":
        mask = np.ones((ROWS, COLS))
    return param, make_scene(folder, labels=labels, mask=mask, which=which, **grid)


# -------------------------------------------------------------------- model files

def not_our_model(folder, kind, trained=None) -> str:
    path = os.path.join(str(folder), "other.pt")
    if kind == "truncated model":  # e.g. an interrupted copy of a real model file
        with open(trained, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read()[: os.path.getsize(trained) // 2])
    elif kind == "text file":
        with open(path, "w") as fh:
            fh.write("this is not a model\n")
    elif kind == "other dict":
        torch.save({"weights": torch.zeros(3), "epoch": 7}, path)
    elif kind == "plain state_dict":
        torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    elif kind == "other format":
        torch.save({"format": "some other tool", "version": MODEL_VERSION}, path)
    elif kind == "missing":
        path = os.path.join(str(folder), "nowhere.pt")
    return path


def old_version(model, folder) -> str:
    state = torch.load(model, map_location="cpu", weights_only=True)
    state["version"] = MODEL_VERSION + 1
    path = os.path.join(str(folder), "old.pt")
    torch.save(state, path)
    return path
