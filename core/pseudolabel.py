"""Stage I of SPECIAL: CLIP pseudo-labels with resolution scaling (docs/method.md §1.2–1.5).

The scene is processed in tiles so memory is bounded by the tile size, not the scene.
At every scale, sliding windows lie on one grid over the whole (zoomed) scene; a tile
computes exactly the windows that reach it, plus a margin for the guided filter and the
resampling, so the tiled result equals a whole-scene run (for scales p/q with q ≤ 8).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np
import rasterio
from rasterio.windows import Window

from . import classes as classes_mod
from . import clip_backbone, pseudo_rgb, raster_io, wavelengths
from . import scene as scene_mod
from .class_map import CONFIDENCE_NODATA, ClassMapWriter
from .device import describe_device
from .errors import UserInputError
from .memory import release_freed_memory
from .progress import Progress, as_progress

DEFAULT_SCALES = (1.0, 2.0)
DEFAULT_WINDOW = 224
DEFAULT_STRIDE = 112
DEFAULT_TILE = 768
QUANTILES = (0.001, 0.999)
GUIDED_EPS = 0.01
_MAX_SAMPLES = 2_000_000


@dataclass
class StageIOptions:
    scales: tuple = DEFAULT_SCALES
    window: int = DEFAULT_WINDOW
    stride: int = DEFAULT_STRIDE
    tile: int = DEFAULT_TILE
    batch_size: Optional[int] = None  # None: 4 on the CPU (cache-friendly), 64 on a GPU


def parse_scales(text, param: str = "SCALES") -> tuple:
    """'1,2' (or a sequence of numbers) → (1.0, 2.0); every scale a positive number."""
    if isinstance(text, (int, float)):
        text = [text]
    if isinstance(text, (list, tuple)):
        text = ",".join(str(v) for v in text)
    values = wavelengths.parse_number_list(str(text if text is not None else ""), param)
    for v in values:
        if v <= 0:
            raise UserInputError(f"{param}: {v:g} is not a positive zoom factor; use e.g. '1,2'.")
        if v > 8:
            raise UserInputError(f"{param}: {v:g} is too large a zoom (at most 8).")
    return tuple(values)


def check_window(window: int, stride: int, patch_size: int) -> None:
    if window < patch_size:
        raise UserInputError(
            f"WINDOW: {window} px is smaller than the model's patch size ({patch_size} px); "
            f"use at least {patch_size} (224 is CLIP's native size)."
        )
    if stride < 1:
        raise UserInputError("STRIDE must be at least 1 pixel.")
    if stride > window:
        raise UserInputError(
            f"STRIDE ({stride}) is larger than WINDOW ({window}): pixels between windows would "
            f"get no label. Use a STRIDE of at most WINDOW (half of it is usual)."
        )


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets along one axis: every `stride`, the last one flush with the end, so
    every pixel of ``length`` (≥ ``window``) is covered."""
    if length <= window:
        return [0]
    count = math.ceil((length - window) / stride) + 1
    return [min(i * stride, length - window) for i in range(count)]


# ---------------------------------------------------------------------------- filters

def _box_mean(x, r: int):
    """Mean over a (2r+1)² box clipped at the borders; x (..., H, W) float32. The running
    sums are float64 so that long rows keep their precision."""
    import torch

    out_dtype = x.dtype
    for dim in (-1, -2):
        n = x.shape[dim]
        c = torch.cumsum(x, dim=dim, dtype=torch.float64)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
        idx = torch.arange(n, device=x.device)
        hi = (idx + r + 1).clamp(max=n)
        lo = (idx - r).clamp(min=0)
        shape = [1] * x.dim()
        shape[dim] = n
        x = c.index_select(dim, hi)
        x -= c.index_select(dim, lo)
        del c
        x /= (hi - lo).reshape(shape)
    return x.to(out_dtype)


