"""The soft-target teacher of stage II's robust phase: per-class Gaussians on PCA scores
(docs/method.md §2), also the spectral prior of the final map."""

from __future__ import annotations

import math

import numpy as np

_ABSENT_CLASS_GAP = 1e4  # a class without labelled pixels never wins through the prior


class GaussianSoftTargets:
    """Per-class Gaussian models on PCA-reduced spectra (the features); soft targets are
    their likelihoods normalised across classes (equal priors). Every class has the pooled
    within-class covariance (linear discriminant analysis with equal priors), which needs
    far fewer pixels per class than a covariance of its own (the paper's per-class
    covariances misclassified whole fields: README, "Stage II quality")."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.means: dict[int, np.ndarray] = {}
        self.precisions: dict[int, np.ndarray] = {}
        self.log_norms: dict[int, float] = {}

    def fit(self, features: np.ndarray, classes: np.ndarray) -> GaussianSoftTargets:
        """``features``: (n, components) PCA scores; ``classes``: (n,) in 0..C-1."""
        dim = features.shape[1]
        present = [c for c in range(self.n_classes) if np.count_nonzero(classes == c) > 1]
        if len(present) < 2:  # nothing to tell apart (an untrained network's sets)
            return self
        resid = np.concatenate([x - x.mean(0)
                                for x in (features[classes == c] for c in present)])
        pooled = resid.T @ resid / max(1, len(resid) - len(present))
        for c in range(self.n_classes):
            x = features[classes == c]
            if len(x) < 2:
                continue
            mean = x.mean(0)
            cov = pooled.copy()
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
        """(C, components) weights and (C,) biases whose affine scores differ from
        :meth:`log_likelihood` by a per-pixel constant (the shared quadratic term), so they
        give the same soft targets. Classes without a model get weight 0 and a bias far
        below any other score."""
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


