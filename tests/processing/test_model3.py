"""The graphical-modeller model shipped with the plugin: listed under Models, chains the four
algorithms, and runs headless through scripts/qgis_process (random-weight CLIP: mechanics)."""

import os

import numpy as np
import rasterio

from special_qgis.core import classes
from special_qgis.processing_provider.settings import MODELS_FOLDER

from rasters import CRS_UTM, TRANSFORM, write_gtiff, write_labelled_scene

MODEL_ID = "model:special_pipeline"


def test_model_is_listed_and_chains_the_algorithms(provider):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById(MODEL_ID)
    assert alg is not None, "the plugin's models folder is not in Processing's Models folders"
    assert alg.sourceFilePath() == os.path.join(MODELS_FOLDER, "special_pipeline.model3")
    steps = {c.childId(): c.algorithmId() for c in alg.childAlgorithms().values()}
    assert steps == {"pseudorgb": "special:pseudorgb", "pseudolabel": "special:pseudolabel",
                     "noiserobust": "special:noiserobust", "accuracy": "special:accuracy"}
    # Every step's parameters still exist (the model was built from today's names).
    valid, problems = alg.validate()
    assert valid, problems


def test_models_folder_leaves_with_the_provider(qgis_processing):
    from qgis.core import QgsApplication

    from special_qgis.processing_provider.provider import SpecialProvider

    prov = SpecialProvider()
    QgsApplication.processingRegistry().addProvider(prov)
    assert QgsApplication.processingRegistry().algorithmById(MODEL_ID) is not None
    QgsApplication.processingRegistry().removeProvider(prov)
    assert QgsApplication.processingRegistry().algorithmById(MODEL_ID) is None


def test_model_runs_headless(qgis_process, tmp_path, tiny_clip):
    scene = write_labelled_scene(str(tmp_path), rows=40, cols=40, bands=12, n_classes=3)
    truth = write_gtiff(str(tmp_path / "truth.tif"), scene["truth"][None].astype("uint8"),
                        nodata=0)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("rgb", "pseudo", "classes", "conf")}
    report = str(tmp_path / "report.html")
    res = qgis_process(
        "run", MODEL_ID, "--", f"INPUT={scene['cube']}", "CLASSES=water; trees; roofs",
        f"MODEL={tiny_clip.name}", f"PRETRAINED={tiny_clip.checkpoint}", "SCALES=1",
        "EPOCHS=1", "WARMUP_EPOCHS=0", "DEVICE=cpu", f"REFERENCE={truth}",
        f"pseudorgb:RGB={out['rgb']}", f"pseudolabel:PSEUDO_LABELS={out['pseudo']}",
        f"noiserobust:CLASSIFICATION={out['classes']}",
        f"noiserobust:CONFIDENCE_MAP={out['conf']}", f"accuracy:REPORT={report}")
    assert res.returncode == 0, res.stdout + res.stderr
    for path, count in ((out["rgb"], 3), (out["pseudo"], 1), (out["classes"], 1),
                        (out["conf"], 1)):
        with rasterio.open(path) as ds:
            assert ds.crs == CRS_UTM and ds.transform.almost_equals(TRANSFORM)
            assert (ds.height, ds.width, ds.count) == (40, 40, count)
    assert classes.read_class_metadata(out["classes"])[0] == ["water", "trees", "roofs"]
    # The report's OA is the share of pixels where the map equals the truth.
    with rasterio.open(out["classes"]) as ds:
        predicted = ds.read(1)
    expected = float(np.mean(predicted == scene["truth"]))
    assert os.path.getsize(report) > 0
    assert f"{100 * expected:.1f}" in open(report, encoding="utf-8").read()
