"""Real products as users download them (issue 14): any band order, bad bands, nodata over
the good bands only, BAD_BANDS, and the EnMAP, DESIS, PRISMA, EMIT and AVIRIS layouts read
directly and through special:importproduct.

The products are miniatures in each product's exact layout (tests/products.py, which says
which specification each follows); expected values are computed here with plain numpy
from the fixtures' known cubes, never by the code under test.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from products import (
    assert_grid,
    expected_rgb,
    snapshot,
    write_aviris,
    write_desis_l2a,
    write_emit_l2a,
    write_enmap_l2a,
    write_prisma_l2d,
)

from special_qgis.core import importproduct, noiserobust, pseudo_rgb, scene
from special_qgis.core.errors import UserInputError

from rasters import make_cube, write_envi, write_gtiff

WRITERS = {
    "enmap-detector": lambda d: write_enmap_l2a(d, order="detector"),
    "enmap-wavelength": lambda d: write_enmap_l2a(d, order="wavelength"),
    "enmap-bsq": lambda d: write_enmap_l2a(d, fmt="BSQ"),
    "enmap-bil": lambda d: write_enmap_l2a(d, fmt="BIL", order="wavelength"),
    "desis": write_desis_l2a,
    "prisma": write_prisma_l2d,
    "emit": write_emit_l2a,
    "aviris-classic": lambda d: write_aviris(d, flavour="classic"),
    "aviris-ng": lambda d: write_aviris(d, flavour="ng"),
    "aviris-3": lambda d: write_aviris(d, flavour="3"),
}


@pytest.fixture(params=list(WRITERS))
def product(request, tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    return WRITERS[request.param](str(folder))


# ------------------------------------------------------------------ reading each product

def test_scene_reads_the_product(product):
    """Band metadata, bad bands, grid and the cube in physical units, as the fixture wrote."""
    with scene.open_scene(product.path) as opened:
        assert opened.count == len(product.wavelengths)
        np.testing.assert_allclose(opened.wavelengths[~product.bad],
                                   product.wavelengths[~product.bad], atol=1e-3)
        if product.fwhm is not None and opened.fwhm is not None:
            np.testing.assert_allclose(opened.fwhm, product.fwhm, atol=1e-3)
        assert sorted(opened.bad) == np.flatnonzero(product.bad).tolist()
        assert opened.crs == product.crs
        assert opened.transform.almost_equals(product.transform, precision=1e-9)
        assert opened.shape == tuple(product.shape)
        values, invalid = opened.read(0, opened.height, 0, opened.width,
                                      bands=np.arange(opened.count))
    good = ~product.bad
    truth = product.cube[good]
    np.testing.assert_array_equal(invalid, np.isnan(truth).any(axis=0))
    np.testing.assert_allclose(values[good][:, ~invalid], truth[:, ~invalid], rtol=1e-5,
                               atol=1e-6)


def test_pseudo_rgb_of_product(product, tmp_path):
    out = str(tmp_path / "rgb.tif")
    pseudo_rgb.write_pseudo_rgb(product.path, out)
    assert_grid(out, product)
    with rasterio.open(out) as src:
        got = src.read()
    expected = expected_rgb(product.cube, product.wavelengths, ~product.bad)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.isfinite(got).mean() > 0.3  # bad bands full of nodata do not blank the image
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_import_round_trips(product, tmp_path):
    """The imported GeoTIFF holds the cube in physical units with standard band metadata,
    on the product's grid; its pseudo-RGB equals the product's."""
    before = snapshot(os.path.dirname(product.path))
    out = str(tmp_path / "imported.tif")
    result = importproduct.import_product(product.path, out)
    assert_grid(out, product)
    with rasterio.open(out) as src:
        assert src.count == len(product.wavelengths) and src.dtypes[0] == "float32"
        data = src.read()
        tags = [src.tags(b) for b in range(1, src.count + 1)]
    bbl = np.array([int(t["bbl"]) for t in tags])
    np.testing.assert_array_equal(bbl == 0, product.bad)
    np.testing.assert_allclose([float(t["wavelength"]) for t in tags], product.wavelengths,
                               atol=1e-3)
    assert {t["wavelength_units"] for t in tags} == {"Nanometers"}
    good = ~product.bad
    invalid = np.isnan(product.cube[good]).any(axis=0)
    np.testing.assert_array_equal(np.isnan(data[good]).any(axis=0), invalid)
    np.testing.assert_allclose(data[good][:, ~invalid], product.cube[good][:, ~invalid],
                               rtol=1e-5, atol=1e-6)
    assert result.bands == len(product.wavelengths)
    direct, via_import = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    pseudo_rgb.write_pseudo_rgb(product.path, direct)
    pseudo_rgb.write_pseudo_rgb(out, via_import)
    with rasterio.open(direct) as a, rasterio.open(via_import) as b:
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-6, equal_nan=True)
    assert snapshot(os.path.dirname(product.path)) == before  # nothing written beside it


# ------------------------------------------------------------------ band order and bad bands

def test_unsorted_and_duplicate_wavelengths(tmp_path):
    """Detector order with an overlap and a repeated centre: valid input, interpolated by
    wavelength; bands sharing a centre are averaged."""
    nm = np.array([420.0, 500.0, 560.0, 640.0, 700.0, 660.0, 560.0, 900.0])
    cube = make_cube(bands=nm.size, dtype="float32", seed=5)
    path = write_gtiff(str(tmp_path / "c.tif"), cube, nm)
    out = str(tmp_path / "rgb.tif")
    pseudo_rgb.write_pseudo_rgb(path, out)
    with rasterio.open(out) as src:
        got = src.read()
    expected = expected_rgb(cube, nm, np.arange(nm.size))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # 553 nm between 500 and the two 560 nm bands (averaged): by hand for one pixel.
    w = (553 - 500) / 60
    by_hand = (1 - w) * cube[1, 0, 0] + w * (cube[2, 0, 0] + cube[6, 0, 0]) / 2
    assert got[1, 0, 0] == pytest.approx(by_hand, rel=1e-6)


def test_bbl_from_band_metadata_and_nodata_over_good_bands(tmp_path):
    """A band flagged bbl = 0 in GDAL band metadata is left out, and its nodata pixels
    do not make pixels nodata; a good band's nodata does."""
    nm = np.linspace(420, 980, 8)
    cube = make_cube(bands=8, dtype="int16", seed=2)
    cube[3] = -9999          # a bad band, all nodata
    cube[5, :4, :] = -9999   # a good band with nodata rows
    path = write_gtiff(str(tmp_path / "c.tif"), cube, nm, nodata=-9999)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(7, bbl="0")
    with scene.open_scene(path) as opened:
        assert set(opened.bad) == {3, 6}
        assert "bbl" in opened.bad[6] and "no valid value" in opened.bad[3]
        _, invalid = opened.read(0, opened.height, 0, opened.width)
    np.testing.assert_array_equal(invalid[:4], True)
    assert not invalid[4:].any()


