"""Accuracy of a class map against reference labels: confusion matrix, OA, AA, κ, and the
per-class producer's accuracy (recall), user's accuracy (precision) and F1.

One implementation for every caller: the benchmarks, the tests and ``special:accuracy``.
Classes are 1..C; 0 means "no data / unclassified" in both rasters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Accuracy:
    """``confusion``: (C, C) counts, rows = reference class, columns = predicted; or
    (C, C + 1) when the last column counts reference pixels left unclassified (predicted 0),
    which are then errors. Undefined per-class values are NaN: producer's accuracy of a
    class absent from the reference, user's accuracy of a class never predicted (inside the
    reference), F1 of a class that is neither."""

    confusion: np.ndarray
    overall: float  # OA: fraction of reference pixels classified correctly
    average: float  # AA: mean of the per-class recalls (classes present in the reference)
    kappa: float  # Cohen's κ
    per_class: np.ndarray  # (C,) recall (producer's accuracy); NaN where no reference
    users: np.ndarray  # (C,) precision (user's accuracy); NaN where never predicted
    f1: np.ndarray  # (C,) 2·TP / (2·TP + FP + FN); NaN where neither referenced nor predicted

    @property
    def producers(self) -> np.ndarray:
        """(C,) producer's accuracy (recall), the same as ``per_class``."""
        return self.per_class

    @property
    def reference_pixels(self) -> np.ndarray:
        """(C,) reference pixels of each class (row sums, unclassified included)."""
        return self.confusion.sum(1)

    @property
    def unclassified(self) -> int:
        """Reference pixels predicted 0 (0 when the matrix has no unclassified column)."""
        c = self.confusion
        return int(c[:, -1].sum()) if c.shape[1] == c.shape[0] + 1 else 0

    def as_dict(self) -> dict:
        return {"OA": self.overall, "AA": self.average, "KAPPA": self.kappa}


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, n_classes: int,
                     unclassified: bool = False) -> np.ndarray:
    """Counts over pixels whose reference is a class 1..C (other reference values skipped).

    Without ``unclassified``: (C, C), pixels predicted outside 1..C (0 = no data) skipped.
    With it: (C, C + 1), such pixels counted in the last column, as errors.
    """
    reference = np.asarray(reference).ravel().astype(np.int64)
    predicted = np.asarray(predicted).ravel().astype(np.int64)
    labelled = (reference > 0) & (reference <= n_classes)
    classified = (predicted > 0) & (predicted <= n_classes)
    if unclassified:
        columns = n_classes + 1
        reference = reference[labelled]
        predicted = np.where(classified[labelled], predicted[labelled], n_classes + 1)
    else:
        columns = n_classes
        used = labelled & classified
        reference, predicted = reference[used], predicted[used]
    flat = (reference - 1) * columns + (predicted - 1)
    return np.bincount(flat, minlength=n_classes * columns).reshape(n_classes, columns)


def from_confusion(confusion: np.ndarray) -> Accuracy:
    """OA, AA, κ and per-class values of a (C, C) or (C, C + 1) confusion matrix (see
    :class:`Accuracy`). κ counts "unclassified" as a label of its own that no reference
    pixel has, which is scikit-learn's ``cohen_kappa_score`` with labels 0..C."""
    confusion = np.asarray(confusion, dtype=np.int64)
    n = confusion.shape[0]
    if confusion.ndim != 2 or confusion.shape[1] not in (n, n + 1):
        raise ValueError(f"a confusion matrix is (C, C) or (C, C + 1), not {confusion.shape}")
    total = confusion.sum()
    if total == 0:
        raise ValueError("no pixel is labelled in both rasters")
    diagonal = np.diag(confusion[:, :n]).astype(np.float64)
    rows = confusion.sum(1).astype(np.float64)
    cols = confusion[:, :n].sum(0).astype(np.float64)
    errors = (rows - diagonal) + (cols - diagonal)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(rows > 0, diagonal / rows, np.nan)
        precision = np.where(cols > 0, diagonal / cols, np.nan)
        f1 = np.where(rows + cols > 0, 2 * diagonal / (2 * diagonal + errors), np.nan)
    overall = diagonal.sum() / total
    expected = (rows * cols).sum() / (total * total)
    kappa = (overall - expected) / (1 - expected) if expected < 1 else 1.0
    return Accuracy(confusion, float(overall), float(np.nanmean(recall)), float(kappa), recall,
                    precision, f1)


def assess(reference: np.ndarray, predicted: np.ndarray, n_classes: int,
           unclassified: bool = False) -> Accuracy:
    """OA, AA and κ of ``predicted`` against ``reference`` (both 1..C, 0 skipped; with
    ``unclassified``, reference pixels predicted 0 count as errors)."""
    return from_confusion(confusion_matrix(reference, predicted, n_classes, unclassified))
