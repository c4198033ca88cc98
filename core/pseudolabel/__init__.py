"""Stage I of SPECIAL: CLIP pseudo-labels with resolution scaling (docs/method.md §1.2–1.5).

The scene is processed in tiles so memory is bounded by the tile size, not the scene.
At every scale, sliding windows lie on one grid over the whole (zoomed) scene; a tile
computes exactly the windows that reach it, plus a margin for the guided filter and the
resampling, so the tiled result equals a whole-scene run (for scales p/q with q ≤ 8).

The modules: :mod:`.options` (defaults and checks), :mod:`.plans` (the window grid per
tile and scale), :mod:`.filters` (the guided filter), :mod:`.segmenter` (a tile's fused
probabilities), :mod:`.labelling` (:func:`run`).
"""

from . import filters
from .filters import guided_filter
from .labelling import StageIResult, run
from .options import (
    DEFAULT_SCALES,
    DEFAULT_STRIDE,
    DEFAULT_TILE,
    DEFAULT_WINDOW,
    GUIDED_EPS,
    QUANTILES,
    StageIOptions,
    check_window,
    parse_scales,
)
from .plans import plan_tile, window_starts
from .segmenter import DenseSegmenter

__all__ = [
    "DEFAULT_SCALES", "DEFAULT_STRIDE", "DEFAULT_TILE", "DEFAULT_WINDOW", "GUIDED_EPS",
    "QUANTILES", "DenseSegmenter", "StageIOptions", "StageIResult", "check_window", "filters",
    "guided_filter", "parse_scales", "plan_tile", "run", "window_starts",
]