def test_bbl_from_envi_header(tmp_path):
    nm = np.linspace(420, 980, 6)
    cube = make_cube(bands=6, dtype="float32", seed=3)
    path = write_envi(str(tmp_path / "c.img"), cube, nm)
    with open(path[:-4] + ".hdr", "a") as fh:
        fh.write("bbl = {1, 1, 0, 1, 0, 1}\n")
    out = str(tmp_path / "rgb.tif")
    pseudo_rgb.write_pseudo_rgb(path, out)
    with rasterio.open(out) as src:
        got = src.read()
    good = np.array([0, 1, 3, 5])
    np.testing.assert_allclose(got, expected_rgb(cube, nm, good), rtol=1e-6)


@pytest.mark.parametrize("text,left_out", [
    ("2-3", {1, 2}),
    ("5", {4}),
    ("500-560nm", {1, 2}),
    ("500nm-560nm, 8", {1, 2, 7}),
])
def test_bad_bands_parameter(tmp_path, text, left_out):
    nm = np.array([420.0, 500.0, 560.0, 640.0, 700.0, 760.0, 820.0, 900.0])
    cube = make_cube(bands=8, dtype="float32", seed=4)
    path = write_gtiff(str(tmp_path / "c.tif"), cube, nm)
    with scene.open_scene(path, bad_bands=text) as opened:
        assert set(opened.bad) == left_out
        assert all("BAD_BANDS" in reason for reason in opened.bad.values())
        report = "\n".join(opened.band_report())
    assert "BAD_BANDS" in report
    out = str(tmp_path / "rgb.tif")
    pseudo_rgb.write_pseudo_rgb(path, out, bad_bands=text)
    with rasterio.open(out) as src:
        got = src.read()
    good = np.array([b for b in range(8) if b not in left_out])
    np.testing.assert_allclose(got, expected_rgb(cube, nm, good), rtol=1e-6)


