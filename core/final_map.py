"""Stage II's final map after the network (docs/method.md §2, "The final map"): the class
priors of the scene, estimated without labels, and an edge-aware smoothing of the class
probabilities guided by the scene's first principal components.

The network is trained on balanced random sets (the same number of pixels per class), so
its probabilities assume equal class priors; real scenes are nothing like that, and with
equal priors the rare classes (roofs, pavement) take pixels of the common ones. The
priors are re-estimated on the scene by the EM of Saerens, Latinne & Decaestecker (2002)
on the network's posteriors. The smoothing is He et al.'s guided filter (the one stage I
uses), so it averages the probabilities within objects and stops at their edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

# CLASS_PRIORS: "scene" = estimated on the scene being classified; "equal" = the
# network's own (balanced) priors.
PRIOR_MODES = ("scene", "equal")
GUIDE_COMPONENTS = 3
# The guide's principal components are scaled so that this share of pixels falls below
# 0 and above 1 at each end (clipped): the guided filter's eps is in the guide's units.
_GUIDE_TAIL = 0.02
# The guided filter's ε (in the guide's [0, 1] units, squared): small, so that the filter
# stops at weak edges too. With stage I's 0.01 it smoothed 1–3-pixel houses and roads of
# a 30 m scene into their surroundings (bench of real spectra: −1.6 to +0.3 OA, −1.0 AA on
# four scenes); with 1e-4 it gained −0.1 to +0.4 OA at the same AA (docs/benchmarks.md).
SMOOTHING_EPS = 1e-4
PRIOR_SAMPLE = 200_000  # pixels of the scene the priors are estimated on (a regular grid)
_EM_ITERATIONS = 200
_EM_TOLERANCE = 1e-6


@dataclass
class FinalMap:
    """How the final map is made from the network's probabilities (recorded in the model
    file, so that special:applymodel makes the map the same way)."""

    class_priors: str = "equal"
    smoothing_radius: int = 0
    smoothing_eps: float = SMOOTHING_EPS
    # (3, bands) weights and (3,) biases on standardised bands giving the guide in [0, 1]
    # before clipping; None: no smoothing possible (model files older than 0.6).
    guide_weight: Optional[np.ndarray] = None
    guide_bias: Optional[np.ndarray] = None

    @property
    def smooths(self) -> bool:
        return self.smoothing_radius > 0 and self.guide_weight is not None

    @property
    def active(self) -> bool:
        return self.class_priors == "scene" or self.smooths

    @property
    def halo(self) -> int:
        """Rows of context a strip needs for the smoothing to equal the whole-image one."""
        return 2 * self.smoothing_radius if self.smooths else 0

    def guide(self, standardised: np.ndarray) -> np.ndarray:
        """(3, rows, cols) float32 guide in [0, 1] of a (bands, rows, cols) standardised block."""
        assert self.guide_weight is not None and self.guide_bias is not None
        g = np.einsum("kb,bhw->khw", self.guide_weight.astype(np.float32), standardised)
        g += self.guide_bias.astype(np.float32)[:, None, None]
        return np.clip(g, 0.0, 1.0, out=g)


def fit_guide(components: np.ndarray, mean: np.ndarray, scores: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The guide's (3, bands) weights and (3,) biases from a PCA of standardised bands
    (``components`` (k, bands), ``mean`` (bands,)) and the PCA scores of a pixel sample
    (n, k): the first three components, each scaled to [0, 1] between its 2nd and 98th
    percentiles."""
    k = min(GUIDE_COMPONENTS, len(components))
    lo = np.percentile(scores[:, :k], 100 * _GUIDE_TAIL, axis=0)
    hi = np.percentile(scores[:, :k], 100 * (1 - _GUIDE_TAIL), axis=0)
    span = np.maximum(hi - lo, 1e-9)
    weight = components[:k] / span[:, None]
    bias = -(components[:k] @ mean + lo) / span
    if k < GUIDE_COMPONENTS:  # fewer than three components: repeat the first
        pad = GUIDE_COMPONENTS - k
        weight = np.concatenate([weight, np.repeat(weight[:1], pad, 0)])
        bias = np.concatenate([bias, np.repeat(bias[:1], pad)])
    return weight, bias


def estimate_priors(probs: np.ndarray) -> np.ndarray:
    """The scene's class priors (C,) from (n, C) posteriors computed under equal priors:
    Saerens et al.'s EM (re-weight the posteriors by the current priors, average them,
    repeat until the priors settle)."""
    probs = np.asarray(probs, np.float64)
    n_classes = probs.shape[1]
    priors = np.full(n_classes, 1.0 / n_classes)
    if len(probs) == 0:
        return priors
    for _ in range(_EM_ITERATIONS):
        adjusted = probs * (priors * n_classes)
        adjusted /= np.maximum(adjusted.sum(1, keepdims=True), 1e-300)
        new = adjusted.mean(0)
        if np.abs(new - priors).max() < _EM_TOLERANCE:
            priors = new
            break
        priors = new
    return priors


def grid_sample(shape: tuple[int, ...], limit: int = PRIOR_SAMPLE) -> int:
    """The step of the regular grid (every step-th row and column) that keeps at most
    ``limit`` pixels of a scene of ``shape``."""
    return max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / limit))))


def finish(probs: np.ndarray, guide: Optional[np.ndarray], settings: FinalMap,
           priors: Optional[np.ndarray]) -> np.ndarray:
    """The final (C, rows, cols) probabilities of a block from the network's (NaN where
    there is no data, kept NaN): smoothed along the guide's edges, then weighted by the
    priors. ``guide``: (3, rows, cols), needed when the settings smooth."""
    import torch

    from .pseudolabel.filters import guided_filter

    invalid = np.isnan(probs[0])
    n_classes = probs.shape[0]
    out = np.where(invalid, np.float32(1.0 / n_classes), probs).astype(np.float32)
    if settings.smooths:
        assert guide is not None
        g = torch.from_numpy(np.where(invalid, 0.0, guide).astype(np.float32))
        out = guided_filter(g, torch.from_numpy(out), settings.smoothing_radius,
                            settings.smoothing_eps).numpy()
        np.maximum(out, 0.0, out=out)
    if priors is not None:
        out *= np.asarray(priors, np.float32)[:, None, None]
    out /= np.maximum(out.sum(0, keepdims=True), 1e-30)
    out[:, invalid] = np.nan
    return out
