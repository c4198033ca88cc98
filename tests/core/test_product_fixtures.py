"""The miniature products of tests/products.py agree with themselves: what each generator
returns is what plain rasterio / h5py / xml reads of its files give."""

import os
import re
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import products
import pytest
import rasterio
from rasterio.transform import Affine


def _only_files(folder, expected):
    found = {os.path.join(root, name) for root, _, names in os.walk(folder) for name in names}
    assert found == {os.path.abspath(f) for f in expected}


def _hdr_list(text, key):
    body = re.search(re.escape(key) + r" = \{([^}]*)\}", text).group(1)
    return np.array([float(v) for v in body.replace("\n", " ").split(",")])


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.crs, ds.transform, ds.nodata, ds.count


# ----------------------------------------------------------------------------- EnMAP


@pytest.mark.parametrize("order,fmt", [("detector", "GTiff"), ("wavelength", "GTiff"),
                                       ("detector", "BSQ"), ("wavelength", "BIL")])
def test_enmap(tmp_path, order, fmt):
    p = products.write_enmap_l2a(tmp_path, order=order, fmt=fmt)
    _only_files(tmp_path, p.files)
    suffix = "TIF" if fmt == "GTiff" else fmt
    assert os.path.basename(p.path).endswith("-SPECTRAL_IMAGE." + suffix)
    dn, crs, transform, nodata, count = _read(p.path)
    assert (crs, transform, nodata, dn.shape[1:]) == (p.crs, p.transform, -32768, p.shape)
    assert dn.dtype == np.int16

    root = ET.parse(p.xml).getroot()
    bands = root.findall("specific/bandCharacterisation/bandID")
    assert count == len(bands) == p.wavelengths.size
    assert [int(b.get("number")) for b in bands] == list(range(1, count + 1))

    def values(path):
        return np.array([float(e.text) for e in root.findall(path)])

    np.testing.assert_array_equal(values("specific/bandCharacterisation/bandID/"
                                         "wavelengthCenterOfBand"), p.wavelengths)
    np.testing.assert_array_equal(values("specific/bandCharacterisation/bandID/FWHMOfBand"),
                                  p.fwhm)
    gain = values("specific/bandCharacterisation/bandID/GainOfBand")
    offset = values("specific/bandCharacterisation/bandID/OffsetOfBand")
    assert len(set(gain)) == 2  # one band scaled differently
    expected = dn * gain[:, None, None] + offset[:, None, None]
    expected[dn == -32768] = np.nan
    np.testing.assert_array_equal(expected, p.cube)

    vnir = [int(v) for v in root.find("specific/vnirProductQuality/expectedChannelsList")
            .text.split(",")]
    swir = [int(v) for v in root.find("specific/swirProductQuality/expectedChannelsList")
            .text.split(",")]
    assert sorted(vnir + swir) == list(range(1, count + 1))
    assert (vnir, swir) == (p.vnir_bands, p.swir_bands)
    wl = p.wavelengths
    assert wl[np.array(swir) - 1].min() < wl[np.array(vnir) - 1].max()  # detector overlap
    if order == "detector":
        assert vnir == list(range(1, len(vnir) + 1))
        assert np.any(np.diff(wl) < 0)
    else:
        assert np.all(np.diff(wl) > 0)
        assert vnir != list(range(1, len(vnir) + 1))  # interleaved in the overlap

    mean = [e.text for e in root.findall("product/bandStatistics/bandID/mean")]
    std = [e.text for e in root.findall("product/bandStatistics/bandID/stdDeviation")]
    marked = np.array([(m, s) == ("-1000000", "0") for m, s in zip(mean, std, strict=True)])
    empty = np.all(dn == -32768, axis=(1, 2))
    assert marked.sum() >= 2
    np.testing.assert_array_equal(marked, empty)
    np.testing.assert_array_equal(p.bad, empty)
    assert np.all((wl[empty] >= 1343) & (wl[empty] <= 1400))
    border = np.all(dn == -32768, axis=0)
    assert border[0].all() and border[:, -1].all() and 0.5 < (~border).mean() < 0.95
    good = p.cube[~p.bad][:, ~border]
    assert np.isfinite(good).all() and 0.0 < good.min() and good.max() <= 0.6

    if fmt != "GTiff":
        text = open(p.hdr).read()
        assert p.hdr.endswith("-SPECTRAL_IMAGE.HDR")
        assert "data ignore value = -32768" in text and f"interleave = {fmt.lower()}" in text
        assert "data type = 2" in text and "byte order = 0" in text


