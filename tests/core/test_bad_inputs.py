"""Bad input to core.pseudo_rgb (what scripts see) gets a clear error, and nothing is lost:
each case checks the message, that no output was left behind and that the input is
byte-for-byte unchanged. Through Processing: tests/processing/test_bad_inputs_processing.py."""

import os

import pseudorgb_cases
import pytest
from pseudorgb_cases import WL5, inputs_unchanged

from special_qgis.core import pseudo_rgb
from special_qgis.core.errors import UserInputError

from rasters import file_digest, make_cube, write_envi, write_gtiff

# The shared fixture, bound here so that pytest finds it.
cube_tif = pseudorgb_cases.cube_tif


def test_output_equal_to_envi_input_refused(tmp_path):
    src = write_envi(str(tmp_path / "c.img"), make_cube(bands=5, dtype="int16"), WL5)
    before = [file_digest(src), file_digest(str(tmp_path / "c.hdr"))]
    with pytest.raises(UserInputError, match="is also an input"):
        pseudo_rgb.write_pseudo_rgb(src, src)
    inputs_unchanged([src, str(tmp_path / "c.hdr")], before)


def test_not_a_raster_core(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("this is not a raster\n")
    with pytest.raises(UserInputError, match="is not a raster that GDAL can read"):
        pseudo_rgb.write_pseudo_rgb(str(path), str(tmp_path / "o.tif"))
    assert not (tmp_path / "o.tif").exists()
    assert path.read_text() == "this is not a raster\n"


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