@pytest.mark.parametrize("text,message", [
    ("0-3", "out of range: INPUT has bands 1 to 8"),
    ("9", "out of range"),
    ("five", "cannot read 'five'"),
    ("1340-1450um", "cannot read"),
    ("1-8", "every band"),
])
def test_bad_bands_errors(tmp_path, text, message):
    path = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=8), np.linspace(420, 980, 8))
    before = snapshot(tmp_path)
    with pytest.raises(UserInputError, match=message):
        pseudo_rgb.write_pseudo_rgb(path, str(tmp_path / "o.tif"), bad_bands=text)
    assert snapshot(tmp_path) == before


def test_bad_bands_in_nm_without_wavelengths(tmp_path):
    path = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=8))
    with pytest.raises(UserInputError, match="wavelength range.*unknown"):
        with scene.open_scene(path, bad_bands="1340-1450nm"):
            pass


def test_band_report_names_bands_and_reasons(tmp_path):
    product = write_enmap_l2a(str(tmp_path), order="detector")
    with scene.open_scene(product.path) as opened:
        lines = opened.band_report()
    bad = np.flatnonzero(product.bad)
    assert f"{len(bad)} left out as bad" in lines[0]
    assert any("nm" in line and "no data" in line.lower() for line in lines[1:])


# ------------------------------------------------------------------ bad products

def test_enmap_without_metadata(tmp_path):
    product = write_enmap_l2a(str(tmp_path))
    xml = [f for f in product.files if f.upper().endswith("METADATA.XML")][0]
    os.remove(xml)
    with pytest.raises(UserInputError, match=os.path.basename(xml)):
        with scene.open_scene(product.path):
            pass


def test_enmap_metadata_band_count_differs(tmp_path):
    product = write_enmap_l2a(str(tmp_path))
    xml = [f for f in product.files if f.upper().endswith("METADATA.XML")][0]
    text = open(xml).read()
    start = text.index("<bandID")
    end = text.index("</bandID>", start) + len("</bandID>")
    with open(xml, "w") as fh:
        fh.write(text[:start] + text[end:])
    with pytest.raises(UserInputError, match=r"describes \d+ bands but the image"):
        with scene.open_scene(product.path):
            pass


def test_every_band_bad(tmp_path):
    cube = np.full((4, 6, 7), -9999, "int16")
    path = write_gtiff(str(tmp_path / "c.tif"), cube, [500, 600, 700, 800], nodata=-9999)
    with pytest.raises(UserInputError, match="no valid pixels"):
        pseudo_rgb.write_pseudo_rgb(path, str(tmp_path / "o.tif"))


