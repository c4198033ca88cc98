"""Stage II's training schedule: its settings (:class:`Schedule`) and the maths of each
step: the random set, the confidence threshold of its pool, the split of a predicted class
into confident and hard members, and the loss (docs/method.md §2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserInputError
from ..final_map import PRIOR_MODES, FinalMap
from ..hsi_net import DEFAULT_PREDICT_TILE, DEFAULT_WIDTH

_GMM_SAMPLES = 20_000
MIN_POOL = 50  # pixels per class in the random set's pool, however small the fraction
_MIN_POOL = MIN_POOL


@dataclass
class Schedule:
    """The training schedule; defaults are the paper's (docs/method.md §2)."""

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
    # components (:class:`~.teacher.GaussianSoftTargets`). The paper's per-class
    # covariances on 5 components misclassified whole fields and the network followed them
    # (README, "Stage II quality").
    pca_components: int = 30
    # (The kept network is always the mean of the weights over every robust-phase
    # iteration: the last iterate swings by several points from epoch to epoch.)
    # The final map adds a spectral prior to the network's logits: linear discriminants
    # (pooled Gaussians on the PCA scores) fitted on the random set's pool, scaled so that
    # their median margin is this multiple of the network's. The network alone decides
    # contested fields differently from one SEED to the next; the prior, a per-pixel
    # spectral model that cannot memorise a field, steadies it (README, "Stage II
    # quality"). 0 = the network alone.
    spectral_prior: float = 1.0
    # The final map (core/final_map.py): "equal" = the balanced training's equal class
    # priors, "scene" = priors estimated on the scene (EM on the network's posteriors);
    # and the guided filter's radius over the class probabilities (0 = no smoothing).
    # The scene's priors lost average accuracy on both benchmarks (with the smoothing,
    # 5–20 points: the rare classes' small objects go to their common neighbours), so they
    # are an option, not the default (docs/benchmarks.md, "Stage II on real spectra").
    class_priors: str = "equal"
    smoothing_radius: int = 1
    seed: int = 0
    crop: int = 128
    crops_per_iteration: int = 4
    width: int = DEFAULT_WIDTH
    cache_bytes: int = 768 * 1024 * 1024
    predict_tile: int = DEFAULT_PREDICT_TILE
    # Research switches (benchmark baselines) are not fields of this class: the benchmark
    # adds them in a subclass (bench/bench_stage2_quality.py, ExperimentSchedule) and the
    # trainer reads them through :func:`research_switch`.

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
        if self.class_priors not in PRIOR_MODES:
            raise UserInputError(
                f"CLASS_PRIORS must be one of {', '.join(PRIOR_MODES)} (it is "
                f"'{self.class_priors}').")
        if self.smoothing_radius < 0:
            raise UserInputError(
                f"SMOOTHING_RADIUS cannot be negative ({self.smoothing_radius}); 0 = no "
                f"smoothing.")
        return self

    def model_info(self) -> dict:
        """What a model file records of the schedule that trained it."""
        return {"epochs": self.epochs, "seed": self.seed,
                "spectral_prior": self.spectral_prior, "class_priors": self.class_priors,
                "smoothing_radius": self.smoothing_radius}

    def final_map(self) -> FinalMap:
        """The :class:`~..final_map.FinalMap` settings of these fields (no guide yet)."""
        return FinalMap(self.class_priors, self.smoothing_radius)


def research_switch(schedule: Schedule, name: str, default: bool = False) -> bool:
    """A research switch of a benchmark's :class:`Schedule` subclass, or ``default`` (the
    product's behaviour) for the product's own Schedule, which has none. Research only:
    no Processing parameter or model file sees these switches."""
    return bool(getattr(schedule, name, default))


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

