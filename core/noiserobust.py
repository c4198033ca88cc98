"""Stage II of SPECIAL: a spectral–spatial network trained on noisy pseudo-labels with a
noise-robust schedule (DESIGN.md §2), and the trained model applied to other scenes.

No ground truth enters anywhere: training uses the pseudo-labels and their confidence,
excluding only nodata pixels, pixels labelled 0 and pixels outside an optional MASK; the
model kept is the mean of the network's weights over the robust phase (no choice made
by any score), and the final map adds to it a spectral prior fitted on the most
confident pseudo-labels.

Scale: training runs on a cache of the scene held in memory (the whole scene when it
fits ``cache_bytes``, else random 256×256 chips read through windows), and each
iteration sees a few crops of it; prediction runs tile by tile with a halo. Memory is
bounded by the cache and the tile size, not by the scene.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import rasterio

from . import classes as classes_mod
from . import raster_io
from . import scene as scene_mod
from .clip_backbone import describe_device, resolve_device
from .errors import UserInputError
from .hsi_net import (
    DEFAULT_PREDICT_TILE,
    DEFAULT_WIDTH,
    BandStats,
    CubeReader,
    StageIIModel,
    build_network,
    predict_tiles,
    tiles,
)
from .progress import Progress, as_progress

CONFIDENCE_NODATA = float("nan")
CHIP = 256
MODEL_EXTENSION = ".pt"
_STATS_SAMPLES = 200_000
_GMM_SAMPLES = 20_000
_PCA_SAMPLES = 50_000
_CONFIDENCE_BINS = 1000
_MIN_POOL = 50  # pixels per class in the random set's pool, however small the fraction
_PRIOR_PER_CLASS = 5_000  # pool pixels per class the spectral prior is fitted on
_ABSENT_CLASS_GAP = 1e4  # a class without labelled pixels never wins through the prior


@dataclass
class Schedule:
    """The training schedule; defaults are the paper's (DESIGN.md §2)."""

    epochs: int = 20
    warmup_epochs: int = 10
    iterations: int = 20
    samples_per_class: int = 500
    # The random set is drawn (∝ confidence) from each class's most confident fifth only
    # (at least 50 pixels): CLIP's wrong fields sit mostly in the low confidences, and
    # drawing from all of them let the network learn those fields
    # (bench/bench_stage2_quality.py; README, "Stage II quality").
    random_set_fraction: float = 0.2
    learning_rate: float = 1e-3
    final_learning_rate_ratio: float = 0.1  # cosine decay to lr / 10
    hard_weight: float = 0.1
    confident_weight: float = 1.0
    confident_fraction: float = 0.2  # the confident set is subsampled to 1/5
    noise_sigma: float = 0.1  # augmentation noise on standardised input
    # The soft-target teacher: Gaussians with one pooled covariance on 30 principal
    # components. The paper's per-class covariances on 5 components misclassified whole
    # fields and the network followed them (README, "Stage II quality").
    pca_components: int = 30
    tied_covariance: bool = True
    # The kept network is the mean of the weights over every robust-phase iteration: the
    # last iterate swings by several points from epoch to epoch.
    average_weights: bool = True
    # The final map adds a spectral prior to the network's logits: linear discriminants
    # (pooled Gaussians on the PCA scores) fitted on the random set's pool, scaled so that
    # their median margin is this multiple of the network's. The network alone decides
    # contested fields differently from one SEED to the next; the prior, a per-pixel
    # spectral model that cannot memorise a field, steadies it (README, "Stage II
    # quality"). 0 = the network alone.
    spectral_prior: float = 1.0
    seed: int = 0
    crop: int = 128
    crops_per_iteration: int = 4
    width: int = DEFAULT_WIDTH
    cache_bytes: int = 768 * 1024 * 1024
    predict_tile: int = DEFAULT_PREDICT_TILE
    # Baseline for benchmarks only: ordinary cross-entropy on every pseudo-labelled pixel.
    plain_cross_entropy: bool = False

    def validate(self) -> Schedule:
        if self.epochs < 1:
            raise UserInputError(f"EPOCHS must be at least 1 (it is {self.epochs}).")
        if self.warmup_epochs < 0:
            raise UserInputError(f"WARMUP_EPOCHS cannot be negative ({self.warmup_epochs}).")
        if self.epochs < self.warmup_epochs:
            raise UserInputError(
                f"EPOCHS ({self.epochs}) is smaller than WARMUP_EPOCHS ({self.warmup_epochs}). "
                f"EPOCHS counts all epochs, warm-up included: raise EPOCHS or lower "
                f"WARMUP_EPOCHS.")
        if self.iterations < 1:
            raise UserInputError(f"ITERATIONS must be at least 1 (it is {self.iterations}).")
        if self.samples_per_class < 1:
            raise UserInputError(
                f"SAMPLES_PER_CLASS must be at least 1 (it is {self.samples_per_class}).")
        if not 0 < self.random_set_fraction <= 1:
            raise UserInputError(
                f"The random-set fraction must be in (0, 1] (it is {self.random_set_fraction}).")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserInputError(
                f"LEARNING_RATE must be a positive number (it is {self.learning_rate:g}); the "
                f"default is 0.001.")
        if not (self.spectral_prior >= 0 and math.isfinite(self.spectral_prior)):
            raise UserInputError(
                f"The spectral prior's weight must be 0 or more (it is {self.spectral_prior:g}).")
        return self


