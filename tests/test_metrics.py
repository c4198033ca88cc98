"""Accuracy metrics against scikit-learn's independent implementations."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion

from special_qgis.core import metrics


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 6, (50, 40))
    predicted = np.where(rng.random((50, 40)) < 0.7, reference, rng.integers(0, 6, (50, 40)))
    acc = metrics.assess(reference, predicted, 5)
    used = (reference > 0) & (predicted > 0)
    r, p = reference[used], predicted[used]
    np.testing.assert_array_equal(acc.confusion, sk_confusion(r, p, labels=[1, 2, 3, 4, 5]))
    assert acc.overall == pytest.approx((r == p).mean())
    assert acc.average == pytest.approx(balanced_accuracy_score(r, p))
    assert acc.kappa == pytest.approx(cohen_kappa_score(r, p))


def test_perfect_and_empty():
    labels = np.array([1, 2, 2, 3])
    acc = metrics.assess(labels, labels, 3)
    assert (acc.overall, acc.average, acc.kappa) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        metrics.assess(np.zeros(4, int), labels, 3)