def guided_filter(guide, src, radius: int, eps: float = GUIDED_EPS, strip: int = 512):
    """He et al.'s guided filter with a colour guide. guide (3, H, W) in [0, 1],
    src (C, H, W) float32, filtered in place (and returned) following the guide's edges.

    Runs in strips of ``strip`` rows with a halo of 2·radius rows (the reach of the two
    nested box filters), which gives exactly the whole-image result in bounded memory.
    """
    height = guide.shape[1]
    halo = 2 * radius
    if height <= strip + 2 * halo:
        return _guided_block(guide, src, radius, eps)
    originals = None  # the halo rows above the strip, as they were before filtering
    for y0 in range(0, height, strip):
        y1 = min(y0 + strip, height)
        a, b = max(0, y0 - halo), min(height, y1 + halo)
        block = src[:, a:b].clone()
        if originals is not None:
            block[:, :y0 - a] = originals
        # The next strip's halo, taken from this unfiltered block (src rows above y0 are
        # already filtered).
        originals = block[:, max(0, y1 - halo) - a:y1 - a].clone()
        _guided_block(guide[:, a:b], block, radius, eps)
        src[:, y0:y1] = block[:, y0 - a:y1 - a]
    return src


def _guided_block(guide, src, radius: int, eps: float):
    """The guided filter on one block, one class map at a time, with the 3×3 covariance
    inverted in closed form: about 20 extra maps of the block whatever C is."""
    g = guide.float()
    mean = [_box_mean(g[i], radius) for i in range(3)]
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    a, b, c, d, e, f = (_box_mean(g[i] * g[j], radius) - mean[i] * mean[j] for i, j in pairs)
    a, d, f = a + eps, d + eps, f + eps
    # Inverse of the symmetric [[a, b, c], [b, d, e], [c, e, f]] by cofactors.
    inv = [d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e,
           a * d - b * b]
    det = a * inv[0] + b * inv[1] + c * inv[2]
    del a, b, c, d, e, f
    inv = [m / det for m in inv]
    del det
    rows = ((inv[0], inv[1], inv[2]), (inv[1], inv[3], inv[4]), (inv[2], inv[4], inv[5]))
    for k in range(src.shape[0]):                                    # one class at a time
        p = src[k]
        mean_p = _box_mean(p, radius)
        cov = [_box_mean(g[i] * p, radius) - mean[i] * mean_p for i in range(3)]
        coef = [r0 * cov[0] + r1 * cov[1] + r2 * cov[2] for r0, r1, r2 in rows]
        offset = mean_p - sum(coef[i] * mean[i] for i in range(3))
        src[k] = sum(_box_mean(coef[i], radius) * g[i] for i in range(3)) + _box_mean(
            offset, radius)
    return src


# ---------------------------------------------------------------------------- geometry

@dataclass
class _ScalePlan:
    """Where one tile's computation happens at one scale, all in global coordinates."""
    scale: float
    region: tuple          # scaled (y0, y1, x0, x1) holding the selected windows
    read: tuple            # original (y0, y1, x0, x1) read and zoomed
    ys: list
    xs: list


def _snap(scale: float) -> tuple[int, int]:
    f = Fraction(scale).limit_denominator(8)
    return f.numerator, f.denominator