# ------------------------------------------------------------------- the schedule's pieces

def sample_random_set(labels: np.ndarray, confidence: np.ndarray, eligible: np.ndarray,
                      n_classes: int, per_class: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The random set: for every class, ``per_class`` pixels drawn without replacement with
    probability ∝ confidence (all of them when the class has fewer).

    ``labels`` (1..C), ``confidence``, ``eligible``: flat arrays of one size. Returns flat
    pixel indices and their class indices (0..C-1).
    """
    idx_out, cls_out = [], []
    for c in range(n_classes):
        pool = np.flatnonzero(eligible & (labels == c + 1))
        if pool.size == 0:
            continue
        weights = confidence[pool].astype(np.float64)
        total = weights.sum()
        p = weights / total if total > 0 else None
        k = min(per_class, pool.size if p is None else int(np.count_nonzero(weights)))
        chosen = rng.choice(pool, size=k, replace=False, p=p)
        idx_out.append(chosen)
        cls_out.append(np.full(k, c, dtype=np.int64))
    if not idx_out:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(idx_out), np.concatenate(cls_out)


def pool_thresholds(histograms: np.ndarray, fraction: float, minimum: int) -> np.ndarray:
    """Per class, the confidence above which the random set is drawn: the lowest bin edge
    that keeps at least ``fraction`` of the class's pixels and at least ``minimum`` (or all
    of them when it has fewer).

    ``histograms``: (C, bins) counts of confidence over [0, 1] in equal bins.
    """
    n_bins = histograms.shape[1]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = np.zeros(len(histograms))
    for c, hist in enumerate(histograms):
        total = int(hist.sum())
        if total == 0:
            continue
        target = min(total, max(math.ceil(fraction * total), minimum))
        above = np.cumsum(hist[::-1])[::-1]  # above[b]: pixels in bins b and higher
        out[c] = edges[np.flatnonzero(above >= target).max()]
    return out


def gmm_split(margins: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Confident and hard members of one predicted class from its BvSB margins.

    A 3-component 1-D Gaussian mixture: the component with the highest mean is the
    confident set, the one with the lowest mean the hard set. Returns two boolean masks.
    """
    from sklearn.mixture import GaussianMixture

    margins = np.asarray(margins, dtype=np.float64)
    none = np.zeros(margins.shape, bool)
    if margins.size < 30 or np.ptp(margins) < 1e-6:
        return none, none.copy()
    fit_on = margins
    if margins.size > _GMM_SAMPLES:
        fit_on = np.random.default_rng(seed).choice(margins, _GMM_SAMPLES, replace=False)
    gmm = GaussianMixture(3, random_state=seed, reg_covar=1e-6).fit(fit_on[:, None])
    order = np.argsort(gmm.means_[:, 0])
    component = gmm.predict(margins[:, None])
    return component == order[-1], component == order[0]


