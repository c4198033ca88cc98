"""Stage II's final map (core/final_map.py): the scene's class priors, the edge-aware
smoothing, and the raster path (two passes through a temporary file, in strips) against the
in-memory one."""

import os

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from special_qgis.core import noiserobust
from special_qgis.core.errors import UserInputError
from special_qgis.core.final_map import FinalMap, estimate_priors, finish, fit_guide
from special_qgis.core.hsi_net import BandStats, CubeReader, StageIIModel, build_network
from special_qgis.core.progress import as_progress
from special_qgis.core.scene import open_scene
from special_qgis.core.stage2.predict import predict_array, write_prediction

from rasters import write_gtiff


def smoothing(radius: int, priors: str = "equal") -> FinalMap:
    """Settings that smooth (the guide itself is passed to ``finish``)."""
    return FinalMap(priors, radius, 0.01, np.zeros((3, 1)), np.zeros(3))


def test_em_recovers_the_priors_of_a_known_mixture():
    """Three 1-D Gaussian classes drawn 70/25/5: posteriors computed exactly under equal
    priors; the EM must find the drawing shares (not the equal ones, nor the argmax counts)."""
    rng = np.random.default_rng(0)
    shares = np.array([0.70, 0.25, 0.05])
    means, sd = np.array([0.0, 1.5, 3.0]), 1.0
    cls = rng.choice(3, 200_000, p=shares)
    x = rng.normal(means[cls], sd)
    likelihood = np.exp(-0.5 * ((x[:, None] - means[None]) / sd) ** 2)
    posteriors = likelihood / likelihood.sum(1, keepdims=True)
    priors = estimate_priors(posteriors)
    np.testing.assert_allclose(priors, shares, atol=0.01)
    argmax_counts = np.bincount(posteriors.argmax(1), minlength=3) / len(x)
    assert np.abs(argmax_counts - shares).max() > 0.05  # the naive count is off


def test_priors_weight_the_probabilities():
    probs = np.array([[0.6, 0.4], [0.4, 0.6]], np.float32).T[:, :, None]  # (2, 2, 1)
    out = finish(probs, None, FinalMap("scene", 0), np.array([0.2, 0.8]))
    expected = probs * np.array([0.2, 0.8])[:, None, None]
    np.testing.assert_allclose(out, expected / expected.sum(0), rtol=1e-6)


def test_constant_guide_smooths_like_two_box_means():
    """With a flat guide the guided filter is the box mean of the box mean (He et al.)."""
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(40, 50)).transpose(2, 0, 1).astype(np.float32)
    guide = np.full((3, 40, 50), 0.5, np.float32)
    out = finish(probs, guide, smoothing(2), None)
    expected = ndimage.uniform_filter(ndimage.uniform_filter(probs, (1, 5, 5)), (1, 5, 5))
    np.testing.assert_allclose(out[:, 4:-4, 4:-4], expected[:, 4:-4, 4:-4], atol=1e-5)


def test_smoothing_stops_at_the_guides_edges():
    """Two regions of the guide; the probabilities favour class 1 on the left and class 2
    on the right, with salt noise. Smoothing removes the salt and keeps the border."""
    rng = np.random.default_rng(2)
    guide = np.zeros((3, 30, 30), np.float32)
    guide[:, :, 15:] = 1.0
    truth = np.where(np.arange(30) < 15, 0, 1)[None].repeat(30, 0)
    probs = np.stack([np.where(truth == 0, 0.7, 0.3), np.where(truth == 0, 0.3, 0.7)])
    salt = rng.random((30, 30)) < 0.1
    probs[:, salt] = probs[::-1][:, salt]
    out = finish(probs.astype(np.float32), guide, smoothing(2), None)
    assert (probs.argmax(0) != truth).sum() > 50
    np.testing.assert_array_equal(out.argmax(0), truth)
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)


def test_nodata_stays_nodata():
    probs = np.full((2, 8, 8), 0.5, np.float32)
    probs[:, 2:4, 2:4] = np.nan
    out = finish(probs, np.zeros((3, 8, 8), np.float32), smoothing(1, "scene"),
                 np.array([0.3, 0.7]))
    assert np.isnan(out[:, 2:4, 2:4]).all() and not np.isnan(out[:, 5:, 5:]).any()


