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


def test_unclassified_column_and_per_class_match_scikit_learn():
    """With ``unclassified``, reference pixels predicted 0 are errors (κ with label 0 of its
    own); producer's = recall, user's = precision, F1 = f1 (NaN where undefined)."""
    import warnings

    from sklearn.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(1)
    reference = rng.choice([0, 1, 2, 4], (40, 30))  # class 3 absent
    predicted = np.where(rng.random((40, 30)) < 0.6, reference, rng.choice([0, 1, 3, 4],
                                                                           (40, 30)))
    predicted[(reference == 2) & (predicted == 2)] = 4  # class 2 never predicted
    acc = metrics.assess(reference, predicted, 5, unclassified=True)
    used = reference > 0
    r, p = reference[used], predicted[used]
    labels = [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(acc.confusion, sk_confusion(r, p, labels=labels + [0])[:5])
    assert acc.unclassified == int((p == 0).sum()) > 0
    assert acc.overall == pytest.approx((r == p).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert acc.average == pytest.approx(balanced_accuracy_score(r, p))
    assert acc.kappa == pytest.approx(cohen_kappa_score(r, p, labels=[0] + labels))
    nan = {"labels": labels, "average": None, "zero_division": np.nan}
    np.testing.assert_allclose(acc.producers, recall_score(r, p, **nan), equal_nan=True)
    np.testing.assert_allclose(acc.users, precision_score(r, p, **nan), equal_nan=True)
    np.testing.assert_allclose(acc.f1, f1_score(r, p, **nan), equal_nan=True)
    assert np.isnan(acc.f1[4]) and np.isnan(acc.producers[2]) and np.isnan(acc.users[1])
    # Without the column, the earlier behaviour: predicted 0 skipped.
    plain = metrics.assess(reference, predicted, 5)
    assert plain.confusion.shape == (5, 5) and plain.unclassified == 0
    assert plain.overall == pytest.approx((r[p > 0] == p[p > 0]).mean())
