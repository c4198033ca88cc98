"""Stage II's training: :class:`Trainer` runs the noise-robust schedule on the chips held
in memory (warm-up on the random set, then per epoch the confident and hard sets with the
teacher's soft targets), and :func:`fit_chips` is the whole fit shared by the raster
algorithm and :class:`~.classifier.NoiseRobustClassifier`."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import classes as classes_mod
from ..errors import UserInputError
from ..final_map import FinalMap, fit_guide
from ..hsi_net import BandStats, build_network, predict_tiles
from ..progress import Progress
from .data import Chip, _subsample, band_stats, gather_spectra, pixel_index
from .schedule import (
    _GMM_SAMPLES,
    Schedule,
    gmm_split,
    research_switch,
    sample_random_set,
    schedule_loss,
)
from .teacher import GaussianSoftTargets

_PCA_SAMPLES = 50_000
_PRIOR_PER_CLASS = 5_000  # pool pixels per class the spectral prior is fitted on


def _plain_cross_entropy(schedule: Schedule) -> bool:
    """The benchmark's baseline (research only, never set by the product): ordinary
    cross-entropy on every pseudo-labelled pixel, no robust phase, no spectral prior."""
    return research_switch(schedule, "plain_cross_entropy", False)


def augment(x, k: int, flip: bool):
    """Rotate (N, C, H, W) by k·90° and optionally flip left–right."""
    x = x.rot90(k, dims=(-2, -1))
    return x.flip(-1) if flip else x


def unaugment(x, k: int, flip: bool):
    """The inverse of :func:`augment`: logits back onto the original pixel grid."""
    if flip:
        x = x.flip(-1)
    return x.rot90(-k, dims=(-2, -1))



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
        self.final: Optional[FinalMap] = None  # set by fit_chips once trained
        self.history: list[dict] = []
        self.average: Any = None  # the AveragedModel of the robust phase
        self.plain = _plain_cross_entropy(schedule)

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
        return chip.eligible if self.plain else chip.pool

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
        if self.plain:
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
                assert mask is not None  # refreshed with chip.soft
                sel = np.flatnonzero(mask[y0:y1, x0:x1].ravel())
                terms += [flat[torch.from_numpy(sel).to(self.device)],
                          torch.from_numpy(np.ascontiguousarray(soft[sel])).to(self.device)]
        else:
            terms += [None] * 4
        return schedule_loss(*terms, hard_weight=self.s.hard_weight,  # type: ignore[misc]
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
        model = GaussianSoftTargets(self.n_classes).fit(
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
            assert chip.confident is not None and chip.hard is not None
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
        gaussians = GaussianSoftTargets(self.n_classes).fit(
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

    def final_map(self) -> FinalMap:
        """The final map's settings, with the smoothing's guide: the first principal
        components of the training pixels (a regular subsample: no random draw, which
        would change the spectral prior's)."""
        final = self.s.final_map()
        where = pixel_index(self.chips, [c.eligible for c in self.chips])
        where = where[::max(1, len(where) // _PCA_SAMPLES)]
        final.guide_weight, final.guide_bias = fit_guide(
            self.pca.components_, self.pca.mean_, self._features(where))
        return final

    def train(self, progress: Progress, on_epoch=None) -> None:
        s = self.s
        steps = s.epochs * s.iterations
        for epoch in range(s.epochs):
            robust = epoch >= s.warmup_epochs and not self.plain
            if robust:
                progress.update(epoch * s.iterations / steps,
                                f"stage II: epoch {epoch + 1}: confident and hard sets")
                self.refresh_sets()
            losses = []
            for it in range(s.iterations):
                progress.check()
                losses.append(self._iteration(robust))
                if robust:
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




def fit_chips(chips: list[Chip], n_classes: int, schedule: Schedule, device,
              rng: np.random.Generator, progress: Progress, on_epoch=None,
              ) -> tuple[Trainer, BandStats, Optional[tuple[np.ndarray, np.ndarray]]]:
    """Standardise the chips in place, train the network on them and fit the spectral
    prior. Returns the trainer (its network trained, its chips released), the band
    statistics and the prior's (weights, biases) or None. ``progress`` covers the run:
    training reports from 0.08 to 0.84."""
    stats = band_stats(chips, rng)
    for chip in chips:
        chip.cube = stats.apply(chip.cube, chip.invalid)
    if not any(c.eligible.any() for c in chips):
        raise UserInputError("LABELS: no labelled pixel has valid INPUT data.")
    trainer = Trainer(chips, n_classes, schedule, device, rng)
    trainer.train(progress.sub(0.08, 0.84), on_epoch)
    prior = None
    if schedule.spectral_prior > 0 and not trainer.plain:
        progress.update(0.84, "stage II: fitting the spectral prior")
        prior = trainer.spectral_prior()
    trainer.final = trainer.final_map()
    del trainer.chips
    return trainer, stats, prior
