"""Stage II's raster inputs: INPUT, LABELS, CONFIDENCE and MASK opened and checked, the
labels summarised in one cheap pass, and the training cache read from them (the whole
scene when it fits ``Schedule.cache_bytes``, else random 256×256 chips)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import rasterio

from .. import classes as classes_mod
from .. import raster_io
from .. import scene as scene_mod
from ..errors import UserInputError
from ..hsi_net import CubeReader
from ..progress import Progress
from .data import Chip
from .schedule import Schedule

CHIP = 256
_CONFIDENCE_BINS = 1000


@dataclass
class Inputs:
    input_path: str
    labels_path: str
    confidence_path: str
    mask_path: Optional[str] = None
    bad_bands: Optional[str] = None  # BAD_BANDS text: more bands to leave out
    wavelengths: Optional[str] = None  # WAVELENGTHS text: band centres overriding metadata


@dataclass
class LabelSummary:
    counts: np.ndarray  # (C,) eligible pixels per class
    histograms: np.ndarray  # (C, bins) their confidence histograms over [0, 1]
    class_names: list
    colours: list
    warnings: list = field(default_factory=list)


def check_aligned(src, other, param: str, path: Optional[str], input_path: str) -> None:
    """LABELS, CONFIDENCE and MASK must lie on INPUT's grid; the message says what differs."""
    differences = []
    if (other.width, other.height) != (src.width, src.height):
        differences.append(f"it is {other.width} × {other.height} pixels, INPUT is "
                           f"{src.width} × {src.height}")
    if other.crs != src.crs:
        differences.append(f"its CRS is {other.crs or 'not set'}, INPUT's is "
                           f"{src.crs or 'not set'}")
    if not other.transform.almost_equals(src.transform, precision=1e-6):
        a, b = other.transform, src.transform
        differences.append(f"its top-left corner and pixel size are ({a.c:.3f}, {a.f:.3f}), "
                           f"{a.a:g} × {-a.e:g}; INPUT's are ({b.c:.3f}, {b.f:.3f}), "
                           f"{b.a:g} × {-b.e:g}")
    if differences:
        raise UserInputError(
            f"{param}: '{path}' is not on the same grid as INPUT '{input_path}': "
            f"{'; '.join(differences)}. Use the stage I outputs of this INPUT, or resample "
            f"{param} onto INPUT's grid first (e.g. gdal:warpreproject with INPUT's extent, "
            f"pixel size and CRS).")


def _open_inputs(stack, inputs: Inputs, progress: Optional[Progress] = None):
    src = stack.enter_context(scene_mod.open_scene(inputs.input_path, inputs.wavelengths,
                                                   inputs.bad_bands, progress=progress))
    lab = stack.enter_context(raster_io.open_raster(inputs.labels_path, "LABELS"))
    conf = stack.enter_context(raster_io.open_raster(inputs.confidence_path, "CONFIDENCE"))
    mask = (stack.enter_context(raster_io.open_raster(inputs.mask_path, "MASK"))
            if inputs.mask_path else None)
    for param, ds, path in (("LABELS", lab, inputs.labels_path),
                            ("CONFIDENCE", conf, inputs.confidence_path),
                            ("MASK", mask, inputs.mask_path)):
        if ds is None:
            continue
        check_aligned(src, ds, param, path, inputs.input_path)
    if not np.issubdtype(np.dtype(lab.dtypes[0]), np.integer):
        raise UserInputError(
            f"LABELS: '{inputs.labels_path}' holds {lab.dtypes[0]} values; a class raster has "
            f"whole numbers 1..C (0 = unlabelled), such as special:pseudolabel's "
            f"OUTPUT_LABELS.")
    return src, lab, conf, mask


def _read_aux(lab, conf, mask, y0, y1, x0, x1):
    window = rasterio.windows.Window(x0, y0, x1 - x0, y1 - y0)
    labels = lab.read(1, window=window).astype(np.int64)
    if lab.nodata is not None:
        labels[labels == lab.nodata] = 0
    confidence = conf.read(1, window=window, out_dtype="float32")
    keep = np.ones(labels.shape, bool)
    if mask is not None:
        m = mask.read(1, window=window)
        keep = m != 0
        if mask.nodata is not None:
            keep &= m != mask.nodata
        if np.issubdtype(m.dtype, np.floating):
            keep &= np.isfinite(m)
    return labels, confidence, keep


