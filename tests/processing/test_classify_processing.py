"""special:classify through Processing and qgis_process: the whole pipeline in one step, on
a generated scene with a random-weight CLIP (mechanics only: the maps mean nothing), its
outputs styled and loaded, and its model file. The engine: tests/core/test_classify.py."""

import os

import classify_cases
import numpy as np
import pytest
from classify_cases import FAST, NAMES, check_grid, clip_args, listed, output_paths

from special_qgis.core import classes, noiserobust, pipeline

from rasters import make_cube, write_gtiff

# The shared fixture, bound here so that pytest finds it.
scene = classify_cases.scene


def test_processing_runs_every_stage_and_styles_outputs(provider, tmp_path, scene, tiny_clip,
                                                        qgis_new_project):
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProcessingFeedback, QgsProject

    out = output_paths(str(tmp_path / "out"))
    os.makedirs(tmp_path / "out")
    model = str(tmp_path / "out" / "model.pt")
    texts = []

    class Feedback(QgsProcessingFeedback):
        def setProgressText(self, text):  # noqa: N802
            texts.append(text)

    result = processing.runAndLoadResults("special:classify", {
        "INPUT": scene, "CLASSES": NAMES, "MODEL": tiny_clip.name,
        "PRETRAINED": tiny_clip.checkpoint, "WINDOW": 16, "STRIDE": 8, "DEVICE": "cpu",
        "EPOCHS": 2, "WARMUP_EPOCHS": 1, "ITERATIONS": 2, "SAMPLES_PER_CLASS": 100,
        "OUTPUT": out["classes"], "OUTPUT_CONFIDENCE": out["conf"],
        "OUTPUT_PSEUDO_LABELS": out["pseudo"], "OUTPUT_RGB": out["rgb"],
        "OUTPUT_MODEL": model}, feedback=Feedback())
    assert {k: result[k] for k in ("OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PSEUDO_LABELS",
                                   "OUTPUT_RGB", "OUTPUT_MODEL")} == {
        "OUTPUT": out["classes"], "OUTPUT_CONFIDENCE": out["conf"],
        "OUTPUT_PSEUDO_LABELS": out["pseudo"], "OUTPUT_RGB": out["rgb"], "OUTPUT_MODEL": model}
    hole = np.zeros((40, 48), bool)
    hole[3:7, 30:41] = True
    for key in ("classes", "pseudo"):
        labels = check_grid(out[key])[0]
        assert (labels[hole] == 0).all() and set(np.unique(labels[~hole])) <= {1, 2, 3}
        assert classes.read_class_metadata(out[key])[0] == ["water", "trees", "roofs"]
    conf = check_grid(out["conf"])[0]
    assert np.isnan(conf[hole]).all() and ((conf[~hole] >= 0) & (conf[~hole] <= 1)).all()
    rgb = check_grid(out["rgb"], 3)
    assert np.isnan(rgb[:, hole]).all() and np.isfinite(rgb[:, ~hole]).all()
    assert noiserobust.StageIIModel.load(model).class_names == ["water", "trees", "roofs"]
    # No scratch files or partial outputs are left beside the outputs.
    # (QGIS itself adds .aux.xml statistics when it loads a layer.)
    assert [f for f in listed(tmp_path / "out") if not f.endswith(".aux.xml")] == sorted(
        ["classes.tif", "classes.qml", "conf.tif", "conf.qml", "pseudo.tif", "pseudo.qml",
         "rgb.tif", "rgb.qml", "model.pt"])
    # The log names the stages in order.
    stages = [t.split(":")[0] for t in texts]
    assert stages.index("stage I") < stages.index("stage II")
    loaded = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
    for name in ("Classes", "Pseudo-labels"):
        renderer = loaded[name].renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer)
        assert [c.label for c in renderer.classes()] == ["water", "trees", "roofs"]
    assert loaded["Confidence"].renderer().type() == "singlebandpseudocolor"
    # The pseudo-RGB is stretched to its own values (2–98 %), not shown as 0..255.
    red = loaded["Pseudo-RGB"].renderer().redContrastEnhancement()
    valid = rgb[0][np.isfinite(rgb[0])]
    assert valid.min() <= red.minimumValue() < red.maximumValue() <= valid.max()


def test_qgis_process_classify(qgis_process, tmp_path, scene, tiny_clip):
    before = set(os.listdir(tmp_path))
    res = qgis_process("run", "special:classify", "--", f"INPUT={scene}", f"CLASSES={NAMES}",
                       f"MODEL={tiny_clip.name}", f"PRETRAINED={tiny_clip.checkpoint}",
                       "WINDOW=16", "STRIDE=8", "EPOCHS=1", "WARMUP_EPOCHS=0", "ITERATIONS=1",
                       f"OUTPUT={tmp_path / 'o.tif'}", f"OUTPUT_CONFIDENCE={tmp_path / 'c.tif'}")
    assert res.returncode == 0, res.stdout + res.stderr
    check_grid(str(tmp_path / "o.tif"))
    check_grid(str(tmp_path / "c.tif"))
    assert "stage I" in res.stdout and "stage II" in res.stdout
    # Optional outputs are not made unless asked for.
    made = set(os.listdir(tmp_path)) - before
    assert sorted(p for p in made if not p.endswith(".aux.xml")) == [
        "c.qml", "c.tif", "o.qml", "o.tif"]


def test_its_model_refuses_a_scene_with_other_bands(provider, tmp_path, scene, tiny_clip):
    """The model file of a pipeline run, applied to a scene of another band set."""
    import processing
    from qgis.core import QgsProcessingException

    out = output_paths(str(tmp_path))
    model = str(tmp_path / "model.pt")
    pipeline.classify(scene, classes.parse_classes(NAMES), out["classes"], out["conf"],
                      output_model=model, schedule=FAST, **clip_args(tiny_clip))
    other = write_gtiff(str(tmp_path / "other.tif"), make_cube(12, 40, 48),
                        np.linspace(450, 2400, 12))
    with pytest.raises(QgsProcessingException, match="INPUT: .*has 12 bands.*trained on 20 bands"):
        processing.run("special:applymodel", {
            "INPUT": other, "MODEL": model, "OUTPUT": str(tmp_path / "x.tif"),
            "OUTPUT_CONFIDENCE": str(tmp_path / "y.tif")})
    assert not (tmp_path / "x.tif").exists()
