"""special:pseudorgb and the core functions behind it: exact values, georeferencing,
nodata, windowed processing, cancellation, and the command line."""

import json
import os

import numpy as np
import pytest
import rasterio

from special_qgis.core import pseudo_rgb
from special_qgis.core.errors import Cancelled
from special_qgis.core.progress import Progress

from rasters import (
    CRS_UTM,
    TRANSFORM,
    expected_pseudo_rgb,
    make_cube,
    write_envi,
    write_gtiff,
)

WL = np.array([402.0, 431.5, 460.0, 489.0, 520.0, 548.5, 580.0, 610.0, 640.0, 671.0, 700.0,
               730.0])
TARGETS = [655.0, 553.0, 451.0]


def _assert_same_grid(path, width, height):
    with rasterio.open(path) as out:
        assert out.crs == CRS_UTM
        assert out.transform.almost_equals(TRANSFORM)
        assert (out.width, out.height) == (width, height)
        assert out.count == 3 and out.dtypes == ("float32",) * 3
        assert out.nodata is not None and np.isnan(out.nodata)
        return out.read()


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


@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32"])
@pytest.mark.parametrize("fmt", ["envi-bsq", "envi-bil", "gtiff"])
def test_processing_exact_values_and_grid(provider, tmp_path, dtype, fmt):
    import processing

    cube = make_cube(dtype=dtype, seed=1)
    if fmt == "gtiff":
        src = write_gtiff(str(tmp_path / "in.tif"), cube, WL)
    else:
        src = write_envi(str(tmp_path / "in.img"), cube, WL / 1000.0, units="Micrometers",
                         interleave=fmt.split("-")[1])
    out = str(tmp_path / "rgb.tif")
    result = processing.run("special:pseudorgb", {"INPUT": src, "OUTPUT": out})
    assert result["OUTPUT"] == out
    got = _assert_same_grid(out, cube.shape[2], cube.shape[1])
    np.testing.assert_allclose(got, expected_pseudo_rgb(cube, WL, TARGETS), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("dtype,nodata", [("int16", -9999), ("uint16", 0), ("float32", -1.0)])
def test_nodata_in_any_band_is_nodata(provider, tmp_path, dtype, nodata):
    import processing

    cube = make_cube(dtype=dtype, seed=2)
    cube[cube == nodata] = 1  # no accidental nodata
    cube[:, 0, 0] = nodata           # all bands
    cube[11, 3, 4] = nodata          # one band that no target uses (730 nm)
    cube[5, 6, 7] = nodata           # one band that a target uses
    src = write_envi(str(tmp_path / "in.img"), cube, WL, nodata=nodata)
    out = str(tmp_path / "rgb.tif")
    processing.run("special:pseudorgb", {"INPUT": src, "OUTPUT": out})
    got = _assert_same_grid(out, cube.shape[2], cube.shape[1])
    invalid = np.zeros(cube.shape[1:], bool)
    invalid[0, 0] = invalid[3, 4] = invalid[6, 7] = True
    assert np.isnan(got[:, invalid]).all()
    expected = expected_pseudo_rgb(cube, WL, TARGETS)
    np.testing.assert_allclose(got[:, ~invalid], expected[:, ~invalid], rtol=1e-6)


def test_nan_in_float_input_is_nodata(tmp_path):
    cube = make_cube(seed=4)
    cube[2, 5, 5] = np.nan
    src = write_gtiff(str(tmp_path / "in.tif"), cube, WL)
    out = pseudo_rgb.write_pseudo_rgb(src, str(tmp_path / "o.tif"))
    got = _assert_same_grid(out, cube.shape[2], cube.shape[1])
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


def test_custom_targets_and_override(provider, tmp_path):
    import processing

    cube = make_cube(bands=5, seed=7)
    src = write_gtiff(str(tmp_path / "in.tif"), cube)  # no metadata at all
    out = str(tmp_path / "o.tif")
    processing.run("special:pseudorgb", {"INPUT": src, "WAVELENGTHS": "0.8, 0.9, 1.0, 1.1, 1.2",
                                         "TARGET_WAVELENGTHS": "850,1000,1500", "OUTPUT": out})
    with rasterio.open(out) as ds:
        got = ds.read()
        assert ds.descriptions == ("850 nm", "1000 nm", "1500 nm")
    np.testing.assert_allclose(got, expected_pseudo_rgb(cube, [800, 900, 1000, 1100, 1200],
                                                        [850, 1000, 1500]), rtol=1e-6)


def test_qgis_process_lists_provider(qgis_process):
    out = qgis_process("list")
    assert out.returncode == 0, out.stderr
    assert "special:pseudorgb" in out.stdout


def test_qgis_process_run_and_json(qgis_process, tmp_path):
    cube = make_cube(dtype="int16", seed=8)
    src = write_envi(str(tmp_path / "in.img"), cube, WL)
    out = str(tmp_path / "rgb.tif")
    res = qgis_process("run", "special:pseudorgb", "--", f"INPUT={src}", f"OUTPUT={out}")
    assert res.returncode == 0, res.stdout + res.stderr
    got = _assert_same_grid(out, cube.shape[2], cube.shape[1])
    np.testing.assert_allclose(got, expected_pseudo_rgb(cube, WL, TARGETS), rtol=1e-6)

    out2 = str(tmp_path / "rgb2.tif")
    res = qgis_process("--json", "run", "special:pseudorgb", "--", f"INPUT={src}",
                        f"OUTPUT={out2}", "TARGET_WAVELENGTHS=500")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    assert doc["results"]["OUTPUT"] == out2
    with rasterio.open(out2) as ds:
        assert ds.count == 1


def test_qgis_process_error_is_clear(qgis_process, tmp_path):
    src = write_gtiff(str(tmp_path / "in.tif"), make_cube())
    res = qgis_process("run", "special:pseudorgb", "--", f"INPUT={src}",
                        f"OUTPUT={tmp_path / 'o.tif'}")
    assert res.returncode != 0
    assert "no wavelength metadata" in res.stdout + res.stderr
    assert not (tmp_path / "o.tif").exists()
