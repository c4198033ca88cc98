"""special:classify: the whole pipeline in one step, on a generated scene with a
random-weight CLIP (mechanics only: the maps mean nothing)."""

import os

import numpy as np
import pytest
import rasterio

from special_qgis.core import classes, noiserobust, pipeline, pseudolabel
from special_qgis.core.errors import Cancelled, UserInputError
from special_qgis.core.progress import Progress

from rasters import CRS_UTM, TRANSFORM, make_cube, write_gtiff, write_labelled_scene

NAMES = "water; trees, forest; roofs"
FAST = noiserobust.Schedule(epochs=2, warmup_epochs=1, iterations=2, samples_per_class=100)


@pytest.fixture
def scene(tmp_path):
    """A 20-band GeoTIFF with wavelengths and a nodata hole (NaN in every band)."""
    made = write_labelled_scene(str(tmp_path), rows=40, cols=48, bands=20)
    with rasterio.open(made["cube"]) as ds:
        cube = ds.read()
    cube[:, 3:7, 30:41] = np.nan
    path = write_gtiff(str(tmp_path / "scene.tif"), cube, np.linspace(450, 2400, 20))
    return path


def _clip(tiny_clip):
    return dict(model_name=tiny_clip.name, pretrained=tiny_clip.checkpoint, window=16,
                stride=8, device="cpu")


def _outputs(folder):
    return {k: os.path.join(folder, f"{k}.tif") for k in ("classes", "conf", "pseudo", "rgb")}


def _files(folder):
    return sorted(os.listdir(folder))


def _check_grid(path, count=1):
    with rasterio.open(path) as ds:
        assert ds.crs == CRS_UTM
        assert ds.transform.almost_equals(TRANSFORM)
        assert (ds.height, ds.width, ds.count) == (40, 48, count)
        assert ds.nodata is not None
        return ds.read()


