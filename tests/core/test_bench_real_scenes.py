"""bench/real_scenes.py, the stage II benchmark's scenes of real labelled EnMAP spectra:
deterministic, imbalanced like real scenes, and with the label noise it claims. Skipped
where the Berlin data (../shared/data/enmap_berlin or $SPECIAL_BERLIN_DATA) is absent:
the project may not ship it."""

import os
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))

real_scenes = pytest.importorskip("real_scenes")
if not (real_scenes.data_dir() / "classification_dataset.gpkg").is_file():
    pytest.skip("the Berlin EnMAP data is not on this machine", allow_module_level=True)


@pytest.fixture(scope="module")
def scene():
    return real_scenes.make_real_scene(3, 128, 128)


def test_same_seed_same_scene(scene):
    again = real_scenes.make_real_scene(3, 128, 128)
    for name in ("cube", "truth", "pseudo_labels", "confidence"):
        np.testing.assert_array_equal(getattr(scene, name), getattr(again, name))


def test_real_bands_and_classes(scene):
    assert scene.cube.shape == (177, 128, 128) and scene.cube.dtype == np.float32
    assert np.all(np.diff(scene.wavelengths_nm) > 0)
    assert 400 < scene.wavelengths_nm[0] < 500 and 2300 < scene.wavelengths_nm[-1] < 2500
    assert len(scene.class_names) == 6 and "water" in scene.class_names
    # Reflectance of vegetation: the red edge (NIR well above red) in the mean tree pixel.
    tree = scene.class_names.index("tree") + 1
    mean = scene.cube[:, scene.truth == tree].mean(1)
    red = mean[np.argmin(np.abs(scene.wavelengths_nm - 660))]
    nir = mean[np.argmin(np.abs(scene.wavelengths_nm - 850))]
    assert 0.0 < red < 0.2 < nir < 0.7


def test_class_shares_are_imbalanced(scene):
    shares = np.bincount(scene.truth.ravel(), minlength=7)[1:] / scene.truth.size
    assert shares.max() > 0.25 and (shares < 0.05).sum() >= 2 and (shares > 0).all()


def test_pseudo_labels_have_the_claimed_noise(scene):
    wrong = scene.pseudo_labels != scene.truth
    assert abs(wrong.mean() - 0.3) < 0.01
    assert scene.confidence[~wrong].mean() > scene.confidence[wrong].mean()
