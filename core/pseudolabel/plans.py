"""Where a tile's windows lie at each scale: one window grid over the whole zoomed scene,
so that a tile computes exactly the windows that reach it (plus the margins the guided
filter and the resampling need)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets along one axis: every `stride`, the last one flush with the end, so
    every pixel of ``length`` (≥ ``window``) is covered."""
    if length <= window:
        return [0]
    count = math.ceil((length - window) / stride) + 1
    return [min(i * stride, length - window) for i in range(count)]


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