def test_failed_import_leaves_nothing(tmp_path, monkeypatch):
    product = write_enmap_l2a(str(tmp_path / "p"))
    out = str(tmp_path / "out" / "imported.tif")
    os.makedirs(os.path.dirname(out))
    calls = {"n": 0}
    real = scene.Scene.read

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(scene.Scene, "read", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        importproduct.import_product(product.path, out, block_bytes=4096)
    assert os.listdir(os.path.dirname(out)) == []


# ------------------------------------------------------------------ stage II and models

def _labels_for(folder, shape, transform, crs, seed=0):
    """Labels in square fields and a confidence, on a product's grid."""
    from special_qgis.core.classes import write_class_metadata

    rng = np.random.default_rng(seed)
    rows, cols = shape
    fields = rng.integers(1, 4, size=(-(-rows // 6), -(-cols // 6)))
    labels = np.kron(fields, np.ones((6, 6), int))[:rows, :cols].astype("uint8")
    conf = rng.uniform(0.3, 1.0, shape).astype("float32")
    profile = dict(driver="GTiff", width=cols, height=rows, count=1, crs=crs,
                   transform=transform)
    lab, con = os.path.join(folder, "labels.tif"), os.path.join(folder, "labels_conf.tif")
    with rasterio.open(lab, "w", dtype="uint8", nodata=0, **profile) as dst:
        dst.write(labels[None])
    write_class_metadata(lab, ["a", "b", "c"])
    with rasterio.open(con, "w", dtype="float32", **profile) as dst:
        dst.write(conf[None])
    return lab, con


FAST = noiserobust.Schedule(epochs=2, warmup_epochs=1, iterations=2, samples_per_class=50,
                            crop=16, width=8)


def test_model_applies_to_another_band_order(tmp_path):
    """A model trained on an EnMAP delivery in detector order classifies the same scene
    delivered sorted by wavelength identically (bands matched by wavelength); the map is
    on the product's grid, and a scene of another band set fails clearly."""
    a = write_enmap_l2a(str(tmp_path / "a"), order="detector")
    b = write_enmap_l2a(str(tmp_path / "b"), order="wavelength")
    lab, con = _labels_for(str(tmp_path), a.shape, a.transform, a.crs)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("map", "conf", "map_b", "conf_b")}
    model = str(tmp_path / "model.pt")
    noiserobust.run(noiserobust.Inputs(a.path, lab, con), out["map"], out["conf"], model,
                    FAST, "cpu")
    assert_grid(out["map"], a)
    noiserobust.apply_model(b.path, model, out["map_b"], out["conf_b"], "cpu")
    with rasterio.open(out["map"]) as x, rasterio.open(out["map_b"]) as y:
        np.testing.assert_array_equal(x.read(), y.read())
        assert (x.read(1)[np.isnan(a.cube[~a.bad]).any(axis=0)] == 0).all()
    other = write_aviris(str(tmp_path / "c"), flavour="ng")
    with pytest.raises(UserInputError, match="model's band 1 is at"):
        noiserobust.apply_model(other.path, model, str(tmp_path / "x.tif"),
                                str(tmp_path / "xc.tif"), "cpu")


def test_desis_band_information_from_its_header(tmp_path):
    """Without band elements in the METADATA.xml, the centres, widths and gains come from
    the -SPECTRAL_IMAGE.hdr DESIS ships beside the image."""
    import xml.etree.ElementTree as ElementTree

    product = write_desis_l2a(str(tmp_path))
    tree = ElementTree.parse(product.xml)
    specific = tree.getroot().find("specific")
    specific.remove(specific.find("bandCharacterisation"))
    tree.write(product.xml)
    with scene.open_scene(product.path) as opened:
        np.testing.assert_allclose(opened.wavelengths, product.wavelengths, atol=1e-3)
        np.testing.assert_allclose(opened.fwhm, product.fwhm, atol=1e-3)
        values, invalid = opened.read(0, opened.height, 0, opened.width)
    np.testing.assert_allclose(values[:, ~invalid], product.cube[:, ~invalid], rtol=1e-5)
    os.remove(product.hdr)
    with pytest.raises(UserInputError, match="SPECTRAL_IMAGE.hdr"):
        with scene.open_scene(product.path):
            pass


def test_desis_without_metadata(tmp_path):
    product = write_desis_l2a(str(tmp_path))
    os.remove(product.xml)
    with pytest.raises(UserInputError, match="DESIS image, but its metadata file"):
        with scene.open_scene(product.path):
            pass


@pytest.fixture(params=[False, True], ids=["gdal-exceptions-off", "gdal-exceptions-on"])
def gdal_exceptions(request):
    """GDAL's Python exceptions off (QGIS 3.22) and on (QGIS 3.40 turns them on)."""
    from osgeo import gdal

    was = gdal.GetUseExceptions()
    (gdal.UseExceptions if request.param else gdal.DontUseExceptions)()
    yield request.param
    (gdal.UseExceptions if was else gdal.DontUseExceptions)()


@pytest.mark.parametrize("writer", [write_prisma_l2d, write_emit_l2a])
def test_hdf5_products_either_gdal_exception_mode(tmp_path, gdal_exceptions, writer):
    """PRISMA and EMIT are read through GDAL; its exception mode changes nothing: the same
    values, and the same clear errors for a file that is not a product or lacks a part."""
    import h5py

    product = writer(str(tmp_path / "p"))
    with scene.open_scene(product.path) as opened:
        values, invalid = opened.read(0, opened.height, 0, opened.width)
    good = ~product.bad
    np.testing.assert_allclose(values[:, ~invalid], product.cube[good][:, ~invalid],
                               rtol=1e-5, atol=1e-6)
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as fh:
        fh.create_dataset("something", data=np.zeros((3, 3)))
    with pytest.raises(UserInputError, match="neither a PRISMA L2D product.*PRS_L2D_HCO"):
        with scene.open_scene(other):
            pass
    with h5py.File(product.path, "r+") as fh:
        if "location" in fh:
            del fh["location"]
            match = "location"
        else:
            del fh.attrs["Epsg_Code"]
            match = "lacks the attribute 'Epsg_Code'"
    with pytest.raises(UserInputError, match=match):
        with scene.open_scene(product.path):
            pass
    broken = str(tmp_path / "broken.he5")
    with open(product.path, "rb") as src, open(broken, "wb") as dst:
        dst.write(src.read(4096))
    with pytest.raises(UserInputError, match=r"INPUT: .*broken\.he5"):
        with scene.open_scene(broken):
            pass