def summarise_labels(lab, conf, mask, paths: Inputs, per_class: int) -> LabelSummary:
    """One cheap pass over LABELS, CONFIDENCE and MASK: class counts and value checks."""
    names, rgb = classes_mod.read_class_metadata(paths.labels_path)
    counts = np.zeros(0, np.int64)
    histograms = np.zeros((0, _CONFIDENCE_BINS), np.int64)
    for window in raster_io.row_windows(lab.height, lab.width, 16):
        y0, x0 = window.row_off, window.col_off
        labels, confidence, keep = _read_aux(lab, conf, mask, y0, y0 + window.height, x0,
                                             x0 + window.width)
        if labels.min(initial=0) < 0:
            raise UserInputError(
                f"LABELS: '{paths.labels_path}' has negative values; classes are 1..C and 0 "
                f"means unlabelled.")
        used = keep & (labels > 0)
        values = confidence[used]
        bad = ~np.isfinite(values) | (values < 0) | (values > 1 + 1e-6)
        if bad.any():
            v = values[bad][0]
            raise UserInputError(
                f"CONFIDENCE: '{paths.confidence_path}' has the value {v:g} at a labelled "
                f"pixel; confidence must be a number in [0, 1] (as special:pseudolabel's "
                f"OUTPUT_CONFIDENCE). Rescale it, or set those pixels to 0 in LABELS.")
        found = np.bincount(labels[used], minlength=len(counts) + 1)[1:]
        if len(found) > len(counts):
            counts = np.pad(counts, (0, len(found) - len(counts)))
        counts[:len(found)] += found
        if len(counts) > len(histograms):
            histograms = np.pad(histograms, ((0, len(counts) - len(histograms)), (0, 0)))
        bins = np.minimum((values * _CONFIDENCE_BINS).astype(np.int64), _CONFIDENCE_BINS - 1)
        np.add.at(histograms, (labels[used] - 1, bins), 1)
    n_classes = max(len(counts), len(names))
    counts = np.pad(counts, (0, n_classes - len(counts)))
    histograms = np.pad(histograms, ((0, n_classes - len(histograms)), (0, 0)))
    if counts.sum() == 0:
        raise UserInputError(
            f"LABELS: '{paths.labels_path}' has no labelled pixels (every pixel is 0 or "
            f"nodata{', or outside MASK' if paths.mask_path else ''}). Use the labels written "
            f"by special:pseudolabel for this INPUT.")
    if np.count_nonzero(counts) < 2:
        only = int(np.flatnonzero(counts)[0])
        label = names[only] if only < len(names) else f"class {only + 1}"
        raise UserInputError(
            f"LABELS: only one class ('{label}') has labelled pixels; classification needs "
            f"at least two. Run stage I with more class names.")
    if len(names) < n_classes:
        names = list(names) + [f"class {i}" for i in range(len(names) + 1, n_classes + 1)]
    if len(rgb) < n_classes:
        rgb = list(rgb) + classes_mod.colours(n_classes)[len(rgb):]
    warnings = [
        f"Class '{names[c]}' has only {counts[c]} labelled pixels, fewer than "
        f"SAMPLES_PER_CLASS={per_class}: every iteration uses all of them (its most "
        f"confident ones once it has more than 50), so it is learnt from few examples."
        for c in range(n_classes) if 0 < counts[c] < per_class]
    warnings += [f"Class '{names[c]}' has no labelled pixels; the network will not predict it."
                 for c in range(n_classes) if counts[c] == 0]
    return LabelSummary(counts, histograms, names[:n_classes],
                        [tuple(c) for c in rgb[:n_classes]], warnings)


def build_cache(reader: CubeReader, lab, conf, mask, schedule: Schedule,
                thresholds: np.ndarray, rng: np.random.Generator,
                progress: Progress) -> list[Chip]:
    """The training data in memory: the whole scene if it fits, else random chips."""
    height, width = reader.shape
    per_pixel = 4 * reader.bands
    if height * width * per_pixel <= schedule.cache_bytes:
        boxes = [(0, height, 0, width)]
    else:
        cells = [(y, min(y + CHIP, height), x, min(x + CHIP, width))
                 for y in range(0, height, CHIP) for x in range(0, width, CHIP)]
        n = max(1, schedule.cache_bytes // (CHIP * CHIP * per_pixel))
        boxes = [cells[i] for i in sorted(rng.choice(len(cells), min(n, len(cells)),
                                                     replace=False))]
    chips = []
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        progress.check()
        cube, invalid = reader.read(y0, y1, x0, x1)
        labels, confidence, keep = _read_aux(lab, conf, mask, y0, y1, x0, x1)
        eligible = keep & ~invalid & (labels > 0) & np.isfinite(confidence)
        confidence = np.nan_to_num(confidence)
        limits = np.concatenate([[np.inf], thresholds])
        pool = eligible & (confidence >= limits[np.minimum(labels, len(thresholds))])
        chips.append(Chip(y0, x0, cube, labels, confidence, eligible, pool, invalid))
        progress.update((i + 1) / len(boxes), "stage II: reading the training data")
    return chips


