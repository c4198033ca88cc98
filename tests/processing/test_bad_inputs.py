"""Bad input gets a clear error, and nothing is lost: through Processing (what users
see) and through core (what scripts see). Each case checks the message, that no output
was left behind and that the input is byte-for-byte unchanged."""

import os

import pytest

from special_qgis.core import pseudo_rgb
from special_qgis.core.errors import UserInputError

from rasters import file_digest, make_cube, write_envi, write_gtiff

WL5 = [450.0, 550.0, 650.0, 750.0, 850.0]


def _run(params):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as err:
        processing.run("special:pseudorgb", params)
    return str(err.value)


def _inputs_unchanged(paths, before):
    assert [file_digest(p) for p in paths] == before


@pytest.fixture
def cube_tif(tmp_path):
    return write_gtiff(str(tmp_path / "cube.tif"), make_cube(bands=5, dtype="int16"), WL5)


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
    _inputs_unchanged([src], before)


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
    _inputs_unchanged([cube_tif], before)


def test_output_equal_to_envi_input_refused(tmp_path):
    src = write_envi(str(tmp_path / "c.img"), make_cube(bands=5, dtype="int16"), WL5)
    before = [file_digest(src), file_digest(str(tmp_path / "c.hdr"))]
    with pytest.raises(UserInputError, match="is also an input"):
        pseudo_rgb.write_pseudo_rgb(src, src)
    _inputs_unchanged([src, str(tmp_path / "c.hdr")], before)


def test_not_a_raster_core(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("this is not a raster\n")
    with pytest.raises(UserInputError, match="is not a raster that GDAL can read"):
        pseudo_rgb.write_pseudo_rgb(str(path), str(tmp_path / "o.tif"))
    assert not (tmp_path / "o.tif").exists()
    assert path.read_text() == "this is not a raster\n"


def test_not_a_raster_processing(provider, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    msg = _run({"INPUT": str(path), "OUTPUT": str(tmp_path / "o.tif")})
    assert "INPUT" in msg
    assert not (tmp_path / "o.tif").exists()


def test_missing_file_core(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        pseudo_rgb.write_pseudo_rgb(str(tmp_path / "nope.tif"), str(tmp_path / "o.tif"))


def test_non_tif_output_refused(cube_tif, tmp_path):
    with pytest.raises(UserInputError, match="must end in .tif"):
        pseudo_rgb.write_pseudo_rgb(cube_tif, str(tmp_path / "o.img"))


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    """An unexpected error after the output was opened: no partial file remains."""
    src = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=5, rows=50), WL5)

    calls = {"n": 0}
    real = pseudo_rgb.apply_weights

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(pseudo_rgb, "apply_weights", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        pseudo_rgb.write_pseudo_rgb(src, str(tmp_path / "o.tif"), block_bytes=5 * 23 * 8 * 10)
    assert sorted(os.listdir(tmp_path)) == ["c.tif"]


def test_existing_output_survives_a_failed_run(tmp_path):
    """A failed re-run must not destroy the previous good output."""
    src = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=5), WL5)
    out = str(tmp_path / "o.tif")
    pseudo_rgb.write_pseudo_rgb(src, out)
    before = file_digest(out)
    with pytest.raises(UserInputError):
        pseudo_rgb.write_pseudo_rgb(src, out, targets="-1")
    assert file_digest(out) == before