def test_guide_spans_zero_to_one():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(5000, 4)) * [5, 3, 1, 0.5]
    components = np.linalg.qr(rng.normal(size=(6, 4)))[0].T  # (4, 6) orthonormal rows
    mean = rng.normal(size=6)
    weight, bias = fit_guide(components, mean, scores)
    pixels = scores @ components + mean  # back to "bands"
    guide = pixels @ weight.T + bias
    np.testing.assert_allclose(np.percentile(guide, [2, 98], axis=0),
                               [[0, 0, 0], [1, 1, 1]], atol=1e-6)


@pytest.fixture
def model_and_scene(tmp_path):
    """A model with random network weights (no training needed to compare the two paths)
    and a 300 × 70 scene: more rows than one strip of the second pass."""
    import torch

    torch.manual_seed(0)
    bands, classes = 6, 3
    rng = np.random.default_rng(4)
    cube = rng.normal(size=(bands, 300, 70)).astype(np.float32)
    cube[:, :, 35:] += 1.5
    cube[:, 10:14, 10:14] = np.nan
    path = write_gtiff(str(tmp_path / "cube.tif"), cube, np.linspace(450, 900, bands))
    weight = rng.normal(size=(3, bands)) * 0.2
    model = StageIIModel(build_network(bands, classes, 8).eval(),
                         BandStats(np.zeros(bands), np.ones(bands)), ["a", "b", "c"],
                         [(255, 0, 0), (0, 255, 0), (0, 0, 255)], None, 8,
                         final=FinalMap("scene", 2, 0.01, weight, np.full(3, 0.5)))
    return model, path, cube


def test_raster_path_equals_in_memory(model_and_scene, tmp_path):
    model, path, cube = model_and_scene
    out, conf = str(tmp_path / "map.tif"), str(tmp_path / "conf.tif")
    with open_scene(path) as src:
        write_prediction(model, CubeReader(src), src, "cpu", out, conf, 64, as_progress(None))
    invalid = np.isnan(cube).any(0)
    probs = predict_array(model, np.nan_to_num(cube), invalid, "cpu", 64)
    with rasterio.open(out) as ds:
        labels = ds.read(1)
    expected = np.where(invalid, 0, np.nan_to_num(probs).argmax(0) + 1)
    assert (labels == expected).mean() > 0.999
    assert (labels[invalid] == 0).all()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".partial")]


def test_model_file_records_the_final_map(model_and_scene, tmp_path):
    model, _, _ = model_and_scene
    model.save(str(tmp_path / "m.pt"))
    back = StageIIModel.load(str(tmp_path / "m.pt"))
    assert (back.final.class_priors, back.final.smoothing_radius) == ("scene", 2)
    np.testing.assert_allclose(back.final.guide_weight, model.final.guide_weight)


def test_old_model_files_keep_their_map(model_and_scene, tmp_path):
    """A file from before the final map (no "final_map" entry) makes the map it made then:
    equal priors, no smoothing."""
    import torch

    model, _, _ = model_and_scene
    model.save(str(tmp_path / "m.pt"))
    state = torch.load(str(tmp_path / "m.pt"), weights_only=True)
    del state["final_map"]
    torch.save(state, str(tmp_path / "old.pt"))
    back = StageIIModel.load(str(tmp_path / "old.pt"))
    assert back.final is None
    cube = np.random.default_rng(5).normal(size=(6, 20, 20)).astype(np.float32)
    probs = predict_array(back, cube, np.zeros((20, 20), bool), "cpu", 64)
    back.final = FinalMap()
    np.testing.assert_array_equal(probs, predict_array(back, cube, np.zeros((20, 20), bool),
                                                       "cpu", 64))


@pytest.mark.parametrize("changes, name", [({"class_priors": "balanced"}, "CLASS_PRIORS"),
                                           ({"smoothing_radius": -1}, "SMOOTHING_RADIUS")])
def test_bad_settings_are_named(changes, name):
    with pytest.raises(UserInputError, match=name):
        noiserobust.Schedule(**changes).validate()