# ----------------------------------------------------------------------------- DESIS


def test_desis(tmp_path):
    p = products.write_desis_l2a(tmp_path)
    _only_files(tmp_path, p.files)
    assert p.path.endswith("-V0210-SPECTRAL_IMAGE.tif")
    dn, crs, transform, nodata, count = _read(p.path)
    assert (crs, transform, nodata, count) == (p.crs, p.transform, -32768, p.wavelengths.size)
    text = open(p.hdr).read()
    assert "wavelength units = Nanometers" in text
    np.testing.assert_array_equal(_hdr_list(text, "wavelength"), p.wavelengths)
    np.testing.assert_array_equal(_hdr_list(text, "fwhm"), p.fwhm)
    gain, offset = _hdr_list(text, "data gain values"), _hdr_list(text, "data offset values")
    assert np.all(gain == 1e-4) and np.all(offset == 0)
    expected = dn * gain[:, None, None] + offset[:, None, None]
    expected[dn == -32768] = np.nan
    np.testing.assert_array_equal(expected, p.cube)
    assert np.all(np.diff(p.wavelengths) > 0) and not p.bad.any()
    assert 401 <= p.wavelengths[0] and p.wavelengths[-1] <= 999
    root = ET.parse(p.xml).getroot()
    assert root.tag == "hsi_doc" and [c.tag for c in root][2:4] == ["base", "specific"]
    centres = [float(e.text) for e in
               root.findall("specific/bandCharacterisation/band/wavelengthCenterOfBand")]
    np.testing.assert_array_equal(centres, p.wavelengths)


# ----------------------------------------------------------------------------- PRISMA


def test_prisma(tmp_path):
    p = products.write_prisma_l2d(tmp_path)
    _only_files(tmp_path, p.files)
    rows, cols = p.shape
    with h5py.File(p.path, "r") as f:
        fields = f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"]
        vnir, swir = fields["VNIR_Cube"][()], fields["SWIR_Cube"][()]
        lat = f["HDFEOS/SWATHS/PRS_L2D_HCO/Geolocation Fields/Latitude"][()]
        a = dict(f.attrs)
    assert vnir.dtype == swir.dtype == np.uint16
    assert vnir.shape == (rows, a["List_Cw_Vnir"].size, cols)
    assert swir.shape == (rows, a["List_Cw_Swir"].size, cols) and lat.shape == (rows, cols)
    assert a["Processing_Level"] == b"2D" and int(a["Epsg_Code"]) == 32632

    wl = np.concatenate([a["List_Cw_Vnir"], a["List_Cw_Swir"]]).astype(np.float64)
    flags = np.concatenate([a["List_Cw_Vnir_Flags"], a["List_Cw_Swir_Flags"]])
    np.testing.assert_array_equal(wl, p.wavelengths)
    np.testing.assert_array_equal(
        np.concatenate([a["List_Fwhm_Vnir"], a["List_Fwhm_Swir"]]).astype(np.float64), p.fwhm)
    np.testing.assert_array_equal((wl == 0) | (flags == 0), p.bad)
    for cw in (a["List_Cw_Vnir"], a["List_Cw_Swir"]):
        used = cw[cw != 0]
        assert np.all(np.diff(used) < 0) and cw[0] * cw[-1] == 0  # descending, 0 at an end
    assert vnir[:, a["List_Cw_Vnir"] == 0].max() == 0 and swir[:, a["List_Cw_Swir"] == 0].max() == 0

    def scaled(dn, det):
        lo, hi = float(a[f"L2Scale{det}Min"]), float(a[f"L2Scale{det}Max"])
        return lo + dn.transpose(1, 0, 2) * (hi - lo) / 65535.0

    expected = np.concatenate([scaled(vnir, "Vnir"), scaled(swir, "Swir")])
    nodata = np.all(np.concatenate([vnir, swir], axis=1) == 0, axis=1)
    assert nodata.any() and (~nodata).mean() > 0.5
    expected[:, nodata] = np.nan
    expected[wl == 0] = np.nan
    np.testing.assert_array_equal(expected, p.cube)
    x0 = float(a["Product_ULcorner_easting"]) - 15
    y0 = float(a["Product_ULcorner_northing"]) + 15
    assert p.transform == Affine(30.0, 0.0, x0, 0.0, -30.0, y0)
    assert float(a["Product_LRcorner_easting"]) == x0 + 15 + (cols - 1) * 30
    assert float(a["Product_LRcorner_northing"]) == y0 - 15 - (rows - 1) * 30


