"""special:noiserobust and special:applymodel end to end: outputs, georeferencing, legend,
determinism, no ground truth, tiling, another scene, and a quality check on a separable
scene with clustered label noise."""

import os
import shutil

import numpy as np
import pytest
import rasterio

from special_qgis.core import classes, noiserobust
from special_qgis.core.progress import Progress

from rasters import CRS_UTM, TRANSFORM, make_cube, write_envi, write_gtiff, write_labelled_scene

FAST = noiserobust.Schedule(epochs=3, warmup_epochs=1, iterations=4, samples_per_class=200)


def _read(path, shape):
    with rasterio.open(path) as ds:
        assert ds.crs == CRS_UTM
        assert ds.transform.almost_equals(TRANSFORM)
        assert (ds.height, ds.width) == shape
        return ds.read(1), ds.nodata


def _run(scene, folder, schedule=FAST, model=True, **kwargs):
    out = {k: os.path.join(folder, f"{k}.tif") for k in ("out", "conf")}
    out["model"] = os.path.join(folder, "model.pt") if model else None
    result = noiserobust.run(
        noiserobust.Inputs(scene["cube"], scene["labels"], scene["confidence"],
                           kwargs.pop("mask", None)),
        out["out"], out["conf"], out["model"], schedule, "cpu", **kwargs)
    return out, result


def test_processing_outputs_grid_nodata_and_legend(provider, tmp_path):
    """ENVI input with a nodata hole; every output on the input's grid, legend carried."""
    import processing

    scene = write_labelled_scene(str(tmp_path), rows=60, cols=70, bands=15)
    with rasterio.open(scene["cube"]) as ds:
        cube = ds.read()
    cube[:, 5:9, 10:20] = -1
    envi = write_envi(str(tmp_path / "scene.img"), cube, np.linspace(450, 2400, 15),
                      nodata=-1)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("classes", "conf")}
    model = str(tmp_path / "model.pt")
    texts = []
    feedback = _Feedback(texts)
    result = processing.run("special:noiserobust", {
        "INPUT": envi, "LABELS": scene["labels"], "CONFIDENCE": scene["confidence"],
        "EPOCHS": 2, "WARMUP_EPOCHS": 1, "ITERATIONS": 3, "SAMPLES_PER_CLASS": 100,
        "OUTPUT": out["classes"], "OUTPUT_CONFIDENCE": out["conf"], "OUTPUT_MODEL": model},
        feedback=feedback)
    assert result == {"OUTPUT": out["classes"], "OUTPUT_CONFIDENCE": out["conf"],
                      "OUTPUT_MODEL": model}
    labels, nodata = _read(out["classes"], (60, 70))
    conf, conf_nodata = _read(out["conf"], (60, 70))
    hole = np.zeros((60, 70), bool)
    hole[5:9, 10:20] = True
    assert nodata == 0 and labels.dtype == np.uint8
    assert (labels[hole] == 0).all() and set(np.unique(labels[~hole])) <= {1, 2, 3, 4}
    assert np.isnan(conf_nodata) and np.isnan(conf[hole]).all()
    assert (conf[~hole] >= 0).all() and (conf[~hole] <= 1).all()
    names, rgb = classes.read_class_metadata(out["classes"])
    assert names == ["class A", "class B", "class C", "class D"]
    assert rgb[:4] == [tuple(c) for c in classes.colours(4)]
    # SPECTRAL_PRIOR left out (as in 0.2.x scripts and models): its default applies.
    from special_qgis.core.hsi_net import StageIIModel

    saved = StageIIModel.load(model)
    assert saved.info["spectral_prior"] == 1.0 and saved.prior_weight.shape == (4, 15)
    # The bar moves every iteration (2 epochs × 3) and every tile.
    assert len(set(texts)) >= 2 * 3 + 1 and max(texts) == pytest.approx(100.0)
    # SPECTRAL_PRIOR=0: the network alone.
    processing.run("special:noiserobust", {
        "INPUT": envi, "LABELS": scene["labels"], "CONFIDENCE": scene["confidence"],
        "EPOCHS": 2, "WARMUP_EPOCHS": 1, "ITERATIONS": 1, "SAMPLES_PER_CLASS": 100,
        "SPECTRAL_PRIOR": 0, "OUTPUT": str(tmp_path / "c0.tif"),
        "OUTPUT_CONFIDENCE": str(tmp_path / "k0.tif"), "OUTPUT_MODEL": str(tmp_path / "m0.pt")})
    assert StageIIModel.load(str(tmp_path / "m0.pt")).prior_weight is None


