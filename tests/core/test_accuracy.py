"""special:accuracy's engine (core.accuracy): the numbers against scikit-learn, polygons
rasterised on a known layout (also from another CRS), a raster reference on another grid
and CRS, class matching, the reports and every bad input. The Processing algorithm:
tests/processing/test_accuracy_processing.py."""

import json
import os

import numpy as np
import pytest
import rasterio
from accuracy_cases import (
    COLS,
    POLYGONS,
    ROWS,
    class_raster,
    expected_vector,
    predicted_labels,
    sklearn_expected,
    write_polygons,
)
from rasterio.crs import CRS
from rasterio.transform import Affine

from special_qgis.core import accuracy
from special_qgis.core.errors import UserInputError

from rasters import CRS_UTM, TRANSFORM, write_gtiff


def _check(result, expected):
    assert result.overall == pytest.approx(expected["OA"], abs=1e-12)
    assert result.average == pytest.approx(expected["AA"], abs=1e-12)
    assert result.kappa == pytest.approx(expected["KAPPA"], abs=1e-12)
    np.testing.assert_array_equal(result.confusion, expected["confusion"])
    for name in ("producers", "users", "f1"):
        got = np.array([getattr(c, name) for c in result.classes])
        np.testing.assert_allclose(got, expected[name], atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_match_scikit_learn(tmp_path, seed):
    """Random pairs with classes absent from the reference (3), never predicted (2) or in
    neither (5), reference 0 (ignored), predicted 0 and predicted nodata (errors)."""
    rng = np.random.default_rng(seed)
    shape = (37, 53)
    reference = rng.choice([0, 1, 2, 4, 6], shape)
    predicted = np.where(rng.random(shape) < 0.6, reference, rng.choice([0, 1, 3, 4, 6], shape))
    predicted[rng.random(shape) < 0.05] = 255  # nodata: unclassified too
    predicted[reference == 2] = np.where(predicted[reference == 2] == 2, 1,
                                         predicted[reference == 2])
    names = ["a", "b", "c", "d", "e", "f"]
    inp = class_raster(tmp_path / "in.tif", predicted.astype("uint8"), names, nodata=255)
    ref = class_raster(tmp_path / "ref.tif", reference.astype("uint8"), None)
    expected = sklearn_expected(reference, np.where(predicted == 255, 0, predicted), 6)
    result = accuracy.run(inp, ref)
    _check(result, expected)
    assert np.isnan(result.classes[2].producers) and np.isnan(result.classes[4].f1)
    assert np.isnan(result.classes[1].users) and result.classes[1].f1 == 0
    assert result.unclassified_pixels == int(((reference > 0) & (
        (predicted == 0) | (predicted == 255))).sum())
    # Strips of a few rows give the very same counts as one block.
    small = accuracy.run(inp, ref, block_bytes=7 * COLS * 60)
    np.testing.assert_array_equal(small.confusion, result.confusion)


def test_float_input_and_reference_without_legend(tmp_path):
    """Float32 class rasters with NaN nodata; no legend: names 'class k', C = largest value."""
    rng = np.random.default_rng(5)
    reference = rng.integers(0, 4, (15, 16)).astype("float32")
    predicted = rng.integers(0, 4, (15, 16)).astype("float32")
    predicted[0, :5] = np.nan
    inp = class_raster(tmp_path / "in.tif", predicted, None, nodata=float("nan"))
    ref = class_raster(tmp_path / "ref.tif", reference, None, nodata=float("nan"))
    result = accuracy.run(inp, ref)
    _check(result, sklearn_expected(reference.astype(int), np.nan_to_num(predicted).astype(int), 3))
    assert [c.name for c in result.classes] == ["class 1", "class 2", "class 3"]
    predicted[3, 3] = 1.5
    bad = class_raster(tmp_path / "bad.tif", predicted, None, nodata=float("nan"))
    with pytest.raises(UserInputError, match="^INPUT: the value 1.5 is not a class code"):
        accuracy.run(bad, ref)


# ------------------------------------------------------------------------ vector reference

@pytest.mark.parametrize("field", ["name", "code"])
@pytest.mark.parametrize("epsg", [32633, 4326])
def test_vector_reference_rasterised_on_known_layout(tmp_path, field, epsg):
    predicted = predicted_labels()
    inp = class_raster(tmp_path / "in.tif", predicted)
    gpkg = write_polygons(tmp_path / "ref.gpkg", POLYGONS, epsg,
                           transform_to=epsg if epsg != 32633 else None)
    result = accuracy.run(inp, gpkg, class_field=field)
    reference = expected_vector(predicted, POLYGONS, field)
    _check(result, sklearn_expected(reference, predicted, 4))
    # By construction: the first box covers 17 rows × cols 1-7 (5 of class 1, 2 of class 2),
    # 4 × 3 pixels of it unclassified; the second 5 rows × cols 10-19.
    assert result.confusion[0].tolist() == [17 * 5 - 12, 17 * 2, 0, 0, 12]
    assert result.confusion[2].tolist() == [0, 5 * 2, 5 * 6, 5 * 2, 0]
    assert result.confusion[3].tolist() == [0, 4 * 3, 0, 0, 0]
    lake = [v for v in result.reference_values if v.input_class is None]
    assert [(v.label, v.pixels) for v in lake] == [("lake" if field == "name" else "9", 80)]
    assert any("match no INPUT class" in w and "(80 px)" in w for w in result.warnings)


def test_vector_overlaps_holes_and_layer_source(tmp_path):
    """The later polygon wins where two overlap; a text field holding a whole number is a
    code; a QGIS-style 'path|layername=' source."""
    predicted = predicted_labels()
    inp = class_raster(tmp_path / "in.tif", predicted)
    polygons = [((0, 10, 0, 12), "trees", 2), ((5, 10, 6, 12), " 4 ", 0)]
    gpkg = write_polygons(tmp_path / "ref.gpkg", polygons, layer_name="fields")
    write_polygons(tmp_path / "ref.gpkg", [], layer_name="other")  # second layer
    with pytest.raises(UserInputError, match="^REFERENCE: .* holds several layers"):
        accuracy.run(inp, gpkg, class_field="name")
    # The same friendly errors whether GDAL's exceptions are on or off (make test runs both).
    with pytest.raises(UserInputError, match=r"^REFERENCE: '.*\|layername=roads' names no"):
        accuracy.run(inp, gpkg + "|layername=roads", class_field="name")
    with pytest.raises(UserInputError, match="^REFERENCE: OGR cannot apply the layer's filter"):
        accuracy.run(inp, gpkg + "|layername=fields|subset=name = = 'x'",
                     class_field="name")
    result = accuracy.run(inp, gpkg + "|layername=fields", class_field="name")
    reference = np.zeros((ROWS, COLS), int)
    reference[0:10, 0:12] = 2
    reference[5:10, 6:12] = 4
    _check(result, sklearn_expected(reference, predicted, 4))


def test_class_names_mapping(tmp_path):
    """Reference codes 10/20/30/40 mapped by code and by name; 40 is not listed: left out."""
    rng = np.random.default_rng(3)
    predicted = rng.integers(0, 5, (ROWS, COLS)).astype("uint8")
    truth = rng.integers(0, 5, (ROWS, COLS))
    inp = class_raster(tmp_path / "in.tif", predicted)
    ref = class_raster(tmp_path / "ref.tif", (truth * 10).astype("uint8"), None)
    with pytest.raises(UserInputError, match="^REFERENCE: none of the reference values "
                                             r"\(10, 20, 30, 40\) matches.*CLASS_NAMES"):
        accuracy.run(inp, ref)
    result = accuracy.run(inp, ref, class_names="10 = WATER; 20=2\n30=roofs; 99=trees")
    reference = np.where(truth == 4, 0, truth)
    _check(result, sklearn_expected(reference, predicted, 4))
    assert any("'99'" in w for w in result.warnings)  # listed but absent
    assert any("'40'" in w and f"({(truth == 4).sum()} px)" in w for w in result.warnings)
    # Several reference values may make one class.
    merged = accuracy.run(inp, ref, class_names="10=water; 20=water; 30=water; 40=water")
    assert merged.confusion[0, :].sum() == (truth > 0).sum()


def test_raster_reference_names_and_text_field_codes(tmp_path):
    """A reference raster's own category names may be used in CLASS_NAMES; codes that it
    names differently from INPUT are matched by code, with a warning."""
    predicted = predicted_labels()
    inp = class_raster(tmp_path / "in.tif", predicted)
    truth = np.zeros((ROWS, COLS), "uint8")
    truth[:10] = 1
    truth[10:] = 2
    ref = class_raster(tmp_path / "ref.tif", truth, ["Trees", "Water"])
    result = accuracy.run(inp, ref)
    assert any("name some codes differently" in w for w in result.warnings)
    _check(result, sklearn_expected(truth.astype(int), predicted, 4))
    swapped = accuracy.run(inp, ref, class_names="trees=trees; water=water")
    _check(swapped, sklearn_expected(np.where(truth == 1, 2, 1) * (truth > 0), predicted, 4))


# ------------------------------------------------------------------------ raster reference

def test_raster_reference_on_another_grid_and_crs(tmp_path):
    """A 5 m reference in a transverse Mercator shifted 1000 m east of UTM 33N (the same
    places, other coordinates): reprojected with nearest neighbour onto INPUT's 2.5 m grid,
    each reference pixel covers exactly 2 × 2 INPUT pixels."""
    rng = np.random.default_rng(7)
    predicted = rng.integers(0, 5, (ROWS, COLS)).astype("uint8")
    coarse = rng.integers(0, 5, (ROWS // 2 + 3, COLS // 2 + 2)).astype("uint8")
    shifted = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=15 +k=0.9996 +x_0=501000 +y_0=0 "
                             "+datum=WGS84 +units=m +no_defs")
    # The reference starts 2 coarse pixels (10 m) west of and 1 (5 m) north of INPUT.
    transform = Affine(5.0, 0, TRANSFORM.c + 1000 - 10, 0, -5.0, TRANSFORM.f + 5)
    inp = class_raster(tmp_path / "in.tif", predicted)
    ref = class_raster(tmp_path / "ref.tif", coarse, None, transform=transform, crs=shifted)
    result = accuracy.run(inp, ref)
    reference = np.kron(coarse[1:, 2:], np.ones((2, 2), int))[:ROWS, :COLS]
    _check(result, sklearn_expected(reference, predicted, 4))


def test_raster_reference_in_geographic_crs(tmp_path):
    """A reference in EPSG:4326 with pixels 4 times finer, made from the reference fields by
    nearest neighbour: reprojected back onto INPUT's grid, it gives the fields' numbers."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    predicted = predicted_labels()
    truth = np.zeros((ROWS, COLS), "uint8")
    truth[2:18, 3:21] = np.repeat(np.arange(1, 5), COLS // 4)[None, 3:21]
    inp = class_raster(tmp_path / "in.tif", predicted)
    bounds = rasterio.transform.array_bounds(ROWS, COLS, TRANSFORM)
    dst_transform, width, height = calculate_default_transform(
        CRS_UTM, "EPSG:4326", COLS * 4, ROWS * 4, *bounds)
    wgs = np.zeros((height, width), "uint8")
    reproject(truth, wgs, src_transform=TRANSFORM, src_crs=CRS_UTM,
              dst_transform=dst_transform, dst_crs="EPSG:4326", resampling=Resampling.nearest)
    ref = class_raster(tmp_path / "ref.tif", wgs, None, transform=dst_transform,
                        crs=CRS.from_epsg(4326))
    result = accuracy.run(inp, ref)
    expected = sklearn_expected(truth.astype(int), predicted, 4)
    # Two nearest-neighbour resamplings: a pixel on a field edge might move (none did with
    # GDAL 3.10); allow four.
    moved = np.abs(result.confusion - expected["confusion"]).sum() / 2
    assert moved <= 4
    assert result.n_pixels == pytest.approx((truth > 0).sum(), abs=4)
    assert result.overall == pytest.approx(expected["OA"], abs=4 / (truth > 0).sum() + 1e-9)


# ----------------------------------------------------------------------------- outputs

def test_reports(tmp_path):
    predicted = predicted_labels()
    inp = class_raster(tmp_path / "in.tif", predicted, ["water", "trees <&>", "roofs",
                                                         "asphalt"])
    gpkg = write_polygons(tmp_path / "ref.gpkg", POLYGONS[:3])  # no asphalt
    html_path, json_path = str(tmp_path / "report.html"), str(tmp_path / "report.json")
    result = accuracy.run(inp, gpkg, html_path, json_path, class_field="name")
    data = json.loads(open(json_path, encoding="utf-8").read())
    assert (data["OA"], data["AA"], data["KAPPA"]) == (result.overall, result.average,
                                                       result.kappa)
    assert data["n_pixels"] == result.n_pixels == result.confusion.sum()
    assert data["confusion_matrix"]["counts"] == result.confusion.tolist()
    assert data["confusion_matrix"]["columns"][-1] == "unclassified"
    per_class = {c["name"]: c for c in data["per_class"]}
    assert per_class["asphalt"]["producers"] is None  # not in the reference
    assert per_class["water"]["reference_pixels"] == 17 * 7
    assert data["unclassified_pixels"] == 12 and data["left_out_pixels"] == 80
    text = open(html_path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    assert f"{100 * result.overall:.1f} %" in text and f"{result.kappa:.4f}" in text
    assert "trees &lt;&amp;&gt;" in text and "trees <&>" not in text
    assert "count as errors" in text and "unclassified" in text
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".partial-")]


# -------------------------------------------------------------------------- bad inputs

@pytest.fixture
def scene(tmp_path):
    predicted = predicted_labels()
    return {
        "dir": tmp_path,
        "input": class_raster(tmp_path / "in.tif", predicted),
        "reference": class_raster(tmp_path / "ref.tif", predicted.copy(), None),
        "gpkg": write_polygons(tmp_path / "ref.gpkg", POLYGONS),
        "html": str(tmp_path / "out.html"),
        "json": str(tmp_path / "out.json"),
    }


def _far_raster(path):
    far = Affine(2.5, 0, TRANSFORM.c + 50_000, 0, -2.5, TRANSFORM.f)
    return class_raster(path, predicted_labels(), None, transform=far)


def _bad_cases(s):
    d = s["dir"]
    empty_gpkg = write_polygons(d / "empty.gpkg", [])
    far_gpkg = write_polygons(d / "far.gpkg", [((1, 5, 1000, 1010), "water", 1)])
    zeros = class_raster(d / "zeros.tif", np.zeros((ROWS, COLS), "uint8"), None)
    codes = class_raster(d / "codes.tif", np.full((ROWS, COLS), 7, "uint8"), None)
    return [
        ({"reference_path": _far_raster(d / "far.tif")}, "^REFERENCE does not overlap INPUT"),
        ({"reference_path": far_gpkg, "class_field": "name"},
         "^REFERENCE does not overlap INPUT"),
        ({"reference_path": zeros}, "^REFERENCE is empty"),
        ({"reference_path": empty_gpkg, "class_field": "name"}, "^REFERENCE: the layer has no "
                                                                "features"),
        ({"reference_path": codes}, r"^REFERENCE: none of the reference values \(7\)"),
        ({"reference_path": codes, "class_names": "8=water"},
         r"^CLASS_NAMES: none of the reference values \(7\)"),
        ({"reference_path": s["gpkg"]}, "^CLASS_FIELD: REFERENCE is a vector layer"),
        ({"reference_path": s["gpkg"], "class_field": "colour"},
         "^CLASS_FIELD: 'colour' is not a field of REFERENCE"),
        ({"class_names": "1 water"}, "^CLASS_NAMES: '1 water' is not 'reference value"),
        ({"class_names": "1=water; 1=trees"}, "^CLASS_NAMES: the reference value '1' is "
                                              "given twice"),
        ({"class_names": "1=meadows"}, "^CLASS_NAMES: 'meadows' .* is not a class of INPUT"),
        ({"output_html": s["input"]}, "^OUTPUT_HTML: .* is also an input"),
        ({"output_json": s["reference"]}, "^OUTPUT_JSON: .* is also an input"),
        ({"output_html": str(d / "report.txt")}, "^OUTPUT_HTML: .* must end in .html"),
        ({"reference_path": str(d / "missing.tif")}, "^REFERENCE: the file .* does not exist"),
        ({"reference_path": s["input"]}, "^REFERENCE is the INPUT file itself"),
        ({"input_path": zeros, "reference_path": s["reference"]}, "^INPUT has no classes"),
        ({"input_path": write_gtiff(str(d / "cube.tif"), np.ones((3, ROWS, COLS), "uint8"))},
         "^INPUT: .* has 3 bands"),
    ]


def _snapshot(folder) -> dict:
    from rasters import file_digest

    return {name: file_digest(os.path.join(folder, name)) for name in os.listdir(folder)}


def test_bad_inputs_name_their_parameter_and_leave_no_file(scene):
    """Each error names its parameter; the folder is exactly as before (no report, no
    temporary file, inputs unchanged)."""
    cases = _bad_cases(scene)
    for case, message in cases:
        kwargs = {"input_path": scene["input"], "reference_path": scene["reference"],
                  "output_html": scene["html"], "output_json": scene["json"], **case}
        before = _snapshot(scene["dir"])
        with pytest.raises(UserInputError, match=message):
            accuracy.run(**kwargs)
        assert _snapshot(scene["dir"]) == before, case
        assert not os.path.exists(scene["html"]) and not os.path.exists(scene["json"])


def test_failed_rerun_keeps_the_earlier_report(scene):
    accuracy.run(scene["input"], scene["reference"], scene["html"], scene["json"])
    before = open(scene["json"]).read()
    with pytest.raises(UserInputError):
        accuracy.run(scene["input"], _far_raster(scene["dir"] / "far.tif"), scene["html"],
                     scene["json"])
    assert open(scene["json"]).read() == before
    assert json.loads(before)["OA"] == 1.0  # the reference was INPUT's own labels


def test_cancel_leaves_no_file(scene):
    from special_qgis.core.errors import Cancelled
    from special_qgis.core.progress import Progress

    with pytest.raises(Cancelled):
        accuracy.run(scene["input"], scene["reference"], scene["html"],
                     progress=Progress(cancelled=lambda: True))
    assert not os.path.exists(scene["html"])
