"""Scoring and reporting of bench/reproduce.py: each map against the ground truth, the
ablation table, the machine, and the rows as JSON."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from typing import Optional

import numpy as np

from special_qgis.core import metrics

from .scene import read_labels

ROW_SCALE1 = "CLIP pseudo-labels, scale 1"
ROW_SPECIAL = "SPECIAL (noise-robust network)"


@dataclass
class Row:
    name: str
    key: str
    labels: Optional[str] = None
    seconds: float = 0.0
    accuracy: Optional[metrics.Accuracy] = None
    unscored: int = 0
    error: Optional[str] = None
    note: Optional[str] = None


def score(row: Row, truth: np.ndarray, n_classes: int) -> None:
    predicted = read_labels(row.labels)
    labelled = truth > 0
    row.unscored = int(np.count_nonzero(labelled & (predicted == 0)))
    row.accuracy = metrics.assess(np.where(labelled, truth, 0), predicted, n_classes)


def _pct(x: float) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else 100.0 * x


def machine_info(device) -> dict:
    import torch

    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device), "gpu": None}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def format_table(rows: list, names: list, counts: np.ndarray) -> str:
    """The ablation table, then per-class accuracy; ``counts``: truth pixels per class."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'':{width}}  {'OA %':>6}  {'AA %':>6}  {'κ×100':>6}  {'time':>9}",
             "-" * (width + 37)]
    for r in rows:
        if r.accuracy is None:
            lines.append(f"{r.name:{width}}  not run: {r.error}")
            continue
        a = r.accuracy
        line = (f"{r.name:{width}}  {100 * a.overall:6.2f}  {100 * a.average:6.2f}  "
                f"{100 * a.kappa:6.2f}  {r.seconds:8.2f}s")
        if r.note:
            line += f"  ({r.note})"
        lines.append(line)
    scored = [r for r in rows if r.accuracy is not None]
    if scored:
        lines.append("")
        lines.append("Per-class accuracy (recall, %):")
        head = f"  {'class':24}  {'pixels':>7}" + "".join(f"  {r.key:>14}" for r in scored)
        lines.append(head)
        for i, name in enumerate(names):
            cells = []
            for r in scored:
                v = r.accuracy.per_class[i]
                cells.append(f"  {'-' if not math.isfinite(v) else f'{100 * v:.2f}':>14}")
            lines.append(f"  {name[:24]:24}  {int(counts[i]):7d}" + "".join(cells))
    return "\n".join(lines)


def row_json(row: Row, names: list, temporary: bool) -> dict:
    a = row.accuracy
    return {
        "row": row.name, "key": row.key,
        "OA": None if a is None else _pct(a.overall),
        "AA": None if a is None else _pct(a.average),
        "kappa": None if a is None else _pct(a.kappa),
        "per_class": None if a is None else {
            n: _pct(float(v)) for n, v in zip(names, a.per_class, strict=True)},
        "seconds": row.seconds if a is not None else None,
        "unscored_pixels": row.unscored,
        "labels": None if temporary or row.labels is None else os.path.abspath(row.labels),
        "note": row.note, "error": row.error,
    }

