"""Shared by the pseudo-RGB tests through core (tests/core/test_pseudorgb.py and
test_bad_inputs.py) and through Processing (tests/processing/test_pseudorgb_processing.py
and test_bad_inputs_processing.py).

``cube_tif`` is a fixture: a test module uses it by binding it to a module-level name
(``cube_tif = pseudorgb_cases.cube_tif``)."""

import numpy as np
import pytest
import rasterio

from rasters import CRS_UTM, TRANSFORM, file_digest, make_cube, write_gtiff

WL = np.array([402.0, 431.5, 460.0, 489.0, 520.0, 548.5, 580.0, 610.0, 640.0, 671.0, 700.0,
               730.0])
WL5 = [450.0, 550.0, 650.0, 750.0, 850.0]


def assert_same_grid(path, width, height):
    with rasterio.open(path) as out:
        assert out.crs == CRS_UTM
        assert out.transform.almost_equals(TRANSFORM)
        assert (out.width, out.height) == (width, height)
        assert out.count == 3 and out.dtypes == ("float32",) * 3
        assert out.nodata is not None and np.isnan(out.nodata)
        return out.read()


def inputs_unchanged(paths, before):
    assert [file_digest(p) for p in paths] == before


@pytest.fixture
def cube_tif(tmp_path):
    return write_gtiff(str(tmp_path / "cube.tif"), make_cube(bands=5, dtype="int16"), WL5)