class GaussianSoftTargets:
    """Per-class Gaussian models on PCA-reduced spectra (the features); soft targets are
    their likelihoods normalised across classes (equal priors). ``tied``: every class has
    the pooled within-class covariance (linear discriminant analysis with equal priors),
    which needs far fewer pixels per class than a covariance of its own."""

    def __init__(self, n_classes: int, tied: bool = False) -> None:
        self.n_classes = n_classes
        self.tied = tied
        self.means: dict[int, np.ndarray] = {}
        self.precisions: dict[int, np.ndarray] = {}
        self.log_norms: dict[int, float] = {}

    def fit(self, features: np.ndarray, classes: np.ndarray) -> GaussianSoftTargets:
        """``features``: (n, components) PCA scores; ``classes``: (n,) in 0..C-1."""
        dim = features.shape[1]
        pooled = None
        if self.tied:
            present = [c for c in range(self.n_classes) if np.count_nonzero(classes == c) > 1]
            resid = np.concatenate([x - x.mean(0)
                                    for x in (features[classes == c] for c in present)])
            pooled = resid.T @ resid / max(1, len(resid) - len(present))
        for c in range(self.n_classes):
            x = features[classes == c]
            if len(x) < (2 if self.tied else dim + 1):
                continue
            mean = x.mean(0)
            cov = (pooled.copy() if self.tied
                   else np.cov(x, rowvar=False).reshape(dim, dim))
            cov += np.eye(dim) * (1e-3 * np.trace(cov) / dim + 1e-9)
            sign, logdet = np.linalg.slogdet(cov)
            self.means[c] = mean
            self.precisions[c] = np.linalg.inv(cov)
            self.log_norms[c] = -0.5 * (logdet + dim * math.log(2 * math.pi))
        return self

    @property
    def fitted(self) -> bool:
        return len(self.means) >= 2

    def log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """(n, C) log densities; classes without a model get -inf."""
        out = np.full((len(features), self.n_classes), -np.inf)
        for c, mean in self.means.items():
            d = features - mean
            out[:, c] = self.log_norms[c] - 0.5 * np.einsum("ij,jk,ik->i", d,
                                                            self.precisions[c], d)
        return out

    def linear_logits(self) -> tuple[np.ndarray, np.ndarray]:
        """For tied models, (C, components) weights and (C,) biases whose affine scores
        differ from :meth:`log_likelihood` by a per-pixel constant (the shared quadratic
        term), so they give the same soft targets. Classes without a model get weight 0
        and a bias far below any other score."""
        if not self.tied:
            raise ValueError("only Gaussians with a pooled covariance are linear")
        dim = next(iter(self.means.values())).shape[0]
        weights = np.zeros((self.n_classes, dim))
        biases = np.zeros(self.n_classes)
        for c, mean in self.means.items():
            weights[c] = self.precisions[c] @ mean
            biases[c] = self.log_norms[c] - 0.5 * mean @ weights[c]
        missing = [c for c in range(self.n_classes) if c not in self.means]
        if missing:
            biases[missing] = biases[list(self.means)].min() - _ABSENT_CLASS_GAP
        return weights, biases

    def soft_targets(self, features: np.ndarray) -> np.ndarray:
        """(n, C) float32 rows that sum to 1."""
        ll = self.log_likelihood(features)
        ll -= ll.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def augment(x, k: int, flip: bool):
    """Rotate (N, C, H, W) by k·90° and optionally flip left–right."""
    x = x.rot90(k, dims=(-2, -1))
    return x.flip(-1) if flip else x


def unaugment(x, k: int, flip: bool):
    """The inverse of :func:`augment`: logits back onto the original pixel grid."""
    if flip:
        x = x.flip(-1)
    return x.rot90(-k, dims=(-2, -1))


