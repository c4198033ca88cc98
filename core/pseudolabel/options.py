"""Stage I's settings: defaults, the options of a run and the checks of SCALES, WINDOW and
STRIDE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import wavelengths
from ..errors import UserInputError

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
