"""Stage II's training data in memory: :class:`Chip` (a part of the scene with its
pseudo-labels), pixel indexing across chips and the band statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..hsi_net import BandStats

_STATS_SAMPLES = 200_000


@dataclass
class Chip:
    """A part of the scene held in memory for training (the whole scene when it fits)."""

    y0: int
    x0: int
    cube: np.ndarray  # (bands, h, w) float32, standardised in place once stats are known
    labels: np.ndarray  # (h, w) int64, 1..C, 0 = unlabelled
    confidence: np.ndarray  # (h, w) float32
    eligible: np.ndarray  # (h, w) bool: may be used for training
    pool: np.ndarray  # (h, w) bool: eligible and confident enough for the random set
    invalid: np.ndarray  # (h, w) bool: nodata in the input
    confident: Optional[np.ndarray] = None  # (h, w) bool, refreshed every epoch
    hard: Optional[np.ndarray] = None
    soft: Optional[np.ndarray] = None  # (C, h, w) float32 where confident | hard


def pixel_index(chips: Sequence[Chip], masks: Sequence[np.ndarray]) -> np.ndarray:
    """(n, 2) rows of (chip number, flat pixel index) where ``masks`` (one per chip) is True."""
    parts = [np.stack([np.full(np.count_nonzero(m), i), np.flatnonzero(m.ravel())], 1)
             for i, m in enumerate(masks)]
    return np.concatenate(parts) if parts else np.empty((0, 2), np.int64)


def gather_spectra(chips: Sequence[Chip], where: np.ndarray) -> np.ndarray:
    """(n, bands) float32 spectra of the pixels ``where`` (rows of :func:`pixel_index`)."""
    out = np.empty((len(where), chips[0].cube.shape[0]), np.float32)
    for i, chip in enumerate(chips):
        mine = where[:, 0] == i
        if mine.any():
            out[mine] = chip.cube.reshape(chip.cube.shape[0], -1)[:, where[mine, 1]].T
    return out


def _subsample(where: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return where if len(where) <= limit else where[np.sort(rng.choice(len(where), limit,
                                                                      replace=False))]


def band_stats(chips: Sequence[Chip], rng: np.random.Generator) -> BandStats:
    """Band means and deviations from (a sample of) the valid pixels of the chips."""
    where = _subsample(pixel_index(chips, [~c.invalid for c in chips]), _STATS_SAMPLES, rng)
    return BandStats.from_samples(gather_spectra(chips, where).T)


