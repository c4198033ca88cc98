"""Stage II on arrays, in scikit-learn's manner: :class:`NoiseRobustClassifier` fits the
noise-robust network on a cube and its pseudo-labels held in memory, predicts class
probabilities and labels for other cubes, and saves and loads the model file that
special:applymodel reads.

It shares the training (:func:`.trainer.fit_chips`) and the tiled prediction with the
raster algorithm :func:`.algorithm.run`, which streams instead (a bounded cache for
training, tile by tile for the map) so that scenes larger than memory work. On a scene
that fits ``Schedule.cache_bytes`` both train on the same data in the same order and give
the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np

from .. import classes as classes_mod
from ..device import resolve_device
from ..errors import UserInputError
from ..hsi_net import StageIIModel
from ..progress import Progress, as_progress
from .data import Chip
from .predict import predict_array
from .rasters import _CONFIDENCE_BINS
from .schedule import MIN_POOL, Schedule, pool_thresholds
from .trainer import fit_chips


def _cube(cube, param: str = "cube") -> np.ndarray:
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"{param} must be a (bands, rows, cols) array; it has shape "
                         f"{cube.shape}.")
    if not (np.issubdtype(cube.dtype, np.floating) or np.issubdtype(cube.dtype, np.integer)):
        raise ValueError(f"{param} must hold numbers; it holds {cube.dtype}.")
    if min(cube.shape) < 1:
        raise ValueError(f"{param} is empty (shape {cube.shape}).")
    return cube


def _plane(values, shape: tuple, param: str) -> np.ndarray:
    values = np.asarray(values)
    if values.shape != shape:
        raise ValueError(f"{param} must be a (rows, cols) array of shape {shape}, like the "
                         f"cube's last two axes; it has shape {values.shape}.")
    return values


class NoiseRobustClassifier:
    """The noise-robust spectral–spatial network of stage II, on numpy arrays.

    ``schedule``: the training settings (default :class:`Schedule`'s, the paper's);
    ``device``: 'auto', 'cpu' or 'cuda'; ``threads``: PyTorch's CPU threads (None: the
    SPECIAL_QGIS_THREADS environment variable, else PyTorch's default).

    After :meth:`fit`: ``model_`` (the :class:`StageIIModel`), ``classes_`` (the labels
    1..C), ``class_names_`` and ``history_`` (mean loss per epoch).
    """

    def __init__(self, schedule: Optional[Schedule] = None, device: str = "auto",
                 threads: Optional[int] = None) -> None:
        self.schedule = schedule if schedule is not None else Schedule()
        self.device = device
        self.threads = threads
        self.model_: Optional[StageIIModel] = None
        self.history_: list[dict] = []

    # -- training
    def fit(self, cube, labels, confidence, mask=None,
            class_names: Optional[Sequence[str]] = None,
            colours: Optional[Sequence[Sequence[int]]] = None,
            wavelengths_nm: Optional[Sequence[float]] = None,
            on_epoch=None, progress: Optional[Progress] = None) -> NoiseRobustClassifier:
        """Train on ``cube`` (bands, rows, cols; NaN = no data) with ``labels`` (rows, cols;
        1..C, 0 = unlabelled) and their ``confidence`` (rows, cols; in [0, 1]); pixels
        where ``mask`` is 0/False are not trained on. ``class_names``, ``colours`` and
        ``wavelengths_nm`` go into the saved model (defaults: 'class i', the palette,
        unknown)."""
        cube = _cube(cube)
        shape = cube.shape[1:]
        labels = _plane(labels, shape, "labels")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must hold whole numbers 1..C (0 = unlabelled); they are "
                             f"{labels.dtype}.")
        labels = labels.astype(np.int64)
        confidence = _plane(confidence, shape, "confidence").astype(np.float32)
        keep = np.ones(shape, bool)
        if mask is not None:
            mask = _plane(mask, shape, "mask")
            keep = (mask != 0) & (np.isfinite(mask) if np.issubdtype(mask.dtype, np.floating)
                                  else True)
        wavelengths = None
        if wavelengths_nm is not None:
            wavelengths = np.asarray(wavelengths_nm, np.float64)
            if wavelengths.shape != (cube.shape[0],):
                raise ValueError(f"wavelengths_nm must have one value per band "
                                 f"({cube.shape[0]}); it has shape {wavelengths.shape}.")
        schedule = self.schedule.validate()
        counts, histograms = self._summarise(labels, confidence, keep)
        n_classes = max(len(counts), len(class_names or []))
        counts = np.pad(counts, (0, n_classes - len(counts)))
        histograms = np.pad(histograms, ((0, n_classes - len(histograms)), (0, 0)))
        if np.count_nonzero(counts) < 2:
            raise UserInputError("labels: fewer than two classes have labelled pixels; "
                                 "classification needs at least two.")
        names = list(class_names or [])
        names += [f"class {i}" for i in range(len(names) + 1, n_classes + 1)]
        rgb = list(colours or [])
        rgb += classes_mod.colours(n_classes)[len(rgb):]

        device = resolve_device(self.device, self.threads)
        rng = np.random.default_rng(schedule.seed)
        thresholds = pool_thresholds(histograms, schedule.random_set_fraction, MIN_POOL)
        cube = cube.astype(np.float32)
        invalid = ~np.isfinite(cube).all(axis=0)
        eligible = keep & ~invalid & (labels > 0) & np.isfinite(confidence)
        confidence = np.nan_to_num(confidence)
        limits = np.concatenate([[np.inf], thresholds])
        pool = eligible & (confidence >= limits[np.minimum(labels, len(thresholds))])
        chips = [Chip(0, 0, cube, labels, confidence, eligible, pool, invalid)]
        trainer, stats, prior = fit_chips(chips, n_classes, schedule, device, rng,
                                          as_progress(progress), on_epoch)
        bands = cube.shape[0]
        prior_weight, prior_bias = prior or (None, None)
        self.model_ = StageIIModel(
            trainer.network.cpu(), stats, names[:n_classes],
            [(int(c[0]), int(c[1]), int(c[2])) for c in rgb[:n_classes]], wavelengths,
            schedule.width, {**schedule.model_info(), "trained_on": "array"},
            prior_weight, prior_bias, bands_used=np.arange(bands), source_bands=bands,
            final=trainer.final)
        self.history_ = trainer.history
        return self

    @staticmethod
    def _summarise(labels, confidence, keep) -> tuple[np.ndarray, np.ndarray]:
        """Eligible pixels per class and their confidence histograms (as special:noiserobust's
        one pass over LABELS), with the same value checks."""
        if labels.min(initial=0) < 0:
            raise UserInputError("labels has negative values; classes are 1..C and 0 means "
                                 "unlabelled.")
        used = keep & (labels > 0)
        values = confidence[used]
        bad = ~np.isfinite(values) | (values < 0) | (values > 1 + 1e-6)
        if bad.any():
            raise UserInputError(f"confidence has the value {values[bad][0]:g} at a labelled "
                                 f"pixel; confidence must be a number in [0, 1].")
        if not used.any():
            raise UserInputError("labels has no labelled pixels (every pixel is 0 or masked).")
        counts = np.bincount(labels[used])[1:]
        histograms = np.zeros((len(counts), _CONFIDENCE_BINS), np.int64)
        bins = np.minimum((values * _CONFIDENCE_BINS).astype(np.int64), _CONFIDENCE_BINS - 1)
        np.add.at(histograms, (labels[used] - 1, bins), 1)
        return counts, histograms

    # -- prediction
    def _fitted(self) -> StageIIModel:
        if self.model_ is None:
            raise ValueError("This NoiseRobustClassifier is not fitted yet: call fit() or "
                             "load() first.")
        return self.model_

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(1, self._fitted().classes + 1)

    @property
    def class_names_(self) -> list[str]:
        return list(self._fitted().class_names)

    def predict_proba(self, cube) -> np.ndarray:
        """(C, rows, cols) float32 class probabilities of ``cube`` (bands, rows, cols, in the
        training cube's units and band order); NaN where any band is NaN."""
        model = self._fitted()
        cube = _cube(cube)
        if cube.shape[0] != model.bands:
            raise ValueError(f"cube has {cube.shape[0]} bands; the model was trained on "
                             f"{model.bands}.")
        cube = cube.astype(np.float32)
        invalid = ~np.isfinite(cube).all(axis=0)
        device = resolve_device(self.device, self.threads)
        return predict_array(model, cube, invalid, device, self.schedule.predict_tile)

    def predict(self, cube) -> np.ndarray:
        """(rows, cols) classes 1..C of ``cube``; 0 where any band is NaN."""
        probs = self.predict_proba(cube)
        invalid = np.isnan(probs[0])
        labels = (np.nan_to_num(probs).argmax(0) + 1).astype(
            classes_mod.label_dtype(len(probs)))
        labels[invalid] = classes_mod.NODATA_LABEL
        return labels

    # -- the model file
    def save(self, path: str) -> None:
        """Write the model file (the OUTPUT_MODEL format special:applymodel reads)."""
        self._fitted().save(path)

    @classmethod
    def load(cls, path: str, device: str = "auto", threads: Optional[int] = None,
             schedule: Optional[Schedule] = None) -> NoiseRobustClassifier:
        """A fitted classifier from a model file (this class's or special:noiserobust's)."""
        out = cls(schedule, device, threads)
        out.model_ = StageIIModel.load(path, "path")
        return out
