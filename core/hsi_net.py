"""The stage II network, its input standardisation, tiled prediction and the model file.

A small fully convolutional spectral–spatial network in plain PyTorch (docs/method.md §2.1):
a 1×1 spectral embedding, one 3×3 block at full resolution, two at half resolution,
bilinear upsampling, a skip from the embedding and a 1×1 head. Its spatial context is
kept to about 14 pixels on purpose: CLIP's errors cover whole fields, and a wide
context lets a network learn "this place is class X" and memorise a wrong field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

from . import raster_io
from .errors import UserInputError
from .final_map import GUIDE_COMPONENTS, PRIOR_MODES, FinalMap
from .version import software_version

if TYPE_CHECKING:
    from torch import nn

DEFAULT_WIDTH = 64
# Pixels of context on each side that can change a prediction (the receptive field's
# radius, rounded up to an even number so tiles keep the half-resolution grid aligned).
HALO = 16
DEFAULT_PREDICT_TILE = 512
MODEL_FORMAT = "special_qgis stage II model"
# 2: the spectral prior (a linear term on the standardised bands) is part of the model.
MODEL_VERSION = 2
WAVELENGTH_TOLERANCE_NM = 1.0


def _torch():
    import torch

    return torch


def build_network(bands: int, classes: int, width: int = DEFAULT_WIDTH, dropout: float = 0.1):
    """The spectral–spatial FCN: (N, bands, H, W) standardised → (N, classes, H, W) logits."""
    import torch  # (what _torch() does; a module here, so mypy resolves torch.nn's types)
    nn = torch.nn
    functional = torch.nn.functional

    def block(cin: int, cout: int, k: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class SpectralSpatialNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Sequential(block(bands, width, 1), block(width, width, 1))
            self.local = block(width, width, 3)
            self.context = nn.Sequential(block(width, width, 3), block(width, width, 3))
            self.fuse = block(3 * width, width, 1)
            self.drop = nn.Dropout2d(dropout)
            self.head = nn.Conv2d(width, classes, 1)

        def forward(self, x):
            height, width_ = x.shape[-2:]
            # Odd sizes: pad to even so pooling covers every pixel; cropped off below.
            pad_h, pad_w = height % 2, width_ % 2
            if pad_h or pad_w:
                x = functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            spectral = self.embed(x)
            local = self.local(spectral)
            context = self.context(functional.avg_pool2d(local, 2))
            context = functional.interpolate(context, size=local.shape[-2:], mode="bilinear",
                                             align_corners=False)
            out = self.head(self.drop(self.fuse(torch.cat([spectral, local, context], 1))))
            return out[..., :height, :width_]

    return SpectralSpatialNet()


def with_prior(network, weight: np.ndarray, bias: np.ndarray):
    """``network``'s logits plus a per-pixel linear term ``weight`` · x + ``bias``
    ((classes, bands) and (classes,)): the spectral prior of stage II, a 1×1 convolution
    that adds no spatial context, so tiled prediction still equals whole-scene."""
    import torch  # (what _torch() does; a module here, so mypy resolves torch.nn's types)

    class NetworkWithPrior(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            self.prior = torch.nn.Conv2d(weight.shape[1], weight.shape[0], 1)
            assert self.prior.bias is not None  # Conv2d's default bias=True
            with torch.no_grad():
                self.prior.weight.copy_(torch.from_numpy(
                    np.asarray(weight, np.float32))[:, :, None, None])
                self.prior.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))

        def forward(self, x):
            return self.network(x) + self.prior(x)

    return NetworkWithPrior()


# ------------------------------------------------------------------- input standardisation

@dataclass
class BandStats:
    """Per-band mean and standard deviation of the valid pixels, in the raster's units."""

    mean: np.ndarray  # (bands,) float64
    std: np.ndarray  # (bands,) float64

    @classmethod
    def from_samples(cls, values: np.ndarray) -> BandStats:
        """``values``: (bands, n) valid pixels."""
        if values.shape[1] == 0:
            raise UserInputError("INPUT has no valid pixels: every pixel is nodata.")
        mean = values.mean(axis=1, dtype=np.float64)
        std = values.std(axis=1, dtype=np.float64)
        # A constant band carries no information; dividing by 1 keeps it at 0.
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean, std)

    def apply(self, block: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """(bands, rows, cols) raw → float32 standardised; invalid pixels set to 0 (the mean)."""
        out = block.astype(np.float32, copy=True)
        out -= self.mean.astype(np.float32)[:, None, None]
        out /= self.std.astype(np.float32)[:, None, None]
        out[:, invalid] = 0.0
        return out


class CubeReader:
    """Windowed reads of a hyperspectral :class:`~.scene.Scene`: the bands the network
    takes (default: the good bands, in file order) in physical units, and the invalid mask
    (True where any good band is nodata)."""

    def __init__(self, scene, bands: Optional[np.ndarray] = None) -> None:
        self.scene = scene
        self.band_index = scene.good if bands is None else np.asarray(bands, np.int64)
        self.shape = scene.shape
        self.bands = len(self.band_index)

    def read(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        # The bands are good ones, so the scene's mask already covers their NaNs.
        return self.scene.read(y0, y1, x0, x1, bands=self.band_index)


# ----------------------------------------------------------------------- tiled prediction

def tiles(shape: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """Prediction cores: :func:`raster_io.tiles` with ``tile`` made even, so every core
    starts on the network's half-resolution grid."""
    return raster_io.tiles(shape, max(2, tile - tile % 2))


def predict_tiles(network, read_standardised, shape: tuple[int, int], device,
                  tile: int = DEFAULT_PREDICT_TILE, halo: int = HALO,
                  ) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Class probabilities tile by tile: yields (core, (classes, h, w) float32).

    ``read_standardised(y0, y1, x0, x1)`` gives the standardised input of a window. Each
    tile is read with ``halo`` pixels of context (even, so the half-resolution grid of the
    network lines up with the whole scene's), which makes the result equal to a
    whole-scene prediction up to float rounding.
    """
    torch = _torch()
    network.eval()
    height, width = shape
    for core in tiles(shape, tile):
        y0, y1, x0, x1 = core
        ry0, ry1 = max(0, y0 - halo), min(height, y1 + halo)
        rx0, rx1 = max(0, x0 - halo), min(width, x1 + halo)
        block = read_standardised(ry0, ry1, rx0, rx1)
        with torch.inference_mode():
            logits = network(torch.from_numpy(block)[None].to(device))[0]
            probs = torch.softmax(logits, dim=0)
            probs = probs[:, y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]
        yield core, probs.float().cpu().numpy()


# ------------------------------------------------------------------------- the model file

def _tensor_or_none(values: Optional[np.ndarray]):
    return None if values is None else _torch().from_numpy(np.asarray(values, np.float64))


def _array_or_none(tensor) -> Optional[np.ndarray]:
    return None if tensor is None else tensor.numpy()


@dataclass
class StageIIModel:
    """A trained network with everything needed to apply it to another scene."""

    network: nn.Module
    stats: BandStats
    class_names: list[str]
    colours: list[tuple[int, int, int]]
    wavelengths_nm: Optional[np.ndarray]
    width: int = DEFAULT_WIDTH
    info: dict = field(default_factory=dict)
    # The spectral prior: (classes, bands) weights and (classes,) biases on standardised
    # bands, added to the network's logits (None: the network alone).
    prior_weight: Optional[np.ndarray] = None
    prior_bias: Optional[np.ndarray] = None
    # Which bands of the training scene fed the network (0-based, the good bands in file
    # order) and how many it had: a scene without wavelengths is matched by them. None in
    # files from before bad bands were left out (every band used).
    bands_used: Optional[np.ndarray] = None
    source_bands: Optional[int] = None
    # How the final map is made from the network's probabilities (class priors,
    # smoothing): a final_map.FinalMap; None in files from before 0.6 (equal priors, no
    # smoothing, as those versions made their maps).
    final: Optional[FinalMap] = None

    @property
    def bands(self) -> int:
        return len(self.stats.mean)

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def predictor(self):
        """The module that maps standardised bands to the logits of the final map."""
        if self.prior_weight is None:
            return self.network
        return with_prior(self.network, self.prior_weight, self.prior_bias)

    def save(self, path: str) -> None:
        torch = _torch()
        state = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "bands": self.bands,
            "classes": len(self.class_names),
            "width": self.width,
            "class_names": list(self.class_names),
            "colours": [list(map(int, c)) for c in self.colours],
            "band_mean": torch.from_numpy(np.asarray(self.stats.mean, dtype=np.float64)),
            "band_std": torch.from_numpy(np.asarray(self.stats.std, dtype=np.float64)),
            "wavelengths_nm": _tensor_or_none(self.wavelengths_nm),
            "info": {**self.info, "special_qgis_version": software_version()},
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "prior_weight": _tensor_or_none(self.prior_weight),
            "prior_bias": _tensor_or_none(self.prior_bias),
            "bands_used": _tensor_or_none(self.bands_used),
            "source_bands": None if self.source_bands is None else int(self.source_bands),
            "final_map": None if self.final is None else {
                "class_priors": self.final.class_priors,
                "smoothing_radius": int(self.final.smoothing_radius),
                "smoothing_eps": float(self.final.smoothing_eps),
                "guide_weight": _tensor_or_none(self.final.guide_weight),
                "guide_bias": _tensor_or_none(self.final.guide_bias)},
        }
        torch.save(state, path)

    @classmethod
    def load(cls, path: str, param: str = "MODEL") -> StageIIModel:
        torch = _torch()
        if not path or not os.path.isfile(path):
            raise UserInputError(f"{param}: the file '{path}' does not exist.")
        not_ours = (f"{param}: '{path}' is not a special_qgis stage II model. Use the "
                    f"OUTPUT_MODEL file written by 'Noise-robust classification' "
                    f"(special:noiserobust).")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 (any unreadable file is the same user error)
            raise UserInputError(not_ours) from None
        if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
            raise UserInputError(not_ours)
        if state.get("version") != MODEL_VERSION:
            raise UserInputError(
                f"{param}: '{path}' was written by a different version of special_qgis "
                f"(model format {state.get('version')}, this version reads {MODEL_VERSION}). "
                f"Train the model again with special:noiserobust.")
        try:
            network = build_network(int(state["bands"]), int(state["classes"]),
                                    int(state["width"]))
            network.load_state_dict(state["state_dict"])
            wl, prior_w, prior_b = (_array_or_none(state[k]) for k in (
                "wavelengths_nm", "prior_weight", "prior_bias"))
            model = cls(network.eval(),
                        BandStats(state["band_mean"].numpy(), state["band_std"].numpy()),
                        list(state["class_names"]), [tuple(c) for c in state["colours"]],
                        wl, int(state["width"]), dict(state.get("info", {})), prior_w, prior_b)
            used = state.get("bands_used")
            if used is not None:
                model.bands_used = used.numpy().astype(np.int64)
                model.source_bands = int(state["source_bands"])
                if model.bands_used.shape != (model.bands,):
                    raise ValueError("bands_used shape")
            final = state.get("final_map")
            if final is not None:
                model.final = FinalMap(
                    str(final["class_priors"]), int(final["smoothing_radius"]),
                    float(final["smoothing_eps"]), _array_or_none(final["guide_weight"]),
                    _array_or_none(final["guide_bias"]))
                if (model.final.class_priors not in PRIOR_MODES
                        or (model.final.guide_weight is not None
                            and model.final.guide_weight.shape != (GUIDE_COMPONENTS, model.bands))):
                    raise ValueError("final map")
            if prior_w is not None and (prior_w.shape != (model.classes, model.bands)
                                        or prior_b is None or prior_b.shape != (model.classes,)):
                raise ValueError("prior shape")
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            raise UserInputError(f"{param}: '{path}' is damaged or incomplete (it says it "
                                 f"is a model, but parts are missing). Train it again with "
                                 f"special:noiserobust.") from None
        return model

    def match_bands(self, scene) -> tuple[np.ndarray, list[str]]:
        """The bands of ``scene`` (0-based) that feed the network, in the model's order, and
        warnings. By wavelength (each of the model's bands to the nearest good band within
        1 nm) when both know them, so another delivery of the same sensor works whatever
        its band order; else by band number, which needs the same band count."""
        path = scene.path
        trained = (f"'{path}' has {scene.count} bands ({len(scene.good)} good); the model "
                   f"was trained on {self.bands} bands. Apply the model to a scene with the "
                   f"same band set (the same sensor and product).")
        if self.wavelengths_nm is not None and scene.wavelengths is not None:
            good = scene.good
            chosen = []
            for k, target in enumerate(self.wavelengths_nm):
                distance = np.abs(scene.wavelengths[good] - target)
                j = int(np.argmin(distance))
                if distance[j] > WAVELENGTH_TOLERANCE_NM or good[j] in chosen:
                    any_band = int(np.argmin(np.abs(scene.wavelengths - target)))
                    note = (f" (that band is bad here: {scene.bad[any_band]})"
                            if any_band in scene.bad
                            and abs(scene.wavelengths[any_band] - target)
                            <= WAVELENGTH_TOLERANCE_NM else "")
                    raise UserInputError(
                        f"INPUT: band {any_band + 1} of '{path}' is at "
                        f"{scene.wavelengths[any_band]:.1f} nm{note}, but the model's band "
                        f"{k + 1} is at {target:.1f} nm, and no other good band of INPUT is "
                        f"within {WAVELENGTH_TOLERANCE_NM:g} nm of it. {trained}")
                chosen.append(int(good[j]))
            return np.array(chosen, np.int64), []
        used = np.arange(self.bands) if self.bands_used is None else self.bands_used
        expected = self.bands if self.source_bands is None else self.source_bands
        if scene.count != expected:
            raise UserInputError(f"INPUT: {trained}")
        bad = [int(b) for b in used if b in scene.bad]
        if bad:
            raise UserInputError(
                f"INPUT: the model uses band {bad[0] + 1}, which is bad in '{path}' "
                f"({scene.bad[bad[0]]}). Remove it from BAD_BANDS, or train a model without "
                f"it.")
        warnings = [] if self.wavelengths_nm is None and scene.wavelengths is None else [
            "The band wavelengths of the model or of INPUT are unknown, so only the band "
            "count could be checked."]
        return np.asarray(used, np.int64), warnings
