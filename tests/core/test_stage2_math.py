"""Stage II's schedule, piece by piece, against independent computations."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from special_qgis.core import noiserobust as nr
from special_qgis.core.hsi_net import HALO, BandStats, StageIIModel, build_network, predict_tiles

from conftest import REPO


def test_random_set_is_drawn_in_proportion_to_confidence():
    labels = np.array([1, 1, 1, 2, 2, 2, 2])
    confidence = np.array([0.1, 0.2, 0.7, 0.5, 0.5, 0.0, 0.9])
    eligible = np.array([True, True, True, True, True, True, False])
    rng = np.random.default_rng(0)
    counts = np.zeros(7)
    draws = 20000
    for _ in range(draws):
        idx, cls = nr.sample_random_set(labels, confidence, eligible, 2, 1, rng)
        assert list(cls) == [0, 1]
        counts[idx] += 1
    expected = np.array([0.1, 0.2, 0.7, 0.5, 0.5, 0.0, 0.0]) * draws
    assert counts[5] == 0 and counts[6] == 0  # zero confidence, not eligible
    np.testing.assert_allclose(counts[:5], expected[:5], rtol=0.05)


def test_random_set_without_replacement_and_small_classes():
    rng = np.random.default_rng(1)
    labels = np.repeat([1, 2, 3], [1000, 40, 10])
    confidence = rng.uniform(0.01, 1, labels.size)
    idx, cls = nr.sample_random_set(labels, confidence, np.ones(labels.size, bool), 4, 100,
                                    rng)
    for c, n in ((0, 100), (1, 40), (2, 10)):  # a class with fewer pixels gives all of them
        mine = idx[cls == c]
        assert len(mine) == n and len(set(mine)) == n
        assert (labels[mine] == c + 1).all()
    assert not (cls == 3).any()


def test_gmm_split_takes_the_highest_and_lowest_components():
    rng = np.random.default_rng(2)
    low, mid, high = (rng.normal(m, 0.03, n) for m, n in ((0.1, 300), (0.5, 500), (0.9, 200)))
    margins = np.concatenate([low, mid, high])
    order = rng.permutation(margins.size)
    confident, hard = nr.gmm_split(margins[order], seed=0)
    truth_high = np.zeros(margins.size, bool)
    truth_high[800:] = True
    truth_low = np.zeros(margins.size, bool)
    truth_low[:300] = True
    np.testing.assert_array_equal(confident, truth_high[order])
    np.testing.assert_array_equal(hard, truth_low[order])
    # Too few pixels to fit three components: no sets.
    c, h = nr.gmm_split(np.array([0.2, 0.9]), 0)
    assert not c.any() and not h.any()


def test_soft_targets_use_one_pooled_covariance():
    """Every class's Gaussian has the pooled within-class covariance; the soft targets are
    its normalised posteriors, and class sizes do not act as priors."""
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 2, (3, 6))
    classes = np.repeat([0, 1, 2], [300, 120, 60])
    mixing = rng.normal(0, 1, (6, 6))
    feats = centres[classes] + rng.normal(0, 1, (480, 6)) @ mixing
    model = nr.GaussianSoftTargets(4).fit(feats, classes)  # class 3 empty
    query = rng.normal(0, 3, (40, 6))
    soft = model.soft_targets(query)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
    assert (soft[:, 3] == 0).all()
    means = [feats[classes == c].mean(0) for c in range(3)]
    scatter = sum(np.outer(x - means[c], x - means[c]) for x, c in zip(feats, classes, strict=True))
    pooled = scatter / (len(feats) - 3)
    pooled += np.eye(6) * 1e-3 * np.trace(pooled) / 6
    dens = np.array([multivariate_normal(m, pooled).logpdf(query) for m in means]).T
    expected = np.exp(dens - dens.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(soft[:, :3], expected, atol=1e-5)


def _log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def test_loss_weights():
    rng = np.random.default_rng(4)
    lr, lh, lc = (rng.normal(size=(n, 5)) for n in (7, 4, 6))
    tr = rng.integers(0, 5, 7)
    sh, sc = (rng.dirichlet(np.ones(5), n) for n in (4, 6))
    expected = (-_log_softmax(lr)[np.arange(7), tr].mean()
                + 0.1 * -(sh * _log_softmax(lh)).sum(1).mean()
                + 1.0 * -(sc * _log_softmax(lc)).sum(1).mean())
    t = torch.from_numpy
    got = nr.schedule_loss(t(lr), t(tr), t(lh), t(sh), t(lc), t(sc))
    assert float(got) == pytest.approx(expected, rel=1e-10)
    # Empty hard and confident sets (warm-up): the random set alone.
    only = nr.schedule_loss(t(lr), t(tr), t(lh[:0]), t(sh[:0]), None, None)
    assert float(only) == pytest.approx(-_log_softmax(lr)[np.arange(7), tr].mean(), rel=1e-10)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_augmentation_round_trip(k, flip):
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    y = nr.augment(x, k, flip)
    expected = np.rot90(x.numpy(), k, axes=(2, 3))
    if flip:
        expected = expected[..., ::-1]
    np.testing.assert_array_equal(y.numpy(), expected)
    assert torch.equal(nr.unaugment(y, k, flip), x)


def _trained_like_network(bands, classes, seed=0):
    torch.manual_seed(seed)
    net = build_network(bands, classes)
    net.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(3):
            net(torch.randn(2, bands, 20, 20) * 2 + 0.5)
    return net.eval()


@pytest.mark.parametrize("shape", [(101, 87), (64, 64)])
def test_tiled_prediction_equals_whole_scene(shape):
    rng = np.random.default_rng(5)
    cube = rng.normal(size=(9,) + shape).astype(np.float32)
    net = _trained_like_network(9, 4)
    with torch.inference_mode():
        whole = torch.softmax(net(torch.from_numpy(cube)[None])[0], 0).numpy()
    out = np.full((4,) + shape, np.nan, np.float32)
    for (y0, y1, x0, x1), probs in predict_tiles(
            net, lambda a, b, c, d: cube[:, a:b, c:d], shape, "cpu", tile=30):
        out[:, y0:y1, x0:x1] = probs
    np.testing.assert_allclose(out, whole, atol=2e-5)
    # The halo is what makes it exact: without it, tile borders differ.
    rough = np.empty_like(out)
    for (y0, y1, x0, x1), probs in predict_tiles(
            net, lambda a, b, c, d: cube[:, a:b, c:d], shape, "cpu", tile=30, halo=0):
        rough[:, y0:y1, x0:x1] = probs
    assert np.abs(rough - whole).max() > 1e-3
    assert HALO % 2 == 0


def test_network_any_band_count_and_odd_sizes():
    net = _trained_like_network(3, 2)
    assert net(torch.zeros(1, 3, 7, 5)).shape == (1, 2, 7, 5)
    net = _trained_like_network(224, 17)
    assert net(torch.zeros(1, 224, 10, 12)).shape == (1, 17, 10, 12)


def test_model_file_round_trip(tmp_path):
    net = _trained_like_network(6, 3)
    stats = BandStats(np.arange(6.0), np.linspace(1, 2, 6))
    model = StageIIModel(net, stats, ["a", "b", "c"], [(1, 2, 3), (4, 5, 6), (7, 8, 9)],
                         np.linspace(400, 900, 6))
    model.save(str(tmp_path / "m.pt"))
    back = StageIIModel.load(str(tmp_path / "m.pt"))
    x = torch.randn(1, 6, 16, 16)
    with torch.inference_mode():
        assert torch.equal(back.network(x), net(x))
    assert back.class_names == ["a", "b", "c"] and back.colours[2] == (7, 8, 9)
    import re
    from pathlib import Path

    metadata = (Path(REPO) / "metadata.txt").read_text()
    assert back.info["special_qgis_version"] == re.search(r"^version=(\S+)", metadata,
                                                          re.M).group(1)
    np.testing.assert_array_equal(back.stats.mean, stats.mean)
    np.testing.assert_array_equal(back.wavelengths_nm, np.linspace(400, 900, 6))


def test_band_standardisation():
    rng = np.random.default_rng(6)
    values = rng.normal([[5.0], [-2.0], [7.0]], [[2.0], [0.5], [0.0]], (3, 1000))
    stats = BandStats.from_samples(values)
    block = values[:, :20].reshape(3, 4, 5)
    invalid = np.zeros((4, 5), bool)
    invalid[0, 0] = True
    out = stats.apply(block, invalid)
    expected = (block - values.mean(1)[:, None, None]) / np.array([values[0].std(),
                                                                    values[1].std(),
                                                                    1.0])[:, None, None]
    expected[:, 0, 0] = 0
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_random_set_pool_keeps_the_most_confident_fraction():
    rng = np.random.default_rng(7)
    conf = {0: rng.uniform(0, 1, 5000), 1: rng.beta(2, 5, 300), 2: rng.uniform(0, 1, 40)}
    hist = np.zeros((4, 1000), np.int64)  # class 3 has no pixels
    for c, v in conf.items():
        hist[c] = np.histogram(v, bins=1000, range=(0, 1))[0]
    thresholds = noiserobust_pool(hist)
    # Class 0: a fifth of 5000 → at least 1000 pixels kept, and not more than one bin's
    # worth beyond the exact 80 % quantile.
    kept = (conf[0] >= thresholds[0]).sum()
    assert 1000 <= kept <= 1000 + (np.abs(conf[0] - np.quantile(conf[0], 0.8)) < 1e-3).sum()
    assert (conf[1] >= thresholds[1]).sum() >= 100  # SAMPLES_PER_CLASS wins over 20 % of 300
    assert (conf[1] >= thresholds[1]).sum() < 300
    assert (conf[2] >= thresholds[2]).all()  # fewer than 100 pixels: all of them
    assert thresholds[3] == 0.0


def noiserobust_pool(hist):
    return nr.pool_thresholds(hist, fraction=0.2, minimum=100)


def test_linear_logits_give_the_soft_targets():
    """With one pooled covariance the Gaussians' log-likelihoods are affine in the
    features up to a per-pixel constant: the affine scores give the same posteriors."""
    rng = np.random.default_rng(8)
    classes = np.repeat([0, 1, 3], [200, 80, 50])  # class 2 has no pixels
    feats = rng.normal(0, 2, (4, 7))[classes] + rng.normal(0, 1, (330, 7)) @ rng.normal(
        0, 1, (7, 7))
    model = nr.GaussianSoftTargets(4).fit(feats, classes)
    weights, biases = model.linear_logits()
    query = rng.normal(0, 3, (60, 7))
    scores = query @ weights.T + biases
    np.testing.assert_allclose(np.exp(_log_softmax(scores)), model.soft_targets(query),
                               atol=1e-6)
    assert (scores[:, 2] < scores.max(1) - 1e3).all()


def test_prior_adds_a_linear_term_and_round_trips(tmp_path):
    from special_qgis.core.hsi_net import with_prior

    rng = np.random.default_rng(9)
    net = _trained_like_network(6, 3)
    weight, bias = rng.normal(size=(3, 6)), rng.normal(size=3)
    x = rng.normal(size=(1, 6, 11, 13)).astype(np.float32)
    with torch.inference_mode():
        got = with_prior(net, weight, bias)(torch.from_numpy(x))[0].numpy()
        alone = net(torch.from_numpy(x))[0].numpy()
    expected = alone + np.einsum("cb,bhw->chw", weight, x[0]) + bias[:, None, None]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    model = StageIIModel(net, BandStats(np.zeros(6), np.ones(6)), ["a", "b", "c"],
                         [(1, 2, 3)] * 3, None, prior_weight=weight, prior_bias=bias)
    model.save(str(tmp_path / "m.pt"))
    back = StageIIModel.load(str(tmp_path / "m.pt"))
    np.testing.assert_allclose(back.prior_weight, weight)
    with torch.inference_mode():
        np.testing.assert_allclose(back.predictor()(torch.from_numpy(x))[0].numpy(), got,
                                   atol=1e-5)
    # A prior that does not fit the network's classes and bands: a damaged file.
    torch.save({**torch.load(str(tmp_path / "m.pt"), weights_only=True),
                "prior_weight": torch.zeros(2, 6, dtype=torch.float64)}, str(tmp_path / "b.pt"))
    with pytest.raises(nr.UserInputError, match="damaged or incomplete"):
        StageIIModel.load(str(tmp_path / "b.pt"))


def test_teacher_with_fewer_than_two_classes_is_not_fitted():
    """An untrained network may put its confident sets in one class (or none): the teacher
    is then not fitted (no soft targets that epoch) instead of failing."""
    feats = np.random.default_rng(0).normal(size=(50, 4))
    assert not nr.GaussianSoftTargets(3).fit(feats, np.zeros(50, int)).fitted
    assert not nr.GaussianSoftTargets(3).fit(feats[:0], np.zeros(0, int)).fitted