def schedule_loss(logits_random, targets_random, logits_hard=None, soft_hard=None,
                  logits_conf=None, soft_conf=None, hard_weight: float = 0.1,
                  confident_weight: float = 1.0):
    """CE(random, one-hot) + hard_weight·CE(hard, soft) + confident_weight·CE(confident, soft).

    Logits are (n, C) rows; each term is a mean over its pixels and is skipped when its
    set is empty.
    """
    import torch
    import torch.nn.functional as functional

    loss = logits_random.new_zeros(())
    if len(logits_random):
        loss = loss + functional.cross_entropy(logits_random, targets_random)
    for logits, soft, weight in ((logits_hard, soft_hard, hard_weight),
                                 (logits_conf, soft_conf, confident_weight)):
        if logits is not None and len(logits) and weight:
            loss = loss + weight * -(soft * torch.log_softmax(logits, dim=1)).sum(1).mean()
    return loss


# ------------------------------------------------------------------------- the training data

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


def check_aligned(src, other, param: str, path: str, input_path: str) -> None:
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


# ---------------------------------------------------------------------------- the training

class Trainer:
    """Trains the network on the chips with the noise-robust schedule."""

    def __init__(self, chips: list[Chip], n_classes: int, schedule: Schedule, device,
                 rng: np.random.Generator) -> None:
        import torch

        self.torch = torch
        self.chips = chips
        self.n_classes = n_classes
        self.s = schedule
        self.device = device
        self.rng = rng
        torch.manual_seed(schedule.seed)
        bands = chips[0].cube.shape[0]
        self.network = build_network(bands, n_classes, schedule.width).to(device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=schedule.learning_rate)
        total = schedule.epochs * schedule.iterations
        self.lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimiser, T_max=total,
            eta_min=schedule.learning_rate * schedule.final_learning_rate_ratio)
        self.pca = self._fit_pca()
        self.history: list[dict] = []
        self.average = None

    def _fit_pca(self):
        from sklearn.decomposition import PCA

        where = pixel_index(self.chips, [c.eligible for c in self.chips])
        pixels = gather_spectra(self.chips, _subsample(where, _PCA_SAMPLES, self.rng))
        n = min(self.s.pca_components, pixels.shape[1], max(1, len(pixels) - 1))
        return PCA(n, random_state=self.s.seed).fit(pixels)

    # -- crops
    def _crop_boxes(self) -> list[tuple[Chip, int, int, int, int]]:
        """Crops for one iteration, centred on pixels of classes taken in turn, so rare
        classes are seen as often as common ones."""
        crop, k = self.s.crop, self.s.crops_per_iteration
        if len(self.chips) == 1:
            chip = self.chips[0]
            h, w = chip.labels.shape
            if h * w <= crop * crop * k:
                return [(chip, 0, h, 0, w)]
        present = [c for c in range(1, self.n_classes + 1)
                   if any((self._pool(ch) & (ch.labels == c)).any() for ch in self.chips)]
        order = self.rng.permutation(present)
        boxes = []
        for j in range(k):
            c = order[j % len(order)]
            sizes = np.array([np.count_nonzero(self._pool(ch) & (ch.labels == c))
                              for ch in self.chips], float)
            chip = self.chips[self.rng.choice(len(self.chips), p=sizes / sizes.sum())]
            pool = np.flatnonzero(self._pool(chip) & (chip.labels == c))
            centre = pool[self.rng.integers(len(pool))]
            h, w = chip.labels.shape
            cy, cx = divmod(int(centre), w)
            ch_, cw = min(crop, h), min(crop, w)
            y0 = int(np.clip(cy - ch_ // 2, 0, h - ch_))
            x0 = int(np.clip(cx - cw // 2, 0, w - cw))
            boxes.append((chip, y0, y0 + ch_, x0, x0 + cw))
        return boxes

    def _pool(self, chip: Chip) -> np.ndarray:
        return chip.eligible if self.s.plain_cross_entropy else chip.pool

    # -- one iteration
    def _iteration(self, robust: bool) -> float:
        torch = self.torch
        self.network.train()
        boxes = self._crop_boxes()
        k, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
        same = len({(b[2] - b[1], b[4] - b[3]) for b in boxes}) == 1
        groups = [boxes] if same else [[b] for b in boxes]
        losses = []
        for group in groups:
            x = np.stack([ch.cube[:, y0:y1, x0:x1] for ch, y0, y1, x0, x1 in group])
            x = torch.from_numpy(x).to(self.device)
            x = augment(x, k, flip)
            if self.s.noise_sigma:
                x = x + self.s.noise_sigma * torch.randn(x.shape, device=self.device)
            logits = unaugment(self.network(x), k, flip)
            losses += [self._crop_loss(chip, (y0, y1, x0, x1), crop_logits, robust)
                       for (chip, y0, y1, x0, x1), crop_logits in zip(group, logits,
                                                                       strict=True)]
        loss = torch.stack(losses).mean()
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.lr_schedule.step()
        return float(loss.detach())

    def _crop_loss(self, chip: Chip, box, logits, robust: bool):
        torch = self.torch
        y0, y1, x0, x1 = box
        flat = logits.reshape(self.n_classes, -1).T  # (h*w, C)
        labels = chip.labels[y0:y1, x0:x1].ravel()
        eligible = chip.eligible[y0:y1, x0:x1].ravel()
        if self.s.plain_cross_entropy:
            idx = np.flatnonzero(eligible)
            targets = torch.from_numpy(labels[idx] - 1).to(self.device)
            return schedule_loss(flat[torch.from_numpy(idx).to(self.device)], targets)
        conf = chip.confidence[y0:y1, x0:x1].ravel()
        pool = chip.pool[y0:y1, x0:x1].ravel()
        idx, cls = sample_random_set(labels, conf, pool, self.n_classes,
                                     self.s.samples_per_class, self.rng)
        terms = [flat[torch.from_numpy(idx).to(self.device)],
                 torch.from_numpy(cls).to(self.device)]
        if robust and chip.soft is not None:
            soft = chip.soft[:, y0:y1, x0:x1].reshape(self.n_classes, -1).T
            for mask in (chip.hard, chip.confident):
                sel = np.flatnonzero(mask[y0:y1, x0:x1].ravel())
                terms += [flat[torch.from_numpy(sel).to(self.device)],
                          torch.from_numpy(np.ascontiguousarray(soft[sel])).to(self.device)]
        else:
            terms += [None] * 4
        return schedule_loss(*terms, hard_weight=self.s.hard_weight,
                             confident_weight=self.s.confident_weight)

    # -- the per-epoch refresh of the confident and hard sets
    def predict_chip(self, chip: Chip) -> np.ndarray:
        """(C, h, w) probabilities of the current network over one chip."""
        h, w = chip.labels.shape
        out = np.empty((self.n_classes, h, w), np.float32)
        for (y0, y1, x0, x1), probs in predict_tiles(
                self.network, lambda a, b, c, d: chip.cube[:, a:b, c:d], (h, w), self.device,
                self.s.predict_tile):
            out[:, y0:y1, x0:x1] = probs
        return out

    def refresh_sets(self) -> None:
        """Confident and hard sets from the network's own BvSB, and their soft targets."""
        where = pixel_index(self.chips, [c.eligible for c in self.chips])
        preds, margins = [], []
        for chip in self.chips:
            probs = self.predict_chip(chip)
            preds.append(probs.argmax(0)[chip.eligible])
            margins.append(classes_mod.bvsb(probs)[chip.eligible])
        pred, margin = np.concatenate(preds), np.concatenate(margins)
        confident = np.zeros(pred.size, bool)
        hard = np.zeros(pred.size, bool)
        for c in range(self.n_classes):
            members = np.flatnonzero(pred == c)
            conf_c, hard_c = gmm_split(margin[members], self.s.seed + c)
            confident[members[conf_c]] = True
            hard[members[hard_c]] = True
        # The Gaussian models see every confident pixel; training uses 1/5 of them.
        model = GaussianSoftTargets(self.n_classes, self.s.tied_covariance).fit(
            self._features(where[confident]), pred[confident])
        keep = confident & (self.rng.random(pred.size) < self.s.confident_fraction)
        for chip in self.chips:
            chip.confident = np.zeros(chip.labels.shape, bool)
            chip.hard = np.zeros(chip.labels.shape, bool)
            chip.soft = None
        if not model.fitted:
            return
        used = keep | hard
        soft = model.soft_targets(self._features(where[used]))
        for i, chip in enumerate(self.chips):
            mine = where[used][:, 0] == i
            flat = where[used][mine, 1]
            chip.soft = np.zeros((self.n_classes,) + chip.labels.shape, np.float32)
            chip.soft.reshape(self.n_classes, -1)[:, flat] = soft[mine].T
            chip.confident.ravel()[where[keep & (where[:, 0] == i)][:, 1]] = True
            chip.hard.ravel()[where[hard & (where[:, 0] == i)][:, 1]] = True

    def _features(self, where: np.ndarray, batch: int = 65536) -> np.ndarray:
        """PCA scores of the pixels ``where``, computed in batches to bound memory."""
        parts = [self.pca.transform(gather_spectra(self.chips, where[i:i + batch]))
                 for i in range(0, len(where), batch)]
        return np.concatenate(parts) if parts else np.empty((0, self.pca.n_components_))

    def spectral_prior(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The final map's prior: (C, bands) weights and (C,) biases on standardised bands.

        Pooled Gaussians on the PCA scores of the random set's pool (the most confident
        pseudo-labels, at most ``_PRIOR_PER_CLASS`` per class), whose log-likelihoods are
        affine in the bands; scaled so that their median best-minus-second margin over the
        training pixels is ``spectral_prior`` times the network's (a ratio, so the balance
        does not depend on how separable the scene's spectra are). None when fewer than
        two classes can be modelled or the model cannot tell them apart.
        """
        where = pixel_index(self.chips, [c.pool for c in self.chips])
        labels = np.concatenate([c.labels.ravel()[c.pool.ravel()] for c in self.chips]) - 1
        chosen = np.concatenate([_subsample(np.flatnonzero(labels == c), _PRIOR_PER_CLASS,
                                            self.rng) for c in range(self.n_classes)])
        gaussians = GaussianSoftTargets(self.n_classes, tied=True).fit(
            self._features(where[chosen]), labels[chosen])
        if not gaussians.fitted:
            return None
        w_feat, b_feat = gaussians.linear_logits()
        # Scores of PCA features z = P (x - m) as scores of the bands x.
        weight = w_feat @ self.pca.components_
        bias = b_feat - weight @ self.pca.mean_
        probe = _subsample(pixel_index(self.chips, [c.eligible for c in self.chips]),
                           _GMM_SAMPLES, self.rng)
        logits = []
        for i, chip in enumerate(self.chips):
            flat = probe[probe[:, 0] == i, 1]
            if flat.size:
                probs = self.predict_chip(chip).reshape(self.n_classes, -1)[:, flat].T
                logits.append(np.log(np.maximum(probs, 1e-30)))
        prior_margin = np.median(classes_mod.bvsb(
            gather_spectra(self.chips, probe) @ weight.T + bias, axis=1))
        if not prior_margin > 1e-9:  # the classes' spectra cannot be told apart: no prior
            return None
        scale = (self.s.spectral_prior
                 * np.median(classes_mod.bvsb(np.concatenate(logits), axis=1)) / prior_margin)
        return weight * scale, bias * scale

    def train(self, progress: Progress, on_epoch=None) -> None:
        s = self.s
        steps = s.epochs * s.iterations
        for epoch in range(s.epochs):
            robust = epoch >= s.warmup_epochs and not s.plain_cross_entropy
            if robust:
                progress.update(epoch * s.iterations / steps,
                                f"stage II: epoch {epoch + 1}: confident and hard sets")
                self.refresh_sets()
            losses = []
            for it in range(s.iterations):
                progress.check()
                losses.append(self._iteration(robust))
                if robust and s.average_weights:
                    if self.average is None:
                        from torch.optim.swa_utils import AveragedModel
                        self.average = AveragedModel(self.network, use_buffers=True)
                    self.average.update_parameters(self.network)
                step = epoch * s.iterations + it + 1
                progress.update(step / steps, f"stage II: epoch {epoch + 1}/{s.epochs}, "
                                              f"iteration {it + 1}/{s.iterations}")
            self.history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
            if on_epoch is not None:
                on_epoch(epoch + 1, self)
        if self.average is not None:
            self.network.load_state_dict(self.average.module.state_dict())


# ------------------------------------------------------------------------- the algorithms

@dataclass
class StageIIResult:
    output: str
    confidence: str
    model: Optional[str]
    class_names: list
    colours: list
    warnings: list
    history: list


def check_outputs(rasters: dict, inputs: Sequence[str],
                   model: Optional[str] = None) -> None:
    """OUTPUT-style GeoTIFFs in ``rasters`` and the optional OUTPUT_MODEL file."""
    for param, path in rasters.items():
        raster_io.check_output_path(path, inputs, param)
    if model:
        # The .pt ending also keeps the model off an input's sidecars (.hdr, .aux.xml).
        raster_io.check_output_path(model, inputs, "OUTPUT_MODEL", (MODEL_EXTENSION,),
                                    "a PyTorch file")
    raster_io.check_distinct_outputs({**rasters, "OUTPUT_MODEL": model})


def _write_prediction(model: StageIIModel, reader: CubeReader, src, device, output: str,
                      output_confidence: str, tile: int, progress: Progress,
                      extra_outputs: Sequence[tuple[str, callable]] = ()) -> None:
    """Predict the whole scene tile by tile into OUTPUT and OUTPUT_CONFIDENCE (and any
    ``extra_outputs``: (path, writer(temp_path)) written in the same all-or-nothing step)."""
    n_classes = len(model.class_names)
    label_profile = raster_io.geotiff_profile(src, 1, classes_mod.label_dtype(n_classes),
                                              classes_mod.NODATA_LABEL)
    conf_profile = raster_io.geotiff_profile(src, 1, "float32", CONFIDENCE_NODATA)
    network = model.predictor().to(device)
    last_read = {}  # predict_tiles yields each tile right after reading it

    def read_standardised(y0, y1, x0, x1):
        block, invalid = reader.read(y0, y1, x0, x1)
        last_read.update(origin=(y0, x0), invalid=invalid)
        return model.stats.apply(block, invalid)

    paths = [output, output_confidence] + [p for p, _ in extra_outputs]
    shape = reader.shape
    with raster_io.atomic_outputs(paths) as temps:
        with rasterio.open(temps[0], "w", **label_profile) as dst_l, \
                rasterio.open(temps[1], "w", **conf_profile) as dst_c:
            dst_c.set_band_description(1, "confidence (best minus second-best)")
            n_tiles = len(tiles(shape, tile))
            for i, ((y0, y1, x0, x1), probs) in enumerate(
                    predict_tiles(network, read_standardised, shape, device, tile)):
                progress.check()
                ry0, rx0 = last_read["origin"]
                invalid = last_read["invalid"][y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]
                labels = (probs.argmax(0) + 1).astype(label_profile["dtype"])
                conf = classes_mod.bvsb(probs).astype(np.float32)
                labels[invalid] = classes_mod.NODATA_LABEL
                conf[invalid] = CONFIDENCE_NODATA
                window = rasterio.windows.Window(x0, y0, x1 - x0, y1 - y0)
                dst_l.write(labels[None], window=window)
                dst_c.write(conf[None], window=window)
                progress.update((i + 1) / n_tiles, f"stage II: predicting tile {i + 1}/{n_tiles}")
        classes_mod.write_class_metadata(temps[0], model.class_names, model.colours)
        for temp, (_, writer) in zip(temps[2:], extra_outputs, strict=True):
            writer(temp)


def run(inputs: Inputs, output: str, output_confidence: str,
        output_model: Optional[str] = None, schedule: Optional[Schedule] = None,
        device: str = "auto", progress: Optional[Progress] = None,
        on_epoch=None) -> StageIIResult:
    """Train the network on stage I's pseudo-labels and classify the whole scene.

    Writes OUTPUT (classes 1..C, 0 = no data, legend from LABELS), OUTPUT_CONFIDENCE
    (BvSB of the final model, Float32, NaN = no data) and optionally the model file.
    ``on_epoch(epoch, trainer)`` is a hook for benchmarks.
    """
    import contextlib

    progress = as_progress(progress)
    schedule = (schedule or Schedule()).validate()
    in_paths = [inputs.input_path, inputs.labels_path, inputs.confidence_path,
                inputs.mask_path]
    check_outputs({"OUTPUT": output, "OUTPUT_CONFIDENCE": output_confidence}, in_paths,
                   output_model)
    torch_device = resolve_device(device)
    rng = np.random.default_rng(schedule.seed)
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        src, lab, conf, mask = _open_inputs(stack, inputs, progress.sub(0.0, 0.01))
        progress.log_lines(src.band_report())
        progress.update(0.01, f"stage II: on {describe_device(torch_device)}; checking the labels")
        summary = summarise_labels(lab, conf, mask, inputs, schedule.samples_per_class)
        reader = CubeReader(src)
        thresholds = pool_thresholds(summary.histograms, schedule.random_set_fraction,
                                     _MIN_POOL)
        chips = build_cache(reader, lab, conf, mask, schedule, thresholds, rng,
                            progress.sub(0.0, 0.08))
        stats = band_stats(chips, rng)
        for chip in chips:
            chip.cube = stats.apply(chip.cube, chip.invalid)
        if not any(c.eligible.any() for c in chips):
            raise UserInputError("LABELS: no labelled pixel has valid INPUT data.")
        n_classes = len(summary.class_names)
        trainer = Trainer(chips, n_classes, schedule, torch_device, rng)
        trainer.train(progress.sub(0.08, 0.84), on_epoch)
        prior = None
        if schedule.spectral_prior > 0 and not schedule.plain_cross_entropy:
            progress.update(0.84, "stage II: fitting the spectral prior")
            prior = trainer.spectral_prior()
        del chips, trainer.chips
        model = StageIIModel(trainer.network.cpu(), stats, summary.class_names,
                             summary.colours, src.good_wavelengths,
                             schedule.width,
                             {"epochs": schedule.epochs, "seed": schedule.seed,
                              "spectral_prior": schedule.spectral_prior,
                              "trained_on": os.path.basename(inputs.input_path)},
                             *(prior or (None, None)), bands_used=src.good,
                             source_bands=src.count)
        extra = [(output_model, model.save)] if output_model else []
        _write_prediction(model, reader, src, torch_device, output, output_confidence,
                          schedule.predict_tile, progress.sub(0.85, 1.0), extra)
    return StageIIResult(output, output_confidence, output_model, summary.class_names,
                         summary.colours, summary.warnings, trainer.history)


def apply_model(input_path: str, model_path: str, output: str, output_confidence: str,
                device: str = "auto", tile: int = DEFAULT_PREDICT_TILE,
                progress: Optional[Progress] = None, bad_bands: Optional[str] = None,
                wavelengths_override: Optional[str] = None) -> StageIIResult:
    """Classify ``input_path`` with a model saved by :func:`run`. The model's bands are
    found in INPUT by wavelength (or by number when either lacks wavelengths)."""
    progress = as_progress(progress)
    check_outputs({"OUTPUT": output, "OUTPUT_CONFIDENCE": output_confidence},
                   [input_path, model_path])
    model = StageIIModel.load(model_path)
    torch_device = resolve_device(device)
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress.sub(0.0, 0.02)) as src:
        progress.log_lines(src.band_report())
        bands, warnings = model.match_bands(src)
        _write_prediction(model, CubeReader(src, bands), src, torch_device, output,
                          output_confidence, tile, progress.sub(0.02, 1.0))
    return StageIIResult(output, output_confidence, None, model.class_names, model.colours,
                         warnings, [])
