"""special:accuracy through Processing: its parameters, outputs and help, a vector and a
raster reference, and a missing CLASS_FIELD. The engine's numbers and errors:
tests/core/test_accuracy.py."""

import json
import os

import pytest
from accuracy_cases import (
    POLYGONS,
    class_raster,
    expected_vector,
    predicted_labels,
    sklearn_expected,
    write_polygons,
)


def test_processing_algorithm(provider, tmp_path):
    import processing
    from qgis.core import QgsApplication, QgsProcessingException

    alg = QgsApplication.processingRegistry().algorithmById("special:accuracy")
    assert [p.name() for p in alg.parameterDefinitions()] == [
        "INPUT", "REFERENCE", "CLASS_FIELD", "CLASS_NAMES", "OUTPUT_HTML", "OUTPUT_JSON"]
    assert {"OA", "AA", "KAPPA", "OUTPUT_HTML", "OUTPUT_JSON"} <= {
        o.name() for o in alg.outputDefinitions()}
    help_text = alg.shortHelpString()
    for name in ("INPUT", "REFERENCE", "CLASS_FIELD", "CLASS_NAMES", "OUTPUT_HTML",
                 "OUTPUT_JSON", "unclassified"):
        assert name in help_text

    predicted = predicted_labels()
    inp = class_raster(tmp_path / "in.tif", predicted)
    gpkg = write_polygons(tmp_path / "ref.gpkg", POLYGONS)
    html_path, json_path = str(tmp_path / "r.html"), str(tmp_path / "r.json")
    result = processing.run("special:accuracy", {
        "INPUT": inp, "REFERENCE": gpkg, "CLASS_FIELD": "name", "CLASS_NAMES": "",
        "OUTPUT_HTML": html_path, "OUTPUT_JSON": json_path})
    expected = sklearn_expected(expected_vector(predicted, POLYGONS, "name"), predicted, 4)
    assert result["OA"] == pytest.approx(expected["OA"])
    assert result["AA"] == pytest.approx(expected["AA"])
    assert result["KAPPA"] == pytest.approx(expected["KAPPA"])
    assert result["OUTPUT_HTML"] == html_path and result["OUTPUT_JSON"] == json_path
    data = json.loads(open(json_path).read())
    assert data["OA"] == pytest.approx(result["OA"]) and data["class_field"] == "name"
    assert f"{100 * result['OA']:.1f} %" in open(html_path).read()

    ref = class_raster(tmp_path / "ref.tif", (predicted % 4 + 1).astype("uint8"), None)
    raster = processing.run("special:accuracy", {
        "INPUT": inp, "REFERENCE": ref, "OUTPUT_HTML": str(tmp_path / "r2.html")})
    assert raster["OA"] == pytest.approx(
        sklearn_expected((predicted % 4 + 1).astype(int), predicted, 4)["OA"])
    assert "OUTPUT_JSON" not in raster

    with pytest.raises(QgsProcessingException, match="CLASS_FIELD"):
        processing.run("special:accuracy", {"INPUT": inp, "REFERENCE": gpkg,
                                            "OUTPUT_HTML": str(tmp_path / "r3.html")})
    assert not os.path.exists(tmp_path / "r3.html")