# ----------------------------------------------------------------------------- EMIT


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_emit(tmp_path):
    p = products.write_emit_l2a(tmp_path)
    _only_files(tmp_path, p.files)
    with h5py.File(p.path, "r") as f:
        refl = f["reflectance"]
        assert refl.dtype == np.float32 and float(refl.attrs["_FillValue"][0]) == -9999
        assert [d.label for d in refl.dims] == ["", "", ""] and all(len(d) for d in refl.dims)
        source = refl[()]
        wl = f["sensor_band_parameters/wavelengths"][()]
        good = f["sensor_band_parameters/good_wavelengths"][()]
        glt_x, glt_y = f["location/glt_x"][()], f["location/glt_y"][()]
        assert f["location/lat"].shape == source.shape[:2]
        gt = f.attrs["geotransform"]
        assert b"WGS 84" in f.attrs["spatial_ref"]
    np.testing.assert_array_equal(source, p.source)
    np.testing.assert_array_equal(wl.astype(np.float64), p.wavelengths)
    np.testing.assert_array_equal(good == 0, p.bad)
    assert 0 < p.bad.sum() < wl.size
    np.testing.assert_array_equal(glt_x, p.glt_x)
    assert glt_x.shape == p.shape and p.shape[0] > source.shape[0]
    assert glt_x[0, 0] == glt_x[-1, -1] == glt_x[0, -1] == glt_x[-1, 0] == 0
    assert p.transform == Affine.from_gdal(*gt) and p.crs.to_epsg() == 4326
    assert gt[2] == gt[4] == 0 and gt[5] == -gt[1]

    expected = np.full((wl.size,) + glt_x.shape, np.nan)
    seen = []
    for i in range(glt_x.shape[0]):
        for j in range(glt_x.shape[1]):
            if glt_x[i, j] == 0:
                assert glt_y[i, j] == 0
                continue
            seen.append((glt_y[i, j], glt_x[i, j]))
            spectrum = source[glt_y[i, j] - 1, glt_x[i, j] - 1, :]
            if not np.all(spectrum == -9999):
                expected[:, i, j] = spectrum
    np.testing.assert_array_equal(expected, p.cube)
    assert len(set(seen)) < len(seen)  # nearest-neighbour duplicates
    assert np.any(source == -9999)

    # readable as netCDF
    with rasterio.open(f"netcdf:{p.path}:reflectance") as ds:
        assert ds.nodata == -9999


# ----------------------------------------------------------------------------- AVIRIS


@pytest.mark.parametrize("flavour", ["classic", "ng", "3"])
def test_aviris(tmp_path, flavour):
    p = products.write_aviris(tmp_path, flavour)
    _only_files(tmp_path, p.files)
    assert p.hdr == p.path + ".hdr"
    data, crs, transform, nodata, count = _read(p.path)
    assert (crs, transform, nodata, count) == (p.crs, p.transform, -9999, p.wavelengths.size)
    expected = data.astype(np.float64)
    expected[data == -9999] = np.nan
    np.testing.assert_array_equal(expected, p.cube)
    text = open(p.hdr).read()
    assert "interleave = bil" in text and "data type = 4" in text
    wl = _hdr_list(text, "wavelength")
    np.testing.assert_array_equal(wl, p.wavelengths)
    np.testing.assert_array_equal(_hdr_list(text, "bbl") == 0, p.bad)
    assert 0 < p.bad.sum() < wl.size
    if flavour == "classic":
        assert np.sum(np.diff(wl) < 0) == 3  # four spectrometers, three joins
    else:
        assert np.all(np.diff(wl) > 0)
