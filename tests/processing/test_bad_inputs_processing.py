"""Bad input to special:pseudorgb through Processing (what users see) gets a clear error,
and nothing is lost: each case checks the message, that no output was left behind and that
the input is byte-for-byte unchanged. Through core: tests/core/test_bad_inputs.py."""

import os

import pseudorgb_cases
import pytest
from pseudorgb_cases import WL5, inputs_unchanged

from rasters import file_digest, make_cube, write_gtiff

# The shared fixture, bound here so that pytest finds it.
cube_tif = pseudorgb_cases.cube_tif


def _run(params):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as err:
        processing.run("special:pseudorgb", params)
    return str(err.value)


CASES = {
    "no wavelengths": (dict(meta=False), {},
                       "no wavelength metadata, and WAVELENGTHS was not given"),
    "override count": (dict(), {"WAVELENGTHS": "400,500"},
                       "2 wavelengths given but the raster has 5 bands"),
    "non-numeric override": (dict(), {"WAVELENGTHS": "400,500,six,700,800"},
                             "'six' is not a number"),
    "non-positive override": (dict(), {"WAVELENGTHS": "400,500,0,700,800"},
                              "must be positive numbers, but band 3 has 0"),
    "non-positive metadata": (dict(wl=[450, 550, -540, 750, 850]), {},
                              "must be positive numbers, but band 3 has -540"),
    "NaN override": (dict(), {"WAVELENGTHS": "400,500,nan,700,800"}, "not a finite number"),
    "negative target": (dict(), {"TARGET_WAVELENGTHS": "655,-553,451"}, "-553 is not a positive"),
    "zero target": (dict(), {"TARGET_WAVELENGTHS": "0"}, "0 is not a positive"),
    "text target": (dict(), {"TARGET_WAVELENGTHS": "red,green,blue"}, "'red' is not a number"),
}


@pytest.mark.parametrize("case", CASES)
def test_parameter_errors(provider, tmp_path, case):
    setup, params, message = CASES[case]
    wl = setup.get("wl", WL5) if setup.get("meta", True) else None
    src = write_gtiff(str(tmp_path / "cube.tif"), make_cube(bands=5, dtype="int16"), wl)
    before = [file_digest(src)]
    out = tmp_path / "out.tif"
    msg = _run({"INPUT": src, "OUTPUT": str(out), **params})
    assert message in msg
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["cube.tif"]
    inputs_unchanged([src], before)


def test_single_band_raster(provider, tmp_path):
    src = write_gtiff(str(tmp_path / "one.tif"), make_cube(bands=1), [550.0])
    msg = _run({"INPUT": src, "OUTPUT": str(tmp_path / "o.tif")})
    assert "has 1 band" in msg and "at least 2 bands" in msg
    assert not (tmp_path / "o.tif").exists()


def test_output_folder_missing(provider, cube_tif, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "o.tif"
    msg = _run({"INPUT": cube_tif, "OUTPUT": str(out)})
    assert "does not exist" in msg and str(tmp_path / "no" / "such" / "dir") in msg
    assert not (tmp_path / "no").exists()


def test_output_equal_to_input_refused(provider, cube_tif):
    before = [file_digest(cube_tif)]
    msg = _run({"INPUT": cube_tif, "OUTPUT": cube_tif})
    assert "is also an input" in msg
    inputs_unchanged([cube_tif], before)


def test_not_a_raster_processing(provider, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    msg = _run({"INPUT": str(path), "OUTPUT": str(tmp_path / "o.tif")})
    assert "INPUT" in msg
    assert not (tmp_path / "o.tif").exists()