def test_processing_runs_every_stage_and_styles_outputs(provider, tmp_path, scene, tiny_clip,
                                                        qgis_new_project):
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProcessingFeedback, QgsProject

    out = _outputs(str(tmp_path / "out"))
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
        labels = _check_grid(out[key])[0]
        assert (labels[hole] == 0).all() and set(np.unique(labels[~hole])) <= {1, 2, 3}
        assert classes.read_class_metadata(out[key])[0] == ["water", "trees", "roofs"]
    conf = _check_grid(out["conf"])[0]
    assert np.isnan(conf[hole]).all() and ((conf[~hole] >= 0) & (conf[~hole] <= 1)).all()
    rgb = _check_grid(out["rgb"], 3)
    assert np.isnan(rgb[:, hole]).all() and np.isfinite(rgb[:, ~hole]).all()
    assert noiserobust.StageIIModel.load(model).class_names == ["water", "trees", "roofs"]
    # No scratch files or partial outputs are left beside the outputs.
    # (QGIS itself adds .aux.xml statistics when it loads a layer.)
    assert [f for f in _files(tmp_path / "out") if not f.endswith(".aux.xml")] == sorted(
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


def test_same_result_as_the_single_stages(tmp_path, scene, tiny_clip):
    """classify is the single stages chained, not a second copy of them."""
    out = _outputs(str(tmp_path))
    pipeline.classify(scene, classes.parse_classes(NAMES), out["classes"], out["conf"],
                      out["pseudo"], schedule=FAST, **_clip(tiny_clip))
    single = {k: str(tmp_path / f"single_{k}.tif") for k in ("pl", "plc", "cl", "cc")}
    pseudolabel.run(scene, classes.parse_classes(NAMES), single["pl"], single["plc"],
                    **_clip(tiny_clip))
    noiserobust.run(noiserobust.Inputs(scene, single["pl"], single["plc"], None),
                    single["cl"], single["cc"], None, FAST, "cpu")
    for mine, theirs in (("pseudo", "pl"), ("classes", "cl"), ("conf", "cc")):
        np.testing.assert_array_equal(_check_grid(out[mine]), _check_grid(single[theirs]))


@pytest.mark.parametrize("stop_at", ["pseudo-RGB", "stage I", "stage II", "end"])
def test_cancel_anywhere_leaves_nothing(tmp_path, scene, tiny_clip, stop_at):
    folder = tmp_path / "out"
    folder.mkdir()
    out = _outputs(str(folder))
    state = {"stop": False}

    def report(fraction, text):  # the user presses Cancel once this stage has begun
        begun = fraction >= 1.0 if stop_at == "end" else text.startswith(stop_at)
        state["stop"] = state["stop"] or begun

    with pytest.raises(Cancelled):
        pipeline.classify(scene, classes.parse_classes(NAMES), out["classes"], out["conf"],
                          out["pseudo"], out["rgb"], str(folder / "model.pt"), schedule=FAST,
                          progress=Progress(report, lambda: state["stop"]),
                          **_clip(tiny_clip))
    assert _files(folder) == []


def test_errors_name_the_stage_and_leave_nothing(tmp_path, scene, tiny_clip):
    folder = tmp_path / "out"
    folder.mkdir()
    out = _outputs(str(folder))
    names = classes.parse_classes(NAMES)
    with pytest.raises(UserInputError, match=r"^Stage I \(CLIP pseudo-labels\): PRETRAINED"):
        pipeline.classify(scene, names, out["classes"], out["conf"], out["pseudo"],
                          schedule=FAST, **{**_clip(tiny_clip),
                                            "pretrained": str(tmp_path / "missing.pt")})
    # A mask that excludes everything: stage II has nothing to learn from, after stage I.
    mask = write_gtiff(str(tmp_path / "mask.tif"), np.zeros((1, 40, 48), "uint8"))
    with pytest.raises(UserInputError, match=r"^Stage II \(noise-robust network\): LABELS"):
        pipeline.classify(scene, names, out["classes"], out["conf"], out["pseudo"],
                          schedule=FAST, mask_path=mask, **_clip(tiny_clip))
    assert _files(folder) == []


def test_parameters_are_checked_before_stage_i(tmp_path, scene, tiny_clip, monkeypatch):
    """Mistakes in later stages' parameters fail at once, not after CLIP has run."""
    def no_stage_i(*args, **kwargs):
        raise AssertionError("stage I started")

    monkeypatch.setattr(pseudolabel, "run", no_stage_i)
    names = classes.parse_classes(NAMES)
    out = _outputs(str(tmp_path))
    bad = noiserobust.Schedule(epochs=2, warmup_epochs=3)
    with pytest.raises(UserInputError, match="EPOCHS"):
        pipeline.classify(scene, names, out["classes"], out["conf"], schedule=bad,
                          **_clip(tiny_clip))
    small_mask = write_gtiff(str(tmp_path / "mask.tif"), np.ones((1, 20, 20), "uint8"))
    with pytest.raises(UserInputError, match="MASK: .* not on the same grid"):
        pipeline.classify(scene, names, out["classes"], out["conf"], schedule=FAST,
                          mask_path=small_mask, **_clip(tiny_clip))
    with pytest.raises(UserInputError, match="OUTPUT_RGB, OUTPUT_PSEUDO_LABELS|must be diff"):
        pipeline.classify(scene, names, out["classes"], out["conf"], out["pseudo"],
                          out["pseudo"], schedule=FAST, **_clip(tiny_clip))
    with pytest.raises(UserInputError, match="OUTPUT_PSEUDO_LABELS"):
        pipeline.classify(scene, names, out["classes"], out["conf"], scene, schedule=FAST,
                          **_clip(tiny_clip))
    three = write_gtiff(str(tmp_path / "three.tif"), np.ones((3, 40, 48), "float32"))
    with pytest.raises(UserInputError, match="INPUT: .* 3 band"):
        pipeline.classify(three, names, out["classes"], out["conf"], schedule=FAST,
                          **_clip(tiny_clip))
    with pytest.raises(UserInputError, match="SCALES"):
        pipeline.classify(scene, names, out["classes"], out["conf"], scales="0",
                          schedule=FAST, **_clip(tiny_clip))
    with pytest.raises(UserInputError, match="CLASSES"):
        pipeline.classify(scene, [["water"]], out["classes"], out["conf"], schedule=FAST,
                          **_clip(tiny_clip))
    assert not any(os.path.exists(p) for p in out.values())


def test_qgis_process_classify(qgis_process, tmp_path, scene, tiny_clip):
    before = set(os.listdir(tmp_path))
    res = qgis_process("run", "special:classify", "--", f"INPUT={scene}", f"CLASSES={NAMES}",
                       f"MODEL={tiny_clip.name}", f"PRETRAINED={tiny_clip.checkpoint}",
                       "WINDOW=16", "STRIDE=8", "EPOCHS=1", "WARMUP_EPOCHS=0", "ITERATIONS=1",
                       f"OUTPUT={tmp_path / 'o.tif'}", f"OUTPUT_CONFIDENCE={tmp_path / 'c.tif'}")
    assert res.returncode == 0, res.stdout + res.stderr
    _check_grid(str(tmp_path / "o.tif"))
    _check_grid(str(tmp_path / "c.tif"))
    assert "stage I" in res.stdout and "stage II" in res.stdout
    # Optional outputs are not made unless asked for.
    made = set(os.listdir(tmp_path)) - before
    assert sorted(p for p in made if not p.endswith(".aux.xml")) == [
        "c.qml", "c.tif", "o.qml", "o.tif"]


def test_its_model_refuses_a_scene_with_other_bands(provider, tmp_path, scene, tiny_clip):
    """The model file of a pipeline run, applied to a scene of another band set."""
    import processing
    from qgis.core import QgsProcessingException

    out = _outputs(str(tmp_path))
    model = str(tmp_path / "model.pt")
    pipeline.classify(scene, classes.parse_classes(NAMES), out["classes"], out["conf"],
                      output_model=model, schedule=FAST, **_clip(tiny_clip))
    other = write_gtiff(str(tmp_path / "other.tif"), make_cube(12, 40, 48),
                        np.linspace(450, 2400, 12))
    with pytest.raises(QgsProcessingException, match="INPUT: .*has 12 bands.*trained on 20 bands"):
        processing.run("special:applymodel", {
            "INPUT": other, "MODEL": model, "OUTPUT": str(tmp_path / "x.tif"),
            "OUTPUT_CONFIDENCE": str(tmp_path / "y.tif")})
    assert not (tmp_path / "x.tif").exists()
