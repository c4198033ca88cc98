"""Accuracy of a class map against reference labels: confusion matrix, OA, AA, κ."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Accuracy:
    confusion: np.ndarray  # (C, C) counts, rows = reference class, columns = predicted
    overall: float  # OA: fraction of reference pixels classified correctly
    average: float  # AA: mean of the per-class recalls (classes present in the reference)
    kappa: float  # Cohen's κ
    per_class: np.ndarray  # (C,) recall (producer's accuracy); NaN where no reference

    def as_dict(self) -> dict:
        return {"OA": self.overall, "AA": self.average, "KAPPA": self.kappa}


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts over pixels where both are labelled (1..C; 0 = no data is skipped)."""
    reference = np.asarray(reference).ravel().astype(np.int64)
    predicted = np.asarray(predicted).ravel().astype(np.int64)
    used = (reference > 0) & (predicted > 0) & (reference <= n_classes) & (predicted <= n_classes)
    flat = (reference[used] - 1) * n_classes + (predicted[used] - 1)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def from_confusion(confusion: np.ndarray) -> Accuracy:
    confusion = np.asarray(confusion, dtype=np.int64)
    total = confusion.sum()
    if total == 0:
        raise ValueError("no pixel is labelled in both rasters")
    diagonal = np.diag(confusion).astype(np.float64)
    rows = confusion.sum(1).astype(np.float64)
    cols = confusion.sum(0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(rows > 0, diagonal / rows, np.nan)
    overall = diagonal.sum() / total
    expected = (rows * cols).sum() / (total * total)
    kappa = (overall - expected) / (1 - expected) if expected < 1 else 1.0
    return Accuracy(confusion, float(overall), float(np.nanmean(recall)), float(kappa), recall)


def assess(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> Accuracy:
    """OA, AA and κ of ``predicted`` against ``reference`` (both 1..C, 0 skipped)."""
    return from_confusion(confusion_matrix(reference, predicted, n_classes))
