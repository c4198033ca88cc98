"""The streamed joint histogram of (reference value, INPUT class): INPUT read in
full-width strips, the reference read (or rasterised) strip by strip, only the counts
kept, so memory is bounded whatever the scene size."""

from __future__ import annotations

import numpy as np

from .. import raster_io
from ..errors import UserInputError
from ..progress import Progress

# More classes than this in INPUT means it is not a class raster (a confusion matrix of
# thousands of classes is no use); the limit is checked on the largest value read.
MAX_CLASSES = 1000
# Bytes per pixel of one strip as processed (the input block, reference, int64 copies).
_BYTES_PER_PIXEL = 48


def integer_codes(block: np.ndarray, invalid: np.ndarray, param: str, what: str) -> np.ndarray:
    """``block`` as int64 with invalid pixels 0; non-integer values are an error."""
    if np.issubdtype(block.dtype, np.floating):
        values = block[~invalid]
        bad = values != np.round(values)
        if bad.any():
            raise UserInputError(
                f"{param}: the value {values[bad][0]:g} is not a class code. {what} holds "
                f"whole numbers (1, 2, …; 0 or nodata = none)."
            )
        block = np.where(invalid, 0, block)
    out = block.astype(np.int64)
    out[invalid] = 0
    return out


class JointCounts:
    """Pixel counts per (reference id, INPUT value), accumulated block by block."""

    def __init__(self) -> None:
        self.counts: dict[int, np.ndarray] = {}

    def add(self, ref: np.ndarray, pred: np.ndarray) -> None:
        """``ref``: reference ids (0 = none); ``pred``: INPUT values (0 = unclassified),
        both integer arrays of one shape."""
        used = ref > 0
        if not used.any():
            return
        r = ref[used].astype(np.int64)
        p = pred[used].astype(np.int64)
        width = int(p.max()) + 1
        top = int(r.max())
        if (top + 1) * width <= 1 << 22:  # small ids (the usual case): no sort needed
            flat = np.bincount(r * width + p, minlength=(top + 1) * width)
            flat = flat.reshape(top + 1, width)
            ids = np.flatnonzero(flat.any(1))
            flat = flat[ids]
        else:
            ids, inverse = np.unique(r, return_inverse=True)
            flat = np.bincount(inverse.astype(np.int64).ravel() * width + p,
                               minlength=len(ids) * width).reshape(len(ids), width)
        for rid, row in zip(ids.tolist(), flat, strict=True):
            have = self.counts.get(rid)
            if have is None:
                self.counts[rid] = row.copy()
                continue
            if len(have) < width:
                have = np.concatenate([have, np.zeros(width - len(have), np.int64)])
            have[:width] += row
            self.counts[rid] = have

    def pixels(self) -> dict[int, int]:
        return {rid: int(row.sum()) for rid, row in self.counts.items()}


def accumulate(src, reference, progress: Progress, block_bytes: int):
    """Joint counts of (reference id, INPUT value) over INPUT's grid, strip by strip;
    also the largest INPUT value anywhere (INPUT's class count when it has no legend)."""
    joint = JointCounts()
    max_value = 0
    floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
    per_pixel = _BYTES_PER_PIXEL + np.dtype(src.dtypes[0]).itemsize
    windows = raster_io.row_windows(src.height, src.width, per_pixel, block_bytes)
    for i, window in enumerate(windows):
        progress.check()
        progress.update(i / len(windows), f"Counting pixels: rows {window.row_off + 1}–"
                                          f"{window.row_off + window.height}")
        block = src.read(1, window=window)
        invalid = raster_io.invalid_mask(block[None], [src.nodata])
        pred = integer_codes(block, invalid, "INPUT", "A class raster") if floating else (
            np.where(invalid, 0, block).astype(np.int64))
        pred[pred < 0] = 0
        top = int(pred.max()) if pred.size else 0
        if top > MAX_CLASSES:
            raise UserInputError(
                f"INPUT: the value {top} is not a class code (at most {MAX_CLASSES} classes). "
                f"INPUT must be a class raster (1..C, 0 or nodata = unclassified), such as "
                f"special:noiserobust's OUTPUT."
            )
        max_value = max(max_value, top)
        joint.add(reference.read(window), pred)
    progress.update(1.0, "Counting pixels")
    return joint, max_value
