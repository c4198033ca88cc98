"""The dense CLIP segmentation of one scene, tile by tile: the windows of every scale,
their logits averaged, guided-filtered, turned into probabilities and fused."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

from .. import clip_backbone, raster_io
from ..memory import release_freed_memory
from . import filters
from .options import StageIOptions
from .plans import _ScalePlan, plan_tile


def _softmax_(logits):
    """Softmax over dim 0, in place (saves a copy of C maps on big tiles)."""
    logits -= logits.max(dim=0, keepdim=True).values
    logits.exp_()
    logits /= logits.sum(dim=0, keepdim=True)
    return logits


class DenseSegmenter:
    """Runs the dense CLIP segmentation of one scene, tile by tile."""

    def __init__(self, backbone: clip_backbone.ClipBackbone, classes: Sequence[Sequence[str]],
                 options: StageIOptions) -> None:
        import torch

        from ..dense_clip import TextClassifier

        self.backbone = backbone
        self.options = options
        self.radius = backbone.patch_size
        key = tuple(tuple(c) for c in classes)
        if key not in backbone.text_cache:
            backbone.text_cache[key] = TextClassifier(backbone.model, backbone.tokenizer,
                                                      classes, backbone.device)
        self.classifier = backbone.text_cache[key]
        self.device = backbone.device
        self.mean = torch.tensor(backbone.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(backbone.std, device=self.device).view(1, 3, 1, 1)
        cuda = self.device.type == "cuda"
        self.batch = options.batch_size or (64 if cuda else 4)
        self.autocast_dtype = None
        if cuda:
            self.autocast_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported()
                                   else torch.float16)

    def plans(self, core: tuple, shape: tuple) -> list[_ScalePlan]:
        o = self.options
        return [plan_tile(core, shape, s, o.window, o.stride, self.radius) for s in o.scales]

    def tile_probabilities(self, core: tuple, shape: tuple, read_rgb, on_batch):
        """Fused class probabilities (C, rows, cols), a tensor on the model's device, for
        the tile ``core`` (y0, y1, x0, x1).

        ``read_rgb(y0, y1, x0, x1)`` returns the normalised [0, 1] RGB of an original
        window; ``on_batch(n)`` is called after each batch of n windows.
        """
        import torch

        fused = None
        with torch.inference_mode():
            for plan in self.plans(core, shape):
                probs = self._scale_probabilities(plan, core, shape, read_rgb, on_batch)
                fused = probs if fused is None else fused.add_(probs)
                release_freed_memory()
            assert fused is not None  # plans() gives one plan per scale, at least one
            return fused.div_(len(self.options.scales))

    def _scale_probabilities(self, plan: _ScalePlan, core, shape, read_rgb, on_batch):
        import torch
        import torch.nn.functional as F  # noqa: N812

        from ..dense_clip import window_logits

        s, win = plan.scale, self.options.window
        ry0, ry1, rx0, rx1 = plan.region
        oy0, oy1, ox0, ox1 = plan.read
        scaled_h, scaled_w = max(1, math.floor(shape[0] * s)), max(1, math.floor(shape[1] * s))

        rgb = torch.from_numpy(read_rgb(oy0, oy1, ox0, ox1)).to(self.device)[None]
        if s != 1.0:
            rgb = F.interpolate(rgb, scale_factor=s, mode="bicubic", align_corners=False,
                                recompute_scale_factor=False, antialias=s < 1).clamp_(0, 1)
        # Global scaled index of zoomed pixel j is o0*s + j (a whole number by the snapping).
        gy, gx = round(oy0 * s), round(ox0 * s)
        top, left = ry0 - gy, rx0 - gx
        valid_h = min(ry1, scaled_h) - ry0
        valid_w = min(rx1, scaled_w) - rx0
        guide = rgb[:, :, top:top + valid_h, left:left + valid_w]
        if (valid_h, valid_w) != (ry1 - ry0, rx1 - rx0):   # the scene is smaller than a window
            guide = F.pad(guide, (0, rx1 - rx0 - valid_w, 0, ry1 - ry0 - valid_h),
                          mode="replicate")
        guide = guide[0].contiguous()  # a copy, so the read margins can be freed
        del rgb

        n_cls = self.classifier.num_classes
        acc = torch.zeros((n_cls, ry1 - ry0, rx1 - rx0), device=self.device)
        count = torch.zeros((1, ry1 - ry0, rx1 - rx0), device=self.device)
        offsets = [(y - ry0, x - rx0) for y in plan.ys for x in plan.xs]
        visual = self.backbone.model.visual
        with torch.inference_mode():
            for i in range(0, len(offsets), self.batch):
                chunk = offsets[i:i + self.batch]
                crops = torch.stack([guide[:, y:y + win, x:x + win] for y, x in chunk])
                crops = (crops - self.mean) / self.std
                with (torch.autocast("cuda", dtype=self.autocast_dtype)
                      if self.autocast_dtype is not None else contextlib.nullcontext()):
                    logits = window_logits(visual, self.classifier, crops,
                                           self.backbone.patch_size)
                for (y, x), lg in zip(chunk, logits.float(), strict=True):
                    acc[:, y:y + win, x:x + win] += lg
                    count[:, y:y + win, x:x + win] += 1
                on_batch(len(chunk))
            logits = acc.div_(count.clamp_(min=1))
            del acc, count
            filters.guided_filter(guide, logits, self.radius)
            del guide
            probs = _softmax_(logits)
            if s != 1.0:
                probs = F.interpolate(probs[None], scale_factor=1 / s, mode="bilinear",
                                      align_corners=False, recompute_scale_factor=False,
                                      antialias=s > 1)[0]
        # Output pixel j is original pixel ry0/s + j.
        base_y, base_x = round(ry0 / s), round(rx0 / s)
        need_h, need_w = core[1] - base_y, core[3] - base_x
        if probs.shape[1] < need_h or probs.shape[2] < need_w:   # non-integer scale, last row
            probs = F.pad(probs[None], (0, max(0, need_w - probs.shape[2]),
                                        0, max(0, need_h - probs.shape[1])), mode="replicate")[0]
        return probs[:, core[0] - base_y:core[1] - base_y, core[2] - base_x:core[3] - base_x]

    def count_windows(self, shape: tuple) -> int:
        return sum(len(p.ys) * len(p.xs) for core in raster_io.tiles(shape, self.options.tile)
                   for p in self.plans(core, shape))