def _axis_plan(core0: int, core1: int, size: int, scale: float, window: int, stride: int,
               margin: int) -> tuple[tuple, tuple, list]:
    p, q = _snap(scale)
    scaled = max(1, math.floor(size * scale))
    padded = max(scaled, window)
    c0, c1 = math.floor(core0 * scale), min(math.ceil(core1 * scale), scaled)
    e0, e1 = c0 - margin, c1 + margin
    starts = [s for s in window_starts(padded, window, stride) if s < e1 and s + window > e0]
    r0, r1 = min(starts), max(starts) + window
    r0 -= r0 % p                                  # so r0 / scale is a whole original pixel
    k = q * math.ceil((math.ceil(2 / scale) + 1) / q)  # cubic support, in original pixels
    o0 = max(0, r0 * q // p - k)
    o1 = min(size, math.ceil(r1 / scale) + k)
    return (r0, r1), (o0, o1), starts


def plan_tile(core: tuple, shape: tuple, scale: float, window: int, stride: int,
              radius: int) -> _ScalePlan:
    margin = 2 * radius + math.ceil(2 * scale) + 2
    (ry, oy, ys) = _axis_plan(core[0], core[1], shape[0], scale, window, stride, margin)
    (rx, ox, xs) = _axis_plan(core[2], core[3], shape[1], scale, window, stride, margin)
    return _ScalePlan(scale, ry + rx, oy + ox, ys, xs)


def _softmax_(logits):
    """Softmax over dim 0, in place (saves a copy of C maps on big tiles)."""
    logits -= logits.max(dim=0, keepdim=True).values
    logits.exp_()
    logits /= logits.sum(dim=0, keepdim=True)
    return logits


# ---------------------------------------------------------------------------- the engine

class _Normaliser:
    """Per channel: clip to the 0.1 % / 99.9 % quantiles of valid pixels, map to [0, 1];
    invalid pixels take the channel median (a neutral value that does not disturb CLIP)."""

    def __init__(self, reader: pseudo_rgb.PlanReader, shape: tuple, progress: Progress) -> None:
        height, width = shape
        step = max(1, math.ceil(math.sqrt(height * width / _MAX_SAMPLES)))
        samples = []
        windows = raster_io.row_windows(height, width, reader.bytes_per_pixel)
        for i, window in enumerate(windows):
            progress.check()
            rgb, invalid = reader.read(window)
            rgb, invalid = rgb[:, ::step, ::step], invalid[::step, ::step]
            samples.append(rgb[:, ~invalid & np.isfinite(rgb).all(0)])
            progress.update((i + 1) / len(windows), "stage I: scene statistics")
        values = np.concatenate(samples, axis=1) if samples else np.empty((3, 0))
        if values.shape[1] == 0:
            raise UserInputError("INPUT has no valid pixels: every pixel is nodata.")
        self.lo = np.quantile(values, QUANTILES[0], axis=1).astype(np.float32)
        self.hi = np.quantile(values, QUANTILES[1], axis=1).astype(np.float32)
        self.hi = np.where(self.hi > self.lo, self.hi, self.lo + 1.0).astype(np.float32)
        self.fill = np.clip((np.median(values, axis=1) - self.lo) / (self.hi - self.lo), 0, 1)

    def __call__(self, rgb: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        out = (rgb - self.lo[:, None, None]) / (self.hi - self.lo)[:, None, None]
        out = np.clip(out, 0.0, 1.0)
        bad = invalid | ~np.isfinite(rgb).all(0)
        out[:, bad] = self.fill[:, None]
        return out.astype(np.float32)


class DenseSegmenter:
    """Runs the dense CLIP segmentation of one scene, tile by tile."""

    def __init__(self, backbone: clip_backbone.ClipBackbone, classes: Sequence[Sequence[str]],
                 options: StageIOptions) -> None:
        import torch

        from .dense_clip import TextClassifier

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

        from .dense_clip import window_logits

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
            guided_filter(guide, logits, self.radius)
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


@dataclass
class StageIResult:
    labels: str
    confidence: str
    probabilities: Optional[str]
    class_names: list
    windows: int


def run(input_path: str, classes: Sequence[Sequence[str]], output_labels: str,
        output_confidence: str, output_probabilities: Optional[str] = None,
        model_name: str = clip_backbone.DEFAULT_MODEL,
        pretrained: str = clip_backbone.DEFAULT_PRETRAINED, device: str = "auto",
        scales=DEFAULT_SCALES, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE,
        wavelengths_override: Optional[str] = None, targets: Optional[str] = None,
        cache_dir: Optional[str] = None, tile: int = DEFAULT_TILE,
        batch_size: Optional[int] = None, progress: Optional[Progress] = None,
        bad_bands: Optional[str] = None) -> StageIResult:
    """CLIP pseudo-labels for a hyperspectral (or 3-band RGB) raster.

    Writes the label raster (1..C, 0 = no data, colour table and category names), the
    BvSB confidence (Float32, NaN = no data) and optionally the fused class probabilities
    (C bands, Float32), all on the input's grid. ``classes``: one list of synonyms per
    class. A 3-band input is taken as RGB; more bands as hyperspectral (pseudo-RGB at
    ``targets``, default 655,553,451 nm).
    """
    progress = as_progress(progress)
    classes = classes_mod.validate_classes([list(c) for c in classes])
    scales = parse_scales(scales)
    outputs = [p for p in (output_labels, output_confidence, output_probabilities) if p]
    named = {"OUTPUT_LABELS": output_labels, "OUTPUT_CONFIDENCE": output_confidence,
             "OUTPUT_PROBABILITIES": output_probabilities}
    for name, path in named.items():
        if path:
            raster_io.check_output_path(path, [input_path], name)
    raster_io.check_distinct_outputs(named)

    targets_nm = pseudo_rgb.parse_targets(targets)
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress.sub(0.0, 0.02)) as src:
        progress.log_lines(src.band_report())
        if src.count == 3:
            weights = pseudo_rgb.rgb_weights(src)
        else:
            src.require_wavelengths()
            weights = pseudo_rgb.scene_weights(src, targets_nm)
        reader = pseudo_rgb.PlanReader(src, weights)
        shape = src.shape

        backbone = clip_backbone.load(model_name, pretrained, device, cache_dir,
                                      progress.sub(0.0, 0.05))
        check_window(window, stride, backbone.patch_size)
        if min(shape) < backbone.patch_size:
            raise UserInputError(
                f"INPUT is {shape[1]} × {shape[0]} pixels, smaller than one "
                f"{backbone.patch_size} × {backbone.patch_size} patch of {model_name}.")
        progress.update(0.05, f"stage I: on {describe_device(backbone.device)}")
        normalise = _Normaliser(reader, shape, progress.sub(0.05, 0.1))
        progress.update(0.1, "stage I: encoding the class names")
        segmenter = DenseSegmenter(backbone, classes,
                                   StageIOptions(scales, window, stride, tile, batch_size))
        total = segmenter.count_windows(shape)
        done = [0]
        run_progress = progress.sub(0.12, 1.0)

        def read_rgb(y0, y1, x0, x1):
            rgb, invalid = reader.read(Window(x0, y0, x1 - x0, y1 - y0))
            return normalise(rgb, invalid)

        def on_batch(n):
            done[0] += n
            run_progress.update(done[0] / total, f"stage I: window {done[0]}/{total}")
            run_progress.check()

        names = classes_mod.class_names(classes)
        n_cls = len(classes)
        prob_profile = raster_io.geotiff_profile(src, n_cls, "float32", CONFIDENCE_NODATA)
        with raster_io.atomic_outputs(outputs) as temps:
            tmp = dict(zip(outputs, temps, strict=True))
            class_map = ClassMapWriter(src, tmp[output_labels], tmp[output_confidence], n_cls)
            with class_map, contextlib.ExitStack() as stack:
                if output_probabilities:
                    dst_p = stack.enter_context(
                        rasterio.open(tmp[output_probabilities], "w", **prob_profile))
                    for i, name in enumerate(names, start=1):
                        dst_p.set_band_description(i, name)
                run_progress.check()
                for core in raster_io.tiles(shape, tile):
                    probs = segmenter.tile_probabilities(core, shape, read_rgb, on_batch)
                    win = Window(core[2], core[0], core[3] - core[2], core[1] - core[0])
                    _, invalid = reader.read(win)
                    class_map.write(win, (probs.argmax(0) + 1).cpu().numpy(),
                                    classes_mod.bvsb(probs).cpu().numpy(), invalid)
                    if output_probabilities:
                        probs = probs.cpu().numpy().astype(np.float32)
                        probs[:, invalid] = CONFIDENCE_NODATA
                        dst_p.write(probs, window=win)
            class_map.write_legend(names)
    return StageIResult(output_labels, output_confidence, output_probabilities, names, total)