class _Feedback:
    """A QgsProcessingFeedback that records the progress values."""

    def __new__(cls, values):
        from qgis.core import QgsProcessingFeedback

        feedback = QgsProcessingFeedback()
        feedback.progressChanged.connect(values.append)
        return feedback


def test_no_ground_truth_parameter_and_reference_files_change_nothing(provider, tmp_path):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("special:noiserobust")
    names = {p.name() for p in alg.parameterDefinitions()}
    assert names == {"INPUT", "LABELS", "CONFIDENCE", "EPOCHS", "WARMUP_EPOCHS", "ITERATIONS",
                     "SAMPLES_PER_CLASS", "LEARNING_RATE", "SEED", "SPECTRAL_PRIOR",
                     "CLASS_PRIORS", "SMOOTHING_RADIUS", "DEVICE", "MASK", "BAD_BANDS",
                     "OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_MODEL"}
    plain, with_truth = tmp_path / "plain", tmp_path / "truth"
    plain.mkdir()
    scene = write_labelled_scene(str(plain), rows=48, cols=48, bands=10)
    shutil.copytree(plain, with_truth, dirs_exist_ok=True)
    moved = {k: str(with_truth / os.path.basename(v)) for k, v in scene.items()
             if isinstance(v, str)}
    # A ground-truth raster next to the inputs, under names a tool might look for.
    for name in ("truth.tif", "reference.tif", "gt.tif", "labels_gt.tif"):
        write_gtiff(str(with_truth / name), scene["truth"][None].astype("uint8"), nodata=0)
    a, _ = _run(scene, str(plain))
    b, _ = _run(moved, str(with_truth))
    for key in ("out", "conf"):
        np.testing.assert_array_equal(_read(a[key], (48, 48))[0], _read(b[key], (48, 48))[0])


