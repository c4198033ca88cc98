"""The result of an accuracy assessment: per-class numbers, the reference values and the
INPUT classes they were matched to, and the JSON form of the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import metrics


@dataclass
class ClassAccuracy:
    """One class of INPUT. Accuracies are fractions; NaN where undefined: producer's
    accuracy of a class with no reference pixel, user's accuracy of a class never
    predicted inside the reference, F1 of a class that is neither."""

    code: int
    name: str
    reference_pixels: int
    predicted_pixels: int  # inside the reference
    correct: int
    producers: float  # recall
    users: float  # precision
    f1: float


@dataclass
class ReferenceValue:
    """A value of the reference (a raster code, or a value of the class field)."""

    label: str  # as shown: '3', 'Asphalt'
    pixels: int  # on INPUT's grid
    input_class: Optional[int] = None  # the INPUT class it was matched to (1..C), or None


@dataclass
class AccuracyResult:
    accuracy: metrics.Accuracy  # confusion (C, C + 1): rows reference, last column unclassified
    classes: list[ClassAccuracy]
    reference_values: list[ReferenceValue]
    input_path: str
    reference_path: str
    class_field: Optional[str] = None
    class_names_text: Optional[str] = None
    output_html: Optional[str] = None
    output_json: Optional[str] = None
    warnings: list = field(default_factory=list)

    @property
    def overall(self) -> float:
        return self.accuracy.overall

    @property
    def average(self) -> float:
        return self.accuracy.average

    @property
    def kappa(self) -> float:
        return self.accuracy.kappa

    @property
    def confusion(self) -> np.ndarray:
        return self.accuracy.confusion

    @property
    def n_pixels(self) -> int:
        """Reference pixels assessed (matched to an INPUT class, on INPUT's grid)."""
        return int(self.accuracy.confusion.sum())

    @property
    def unclassified_pixels(self) -> int:
        return self.accuracy.unclassified

    @property
    def left_out_pixels(self) -> int:
        return sum(v.pixels for v in self.reference_values if v.input_class is None)

    def as_dict(self) -> dict:
        """The report as JSON-ready data; undefined values are None (null)."""
        names = [c.name for c in self.classes]
        return {
            "OA": _num(self.overall),
            "AA": _num(self.average),
            "KAPPA": _num(self.kappa),
            "n_pixels": self.n_pixels,
            "unclassified_pixels": self.unclassified_pixels,
            "left_out_pixels": self.left_out_pixels,
            "input": self.input_path,
            "reference": self.reference_path,
            "class_field": self.class_field,
            "class_names": self.class_names_text,
            "per_class": [
                {"code": c.code, "name": c.name, "reference_pixels": c.reference_pixels,
                 "predicted_pixels": c.predicted_pixels, "correct": c.correct,
                 "producers": _num(c.producers), "users": _num(c.users), "f1": _num(c.f1)}
                for c in self.classes],
            "confusion_matrix": {
                "rows": names,
                "row_codes": [c.code for c in self.classes],
                "columns": names + ["unclassified"],
                "column_codes": [c.code for c in self.classes] + [0],
                "counts": self.confusion.tolist(),
                "note": "rows: reference class; columns: INPUT class; 'unclassified': "
                        "reference pixels that INPUT leaves 0 or nodata (errors)",
            },
            "reference_values": [
                {"value": v.label, "pixels": v.pixels, "input_class": v.input_class,
                 "input_name": names[v.input_class - 1] if v.input_class else None}
                for v in self.reference_values],
            "warnings": list(self.warnings),
        }


def _num(value: float) -> Optional[float]:
    return None if value is None or math.isnan(value) else float(value)
