"""Shared by the special:classify tests (tests/core/test_classify.py, core.pipeline;
tests/processing/test_classify_processing.py, the algorithm): a generated 20-band scene with
a nodata hole, a random-weight CLIP's arguments, the output paths and their grid check.

``scene`` is a fixture: a test module uses it by binding it to a module-level name
(``scene = classify_cases.scene``)."""

import os

import numpy as np
import pytest
import rasterio

from special_qgis.core import noiserobust

from rasters import CRS_UTM, TRANSFORM, write_gtiff, write_labelled_scene

NAMES = "water; trees, forest; roofs"
FAST = noiserobust.Schedule(epochs=2, warmup_epochs=1, iterations=2, samples_per_class=100)


@pytest.fixture
def scene(tmp_path):
    """A 20-band GeoTIFF with wavelengths and a nodata hole (NaN in every band)."""
    made = write_labelled_scene(str(tmp_path), rows=40, cols=48, bands=20)
    with rasterio.open(made["cube"]) as ds:
        cube = ds.read()
    cube[:, 3:7, 30:41] = np.nan
    path = write_gtiff(str(tmp_path / "scene.tif"), cube, np.linspace(450, 2400, 20))
    return path


def clip_args(tiny_clip):
    return dict(model_name=tiny_clip.name, pretrained=tiny_clip.checkpoint, window=16,
                stride=8, device="cpu")


def output_paths(folder):
    return {k: os.path.join(folder, f"{k}.tif") for k in ("classes", "conf", "pseudo", "rgb")}


def listed(folder):
    return sorted(os.listdir(folder))


def check_grid(path, count=1):
    with rasterio.open(path) as ds:
        assert ds.crs == CRS_UTM
        assert ds.transform.almost_equals(TRANSFORM)
        assert (ds.height, ds.width, ds.count) == (40, 48, count)
        assert ds.nodata is not None
        return ds.read()
