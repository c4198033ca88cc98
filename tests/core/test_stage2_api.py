"""Stage II on arrays: NoiseRobustClassifier's fit / predict_proba / predict / save / load,
its checks, and its agreement with the raster algorithm special:noiserobust."""

import dataclasses
import os

import numpy as np
import pytest
import rasterio

from special_qgis.core import noiserobust
from special_qgis.core.errors import UserInputError
from special_qgis.core.stage2 import NoiseRobustClassifier, Schedule

from rasters import write_labelled_scene

# Threads are fixed: PyTorch sums in another order on another thread count.
QUICK = Schedule(epochs=3, warmup_epochs=1, iterations=6, samples_per_class=100)


def _scene(seed=0, rows=48, cols=48, bands=10, n_classes=3, block=8):
    """Square fields of well separated spectra; labels right on 90 % of the fields."""
    rng = np.random.default_rng(seed)
    fields = rng.integers(1, n_classes + 1, size=(-(-rows // block), -(-cols // block)))
    truth = np.kron(fields, np.ones((block, block), int))[:rows, :cols]
    means = rng.random((n_classes, bands))
    cube = (means[truth - 1].transpose(2, 0, 1)
            + rng.normal(0, 0.05, (bands, rows, cols))).astype(np.float32)
    labels = truth.copy()
    wrong = np.kron(rng.random(fields.shape) < 0.1, np.ones((block, block), bool))[:rows, :cols]
    labels[wrong] = labels[wrong] % n_classes + 1
    confidence = np.where(wrong, 0.3, 0.8).astype(np.float32)
    cube[:, :3, :3] = np.nan  # a nodata corner
    return cube, labels.astype(np.uint8), confidence, truth


@pytest.fixture(scope="module")
def fitted():
    cube, labels, confidence, truth = _scene()
    clf = NoiseRobustClassifier(QUICK, device="cpu", threads=1).fit(
        cube, labels, confidence, class_names=["water", "trees", "roofs"])
    return clf, cube, labels, confidence, truth


def test_fit_predicts_separable_classes(fitted):
    clf, cube, labels, _, truth = fitted
    pred = clf.predict(cube)
    assert pred.shape == truth.shape and pred.dtype == np.uint8
    valid = np.isfinite(cube).all(0)
    assert (pred[~valid] == 0).all()
    noisy = np.mean(labels[valid] == truth[valid])  # 10 % of the fields are mislabelled
    assert np.mean(pred[valid] == truth[valid]) > max(0.95, noisy)
    assert list(clf.classes_) == [1, 2, 3]
    assert clf.class_names_ == ["water", "trees", "roofs"]
    assert len(clf.history_) == QUICK.epochs


def test_predict_proba_rows_sum_to_one(fitted):
    clf, cube, *_ = fitted
    probs = clf.predict_proba(cube)
    assert probs.shape == (3,) + cube.shape[1:] and probs.dtype == np.float32
    valid = np.isfinite(cube).all(0)
    np.testing.assert_allclose(probs[:, valid].sum(0), 1.0, atol=1e-5)
    assert np.isnan(probs[:, ~valid]).all()
    np.testing.assert_array_equal(clf.predict(cube)[valid], probs[:, valid].argmax(0) + 1)


def test_save_load_round_trip(fitted, tmp_path):
    clf, cube, *_ = fitted
    path = str(tmp_path / "model.pt")
    clf.save(path)
    again = NoiseRobustClassifier.load(path, device="cpu", threads=1)
    np.testing.assert_array_equal(again.predict_proba(cube), clf.predict_proba(cube))
    assert again.class_names_ == ["water", "trees", "roofs"]
    # The file is the one special:applymodel reads.
    assert noiserobust.StageIIModel.load(path).class_names == ["water", "trees", "roofs"]


def test_seed_repeats_and_another_seed_differs(fitted):
    clf, cube, labels, confidence, _ = fitted
    same = NoiseRobustClassifier(QUICK, device="cpu", threads=1).fit(cube, labels, confidence)
    np.testing.assert_array_equal(same.predict_proba(cube), clf.predict_proba(cube))
    other = NoiseRobustClassifier(Schedule(**{**QUICK.__dict__, "seed": 1}), "cpu", 1)
    other.fit(cube, labels, confidence)
    assert not np.array_equal(other.predict_proba(cube), clf.predict_proba(cube))


def test_mask_and_unlabelled_pixels_are_left_out():
    cube, labels, confidence, _ = _scene(seed=2)
    mask = np.ones(labels.shape, bool)
    mask[:, 24:] = False
    clf = NoiseRobustClassifier(QUICK, device="cpu", threads=1).fit(cube, labels, confidence, mask)
    changed = labels.copy()
    changed[:, 24:] = 0  # what the mask leaves out does not matter, whatever it says
    again = NoiseRobustClassifier(QUICK, device="cpu", threads=1).fit(cube, changed, confidence)
    np.testing.assert_array_equal(clf.predict_proba(cube), again.predict_proba(cube))


def test_bad_shapes_and_values_are_clear_errors(fitted):
    clf, cube, labels, confidence, _ = fitted
    fresh = NoiseRobustClassifier(QUICK, device="cpu", threads=1)
    with pytest.raises(ValueError, match=r"\(bands, rows, cols\)"):
        fresh.fit(cube[0], labels, confidence)
    with pytest.raises(ValueError, match="labels must be a .* of shape"):
        fresh.fit(cube, labels[:-1], confidence)
    with pytest.raises(ValueError, match="confidence must be a"):
        fresh.fit(cube, labels, confidence[None])
    with pytest.raises(ValueError, match="mask must be a"):
        fresh.fit(cube, labels, confidence, mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="whole numbers"):
        fresh.fit(cube, labels.astype(float), confidence)
    with pytest.raises(UserInputError, match="negative"):
        fresh.fit(cube, np.where(labels == 1, -1, labels), confidence)
    with pytest.raises(UserInputError, match="value 2 at a labelled pixel"):
        fresh.fit(cube, labels, confidence * 0 + 2)
    with pytest.raises(UserInputError, match="fewer than two classes"):
        fresh.fit(cube, np.ones_like(labels), confidence)
    with pytest.raises(UserInputError, match="EPOCHS"):
        NoiseRobustClassifier(Schedule(epochs=1, warmup_epochs=2)).fit(cube, labels,
                                                                        confidence)
    with pytest.raises(UserInputError, match="DEVICE"):
        NoiseRobustClassifier(QUICK, device="tpu").fit(cube, labels, confidence)
    with pytest.raises(UserInputError, match="threads"):
        NoiseRobustClassifier(QUICK, device="cpu", threads=1.5).fit(cube, labels, confidence)
    with pytest.raises(ValueError, match="not fitted"):
        fresh.predict(cube)
    with pytest.raises(ValueError, match="has 9 bands; the model was trained on 10"):
        clf.predict_proba(cube[:9])
    with pytest.raises(ValueError, match=r"\(bands, rows, cols\)"):
        clf.predict_proba(cube[0])


def test_same_model_as_the_raster_algorithm(tmp_path):
    """On a scene that fits the cache, arrays and rasters train the same network."""
    scene = write_labelled_scene(str(tmp_path), rows=40, cols=40, bands=8, n_classes=3)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("map", "conf")}
    noiserobust.run(noiserobust.Inputs(scene["cube"], scene["labels"], scene["confidence"]),
                    out["map"], out["conf"], None, QUICK, "cpu", threads=1)
    with rasterio.open(scene["cube"]) as ds:
        cube = ds.read()
    with rasterio.open(scene["labels"]) as ds:
        labels = ds.read(1)
    with rasterio.open(scene["confidence"]) as ds:
        confidence = ds.read(1)
    clf = NoiseRobustClassifier(QUICK, device="cpu", threads=1).fit(cube, labels, confidence)
    probs = clf.predict_proba(cube)
    with rasterio.open(out["map"]) as ds:
        np.testing.assert_array_equal(ds.read(1), clf.predict(cube))
    with rasterio.open(out["conf"]) as ds:
        top2 = np.sort(probs, axis=0)[-2:]
        np.testing.assert_array_equal(ds.read(1), top2[1] - top2[0])
    assert os.path.getsize(out["map"]) > 0


def test_research_switches_live_outside_the_product_schedule():
    """The benchmark's plain cross-entropy baseline is a field of its own Schedule subclass
    (bench/bench_stage2_quality.py), not of the product's; the trainer honours it: no robust
    phase (no confident or hard sets) and no spectral prior."""
    product = {f.name for f in dataclasses.fields(Schedule)}
    assert not product & {"plain_cross_entropy", "tied_covariance", "average_weights"}

    @dataclasses.dataclass
    class Experiment(Schedule):
        plain_cross_entropy: bool = False

    cube, labels, confidence, _ = _scene()
    refreshed = []
    clf = NoiseRobustClassifier(Experiment(plain_cross_entropy=True, **QUICK.__dict__),
                                device="cpu", threads=1)
    clf.fit(cube, labels, confidence,
            on_epoch=lambda epoch, trainer: refreshed.append(trainer.chips[0].soft is not None))
    assert clf.model_.prior_weight is None and refreshed == [False] * QUICK.epochs
