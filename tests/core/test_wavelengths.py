"""Reading and parsing band wavelengths."""

import numpy as np
import pytest

from special_qgis.core import wavelengths
from special_qgis.core.errors import UserInputError

from rasters import make_cube, write_envi, write_gtiff

WL_NM = np.linspace(400.0, 1000.0, 12)


@pytest.mark.parametrize("units,factor", [
    ("nm", 1.0), ("Nanometers", 1.0), ("nanometres", 1.0),
    ("um", 1000.0), ("µm", 1000.0), ("Micrometers", 1000.0), ("microns", 1000.0),
])
def test_units(units, factor):
    np.testing.assert_allclose(wavelengths.to_nm([0.5, 2.0], units), [0.5 * factor, 2.0 * factor])


def test_bare_numbers_below_100_are_micrometres():
    np.testing.assert_allclose(wavelengths.to_nm([0.45, 2.5, 450.0], None), [450, 2500, 450])
    np.testing.assert_allclose(wavelengths.to_nm([0.45, 700.0], "Unknown"), [450, 700])


def test_unknown_units_rejected():
    with pytest.raises(UserInputError, match="unknown wavelength units 'cm-1'"):
        wavelengths.to_nm([1000.0], "cm-1")


@pytest.mark.parametrize("interleave", ["bsq", "bil"])
@pytest.mark.parametrize("units,scale", [("Nanometers", 1.0), ("Micrometers", 1e-3),
                                         (None, 1e-3), ("Unknown", 1.0)])
def test_read_envi(tmp_path, interleave, units, scale):
    path = write_envi(str(tmp_path / "cube.img"), make_cube(dtype="int16"), WL_NM * scale,
                      units=units, interleave=interleave)
    np.testing.assert_allclose(wavelengths.read(path), WL_NM)


def test_read_gtiff_band_metadata(tmp_path):
    path = write_gtiff(str(tmp_path / "c.tif"), make_cube(), WL_NM / 1000.0, units="Micrometers")
    np.testing.assert_allclose(wavelengths.read(path), WL_NM)


def test_read_gtiff_imagery_domain(tmp_path):
    path = write_gtiff(str(tmp_path / "c.tif"), make_cube(), WL_NM / 1000.0, style="imagery")
    np.testing.assert_allclose(wavelengths.read(path), WL_NM, atol=1e-3)


def test_read_none(tmp_path):
    assert wavelengths.read(write_gtiff(str(tmp_path / "c.tif"), make_cube())) is None


def test_override_wins_over_metadata(tmp_path):
    path = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=3), [1, 2, 3], units="nm")
    from special_qgis.core import scene

    with scene.open_scene(path, "500, 600;700") as opened:
        np.testing.assert_allclose(opened.wavelengths, [500, 600, 700])


def test_no_wavelengths_says_how_to_give_them(tmp_path):
    from special_qgis.core import scene

    path = write_gtiff(str(tmp_path / "c.tif"), make_cube())
    with pytest.raises(UserInputError) as err, scene.open_scene(path, need_wavelengths=True):
        pass
    msg = str(err.value)
    assert "no wavelength metadata" in msg and "WAVELENGTHS" in msg and "wavelength units" in msg


@pytest.mark.parametrize("text,match", [
    ("400,500", "2 wavelengths given but the raster has 3 bands"),
    ("400,500,abc", "'abc' is not a number"),
    ("400,-500,500", "must be positive numbers, but band 2 has -500"),
    ("400,500,nan", "not a finite number"),
    ("", None),
])
def test_bad_override(text, match):
    if match is None:
        with pytest.raises(UserInputError, match="empty"):
            wavelengths.parse_number_list(text, "WAVELENGTHS")
        return
    with pytest.raises(UserInputError, match=match):
        wavelengths.validate(wavelengths.to_nm(
            wavelengths.parse_number_list(text, "WAVELENGTHS"), None), 3, "WAVELENGTHS")


def test_non_numeric_metadata(tmp_path):
    path = str(tmp_path / "c.tif")
    write_gtiff(path, make_cube(bands=3), ["450", "x550", "650"], units="nm")
    with pytest.raises(UserInputError, match="'x550' is not a number"):
        wavelengths.read(path)