def test_same_seed_same_map_other_seed_other_map(tmp_path):
    scene = write_labelled_scene(str(tmp_path), rows=48, cols=40, bands=10)
    runs = []
    for i, seed in enumerate((7, 7, 8)):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        schedule = noiserobust.Schedule(**{**FAST.__dict__, "seed": seed})
        out, _ = _run(scene, str(folder), schedule)
        runs.append(_read(out["conf"], (48, 40))[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_mask_and_unlabelled_pixels_are_not_trained_on(tmp_path):
    """Pixels outside MASK and pixels labelled 0 never enter training: changing their
    labels or confidence changes nothing."""
    scene = write_labelled_scene(str(tmp_path), rows=48, cols=48, bands=10)
    mask = np.ones((1, 48, 48), "uint8")
    mask[0, :, :20] = 0
    scene["mask"] = write_gtiff(str(tmp_path / "mask.tif"), mask)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    other = dict(scene)
    labels = scene["pseudo"].copy()
    labels[:, :20] = 1  # only under the mask
    labels[40:, 30:] = 0  # unlabelled
    base = labels.copy()
    other["labels"] = str(b_dir / "labels.tif")
    write_gtiff(other["labels"], labels[None].astype("uint8"), nodata=0)
    classes.write_class_metadata(other["labels"], ["class A", "class B", "class C", "class D"])
    with rasterio.open(scene["confidence"]) as ds:
        conf = ds.read()
    conf[0, 40:, 30:] = np.where(conf[0, 40:, 30:] > 0.5, 0.0, 1.0)
    other["confidence"] = write_gtiff(str(b_dir / "confidence.tif"), conf)
    base[:, :20] = 4
    scene["labels"] = str(a_dir / "labels.tif")
    write_gtiff(scene["labels"], base[None].astype("uint8"), nodata=0)
    classes.write_class_metadata(scene["labels"], ["class A", "class B", "class C", "class D"])
    a, _ = _run(scene, str(a_dir), mask=scene["mask"], model=False)
    b, _ = _run(other, str(b_dir), mask=scene["mask"], model=False)
    np.testing.assert_array_equal(_read(a["conf"], (48, 48))[0], _read(b["conf"], (48, 48))[0])
    assert (_read(a["out"], (48, 48))[0] > 0).all()  # the map covers masked pixels too


def test_chipped_cache_and_tiled_prediction(tmp_path):
    """A scene larger than the training cache (trained on chips) and predicted in small
    tiles gives the same map as one big tile."""
    scene = write_labelled_scene(str(tmp_path), rows=300, cols=140, bands=8)
    schedule = noiserobust.Schedule(**{**FAST.__dict__, "cache_bytes": 256 * 256 * 4 * 8,
                                       "predict_tile": 64})
    out, result = _run(scene, str(tmp_path), schedule)
    big = {k: str(tmp_path / f"big_{k}.tif") for k in ("out", "conf")}
    noiserobust.apply_model(scene["cube"], out["model"], big["out"], big["conf"], "cpu",
                            tile=1024)
    conf_small, conf_big = _read(out["conf"], (300, 140))[0], _read(big["conf"], (300, 140))[0]
    np.testing.assert_allclose(conf_small, conf_big, atol=1e-5)
    same = _read(out["out"], (300, 140))[0] == _read(big["out"], (300, 140))[0]
    assert same.mean() > 0.999  # argmax may flip only where two classes tie to 1e-5


def test_applymodel_on_a_second_scene(provider, tmp_path):
    import processing

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    scene = write_labelled_scene(str(first), rows=64, cols=64, bands=12, seed=1)
    out, _ = _run(scene, str(first))
    other = write_labelled_scene(str(second), rows=40, cols=52, bands=12, seed=1)
    with rasterio.open(other["cube"]) as ds:
        cube = ds.read()
    cube[:, :4, :4] = np.nan
    src = write_gtiff(str(second / "nan.tif"), cube, np.linspace(450, 2400, 12))
    res = processing.run("special:applymodel", {
        "INPUT": src, "MODEL": out["model"], "OUTPUT": str(second / "c.tif"),
        "OUTPUT_CONFIDENCE": str(second / "p.tif")})
    labels, _ = _read(res["OUTPUT"], (40, 52))
    conf, _ = _read(res["OUTPUT_CONFIDENCE"], (40, 52))
    assert (labels[:4, :4] == 0).all() and np.isnan(conf[:4, :4]).all()
    assert (labels[4:] > 0).all()
    names, _ = classes.read_class_metadata(res["OUTPUT"])
    assert names == ["class A", "class B", "class C", "class D"]


def test_separable_scene_with_clustered_noise_beats_its_labels(tmp_path):
    """30 % of whole fields wrongly labelled: the map must be far more accurate than the
    labels it was trained on (checked against the known truth)."""
    scene = write_labelled_scene(str(tmp_path), rows=96, cols=96, bands=20, wrong=0.3,
                                 seed=3)
    label_oa = (scene["pseudo"] == scene["truth"]).mean()
    assert 0.6 < label_oa < 0.8
    schedule = noiserobust.Schedule(epochs=6, warmup_epochs=3, iterations=10)
    out, _ = _run(scene, str(tmp_path), schedule, model=False)
    oa = (_read(out["out"], (96, 96))[0] == scene["truth"]).mean()
    assert oa > label_oa + 0.15, (oa, label_oa)


def test_progress_goes_to_one_and_history_is_per_epoch(tmp_path):
    scene = write_labelled_scene(str(tmp_path), rows=40, cols=40, bands=6)
    seen = []
    _, result = _run(scene, str(tmp_path), model=False,
                     progress=Progress(lambda f, t: seen.append(f)))
    assert seen == sorted(seen) and len(seen) > 3 * 4
    assert seen[-1] == pytest.approx(1.0)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]


def test_kept_model_is_the_average_of_the_robust_phase(tmp_path):
    """The saved network is the running mean of the weights (and batch-norm statistics)
    after every robust-phase iteration; warm-up iterations are not in it."""
    import torch

    from special_qgis.core.hsi_net import StageIIModel

    scene = write_labelled_scene(str(tmp_path), rows=40, cols=40, bands=6)
    schedule = noiserobust.Schedule(epochs=4, warmup_epochs=1, iterations=1,
                                    samples_per_class=100)
    snapshots = []  # one iteration per epoch: the state after each iteration

    def keep(epoch, trainer):
        snapshots.append({k: v.detach().clone().double()
                          for k, v in trainer.network.state_dict().items()})

    out, _ = _run(scene, str(tmp_path), schedule, on_epoch=keep)
    saved = StageIIModel.load(out["model"]).network.state_dict()
    robust = snapshots[schedule.warmup_epochs:]
    floats = [name for name, value in saved.items() if value.dtype.is_floating_point]
    assert len(floats) > 10
    for name in floats:
        expected = torch.stack([s[name] for s in robust]).mean(0)
        torch.testing.assert_close(saved[name].double(), expected, rtol=1e-5, atol=1e-6)
    # not simply the last iterate
    assert any(not torch.allclose(saved[n].double(), robust[-1][n]) for n in floats)


def test_qgis_process_noiserobust(qgis_process, tmp_path):
    scene = write_labelled_scene(str(tmp_path), rows=40, cols=40, bands=8)
    res = qgis_process("run", "special:noiserobust", "--", f"INPUT={scene['cube']}",
                       f"LABELS={scene['labels']}", f"CONFIDENCE={scene['confidence']}",
                       "EPOCHS=2", "WARMUP_EPOCHS=1", "ITERATIONS=2",
                       f"OUTPUT={tmp_path / 'o.tif'}", f"OUTPUT_CONFIDENCE={tmp_path / 'c.tif'}")
    assert res.returncode == 0, res.stdout + res.stderr
    _read(str(tmp_path / "o.tif"), (40, 40))
    assert (tmp_path / "o.qml").exists()


def test_outputs_load_styled(provider, tmp_path, qgis_new_project):
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProject

    scene = write_labelled_scene(str(tmp_path), rows=32, cols=32, bands=6)
    processing.runAndLoadResults("special:noiserobust", {
        "INPUT": scene["cube"], "LABELS": scene["labels"], "CONFIDENCE": scene["confidence"],
        "EPOCHS": 1, "WARMUP_EPOCHS": 0, "ITERATIONS": 1,
        "OUTPUT": str(tmp_path / "o.tif"), "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")})
    loaded = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
    renderer = loaded["Classes"].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()] == ["class A", "class B", "class C",
                                                     "class D"]
    assert loaded["Confidence"].renderer().type() == "singlebandpseudocolor"


