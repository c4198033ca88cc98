"""special:pseudorgb through Processing and the command line: exact values, georeferencing,
nodata, custom targets, qgis_process. The core functions behind it:
tests/core/test_pseudorgb.py."""

import json

import numpy as np
import pytest
import rasterio
from pseudorgb_cases import WL, assert_same_grid

from rasters import expected_pseudo_rgb, make_cube, write_envi, write_gtiff

TARGETS = [655.0, 553.0, 451.0]


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
    got = assert_same_grid(out, cube.shape[2], cube.shape[1])
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
    got = assert_same_grid(out, cube.shape[2], cube.shape[1])
    invalid = np.zeros(cube.shape[1:], bool)
    invalid[0, 0] = invalid[3, 4] = invalid[6, 7] = True
    assert np.isnan(got[:, invalid]).all()
    expected = expected_pseudo_rgb(cube, WL, TARGETS)
    np.testing.assert_allclose(got[:, ~invalid], expected[:, ~invalid], rtol=1e-6)


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
    got = assert_same_grid(out, cube.shape[2], cube.shape[1])
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
