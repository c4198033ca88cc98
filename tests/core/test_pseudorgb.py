"""The core functions behind special:pseudorgb (core.pseudo_rgb): exact values against
np.interp, nodata, windowed processing and cancellation. Through Processing and the command
line: tests/processing/test_pseudorgb_processing.py."""

import os

import numpy as np
import pytest
import rasterio
from pseudorgb_cases import WL, assert_same_grid

from special_qgis.core import pseudo_rgb
from special_qgis.core.errors import Cancelled
from special_qgis.core.progress import Progress

from rasters import expected_pseudo_rgb, make_cube, write_gtiff


def test_synthesize_matches_np_interp():
    cube = make_cube(dtype="float32", seed=3)
    targets = [300.0, 402.0, 451.0, 553.0, 655.0, 730.0, 900.0]  # edges, exact bands, between
    got = pseudo_rgb.synthesize(cube, WL, targets)
    assert got.dtype == np.float32 and got.shape == (7,) + cube.shape[1:]
    np.testing.assert_allclose(got, expected_pseudo_rgb(cube, WL, targets), rtol=1e-6)
    np.testing.assert_array_equal(got[0], cube[0])   # below the range: first band
    np.testing.assert_array_equal(got[-1], cube[-1])  # above: last band
    np.testing.assert_array_equal(got[1], cube[0])   # exactly on a band


def test_interpolation_weight_by_hand():
    # 553 nm lies between 548.5 (band 6) and 580 (band 7): weight (553-548.5)/31.5 on band 7.
    weights = pseudo_rgb.interpolation_weights(WL, [553.0])
    assert np.flatnonzero(weights[0]).tolist() == [5, 6]
    assert weights[0, 6] == pytest.approx(4.5 / 31.5)
    assert weights[0, 5] == pytest.approx(1 - 4.5 / 31.5)


def test_nan_in_float_input_is_nodata(tmp_path):
    cube = make_cube(seed=4)
    cube[2, 5, 5] = np.nan
    src = write_gtiff(str(tmp_path / "in.tif"), cube, WL)
    out = pseudo_rgb.write_pseudo_rgb(src, str(tmp_path / "o.tif"))
    got = assert_same_grid(out, cube.shape[2], cube.shape[1])
    assert np.isnan(got[:, 5, 5]).all() and np.isfinite(got[:, 5, 6]).all()


def test_windowed_equals_whole(tmp_path):
    """A tiny block budget forces many row windows; the result must not change."""
    cube = make_cube(rows=61, cols=37, seed=5)
    src = write_gtiff(str(tmp_path / "in.tif"), cube, WL, nodata=-1.0)
    steps = []
    progress = Progress(lambda f, t: steps.append(f))
    small = pseudo_rgb.write_pseudo_rgb(src, str(tmp_path / "small.tif"), progress=progress,
                                        block_bytes=37 * 12 * 4 * 5)
    whole = pseudo_rgb.write_pseudo_rgb(src, str(tmp_path / "whole.tif"))
    assert len(steps) >= 10 and steps == sorted(steps) and steps[-1] == 1.0
    with rasterio.open(small) as a, rasterio.open(whole) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_cancel_leaves_no_file(tmp_path):
    cube = make_cube(rows=40, seed=6)
    src = write_gtiff(str(tmp_path / "in.tif"), cube, WL)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2  # cancel at the third block

    with pytest.raises(Cancelled):
        pseudo_rgb.write_pseudo_rgb(src, str(tmp_path / "o.tif"),
                                    progress=Progress(None, cancelled), block_bytes=12 * 23 * 8 * 4)
    assert sorted(os.listdir(tmp_path)) == ["in.tif"]