def test_wavelengths_checked_by_applymodel(tmp_path):
    scene = write_labelled_scene(str(tmp_path), rows=32, cols=32, bands=6)
    out, _ = _run(scene, str(tmp_path))
    shifted = write_gtiff(str(tmp_path / "shift.tif"), make_cube(6, 20, 20),
                          np.linspace(450, 2400, 6) + 5)
    with pytest.raises(noiserobust.UserInputError, match="band 1 .* 455.0 nm"):
        noiserobust.apply_model(shifted, out["model"], str(tmp_path / "x.tif"),
                                str(tmp_path / "y.tif"), "cpu")
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("ratio", [1.0, 2.5])
def test_spectral_prior_is_scaled_to_the_networks_margin(tmp_path, ratio):
    """The saved model's prior, scored independently on the standardised scene: its median
    best-minus-second margin over the labelled pixels is SPECTRAL_PRIOR × the network's,
    and the map is the argmax of network logits plus prior."""
    import torch

    from special_qgis.core.hsi_net import StageIIModel

    scene = write_labelled_scene(str(tmp_path), rows=48, cols=48, bands=10)
    # Equal priors and no smoothing: the map is then the argmax of the scores.
    out, _ = _run(scene, str(tmp_path), noiserobust.Schedule(**{
        **FAST.__dict__, "spectral_prior": ratio, "class_priors": "equal",
        "smoothing_radius": 0}))
    model = StageIIModel.load(out["model"])
    assert model.prior_weight.shape == (4, 10) and model.info["spectral_prior"] == ratio
    with rasterio.open(scene["cube"]) as ds:
        raw = ds.read().astype(np.float64)
    x = (raw - model.stats.mean[:, None, None]) / model.stats.std[:, None, None]
    with torch.inference_mode():
        net = model.network.eval()(torch.from_numpy(x.astype(np.float32))[None])[0].numpy()
    prior = np.einsum("cb,bhw->chw", model.prior_weight, x) + model.prior_bias[:, None, None]

    def median_margin(scores):
        top = np.sort(scores.reshape(4, -1)[:, scene["pseudo"].ravel() > 0], axis=0)
        return np.median(top[-1] - top[-2])

    assert median_margin(prior) == pytest.approx(ratio * median_margin(net), rel=1e-3)
    got = _read(out["out"], (48, 48))[0]
    assert ((net + prior).argmax(0) + 1 == got).mean() > 0.999


def test_spectral_prior_zero_is_the_network_alone(tmp_path):
    import torch

    from special_qgis.core.hsi_net import StageIIModel

    scene = write_labelled_scene(str(tmp_path), rows=40, cols=40, bands=6)
    out, _ = _run(scene, str(tmp_path), noiserobust.Schedule(**{
        **FAST.__dict__, "spectral_prior": 0.0, "class_priors": "equal",
        "smoothing_radius": 0}))
    model = StageIIModel.load(out["model"])
    assert model.prior_weight is None and model.predictor() is model.network
    with rasterio.open(scene["cube"]) as ds:
        x = model.stats.apply(ds.read().astype(np.float32), np.zeros((40, 40), bool))
    with torch.inference_mode():
        net = model.network.eval()(torch.from_numpy(x)[None])[0].numpy()
    assert (net.argmax(0) + 1 == _read(out["out"], (40, 40))[0]).mean() > 0.999
    with pytest.raises(noiserobust.UserInputError, match="spectral prior"):
        noiserobust.Schedule(spectral_prior=-1).validate()
