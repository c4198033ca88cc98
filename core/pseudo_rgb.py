"""Pseudo-RGB synthesis: a 3-band image interpolated from a hyperspectral cube at
chosen wavelengths (docs/method.md §1.1), over the good bands sorted by wavelength."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import rasterio
from rasterio.enums import ColorInterp

from . import raster_io, wavelengths
from . import scene as scene_mod
from .errors import UserInputError
from .progress import Progress, as_progress

DEFAULT_TARGETS = (655.0, 553.0, 451.0)
OUTPUT_NODATA = float("nan")


def parse_targets(text: Optional[str], param: str = "TARGET_WAVELENGTHS") -> np.ndarray:
    """Target wavelengths (nm) from a comma-separated string; the default if empty."""
    if text is None or not str(text).strip():
        return np.array(DEFAULT_TARGETS)
    values = np.array(wavelengths.parse_number_list(str(text), param))
    if np.any(values <= 0):
        bad = values[values <= 0][0]
        raise UserInputError(
            f"{param}: {bad:g} is not a positive wavelength. Give wavelengths in nm, "
            f"e.g. '655,553,451'."
        )
    return values


def interpolation_weights(band_nm: np.ndarray,
                          targets_nm: np.ndarray | Sequence[float]) -> np.ndarray:
    """(targets, bands) weights: each target as a linear interpolation between the two
    nearest band centres by wavelength (bands in any order; bands sharing a centre are
    averaged); a target outside the range takes the edge band(s)."""
    band_nm = np.asarray(band_nm, dtype=np.float64)
    centres, group = np.unique(band_nm, return_inverse=True)
    members = np.bincount(group, minlength=centres.size).astype(np.float64)
    weights = np.zeros((len(targets_nm), band_nm.size))
    for k, t in enumerate(targets_nm):
        if t <= centres[0]:
            per_centre = {0: 1.0}
        elif t >= centres[-1]:
            per_centre = {centres.size - 1: 1.0}
        else:
            hi = int(np.searchsorted(centres, t, side="right"))
            lo = hi - 1
            w = float((t - centres[lo]) / (centres[hi] - centres[lo]))
            per_centre = {lo: 1.0 - w, hi: w}
        for c, w in per_centre.items():
            weights[k, group == c] += w / members[c]
    return weights


def synthesize(cube: np.ndarray, band_nm: np.ndarray | Sequence[float],
               targets_nm: np.ndarray | Sequence[float] = DEFAULT_TARGETS) -> np.ndarray:
    """Interpolate ``cube`` (bands, rows, cols) at ``targets_nm``.

    Returns (len(targets), rows, cols) float32. Wavelengths in nm, in any order.
    """
    band_nm = wavelengths.validate(np.asarray(band_nm, float), cube.shape[0], "wavelengths")
    return apply_weights(cube, interpolation_weights(band_nm, targets_nm))


def apply_weights(cube: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(targets, rows, cols) float32 = weights (targets, bands) · cube (bands, rows, cols),
    summed in float64 over the bands each target uses."""
    out = np.empty((weights.shape[0],) + cube.shape[1:], dtype=np.float32)
    for k, row in enumerate(weights):
        acc = np.zeros(cube.shape[1:], dtype=np.float64)
        for b in np.flatnonzero(row):
            acc += row[b] * cube[b].astype(np.float64)
        out[k] = acc
    return out


class PlanReader:
    """Reads windows of a :class:`~.scene.Scene` through pseudo-RGB weights over its good
    bands, with the nodata mask. ``read(window)`` gives (targets, rows, cols) float32 and a
    (rows, cols) mask, True where any good band is nodata or NaN. Large windows are read
    in row strips, so memory stays bounded by ``block_bytes`` however big the window."""

    def __init__(self, scene, weights: np.ndarray,
                 block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES) -> None:
        self.scene = scene
        self.weights = weights
        self.targets = weights.shape[0]
        self.block_bytes = block_bytes
        # Bytes a block costs per pixel: the good bands as read plus the float output.
        self.bytes_per_pixel = scene.bytes_per_pixel() + 4 * self.targets

    def read(self, window) -> tuple[np.ndarray, np.ndarray]:
        y0, x0 = int(window.row_off), int(window.col_off)
        y1, x1 = y0 + int(window.height), x0 + int(window.width)
        values = np.empty((self.targets, y1 - y0, x1 - x0), np.float32)
        invalid = np.empty((y1 - y0, x1 - x0), bool)
        rows = max(1, self.block_bytes // max(1, (x1 - x0) * self.bytes_per_pixel))
        for a in range(y0, y1, rows):
            b = min(a + rows, y1)
            block, bad = self.scene.read(a, b, x0, x1)
            values[:, a - y0:b - y0] = apply_weights(block, self.weights)
            invalid[a - y0:b - y0] = bad
        return values, invalid


def rgb_weights(scene) -> np.ndarray:
    """Bands 1-3 of a 3-band RGB raster as they are (bad bands are not allowed there)."""
    if len(scene.good) != 3:
        raise UserInputError(
            f"INPUT: a 3-band raster is taken as R, G, B, but band(s) "
            f"{', '.join(str(b + 1) for b in scene.bad)} of it are bad. Give a raster "
            f"whose three bands hold data.")
    return np.eye(3)


def scene_weights(scene, targets_nm: np.ndarray | Sequence[float]) -> np.ndarray:
    """Pseudo-RGB weights over the good bands of a hyperspectral ``scene``."""
    if scene.count < 2:
        raise UserInputError(
            f"INPUT '{scene.path}' has {scene.count} band; a hyperspectral raster with "
            f"at least 2 bands is needed."
        )
    return interpolation_weights(scene.good_wavelengths, targets_nm)


def write_pseudo_rgb(input_path: str, output_path: str, wavelengths_override: Optional[str] = None,
                     targets: Optional[str] = None, progress: Optional[Progress] = None,
                     block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES,
                     bad_bands: Optional[str] = None) -> str:
    """Write the pseudo-RGB of ``input_path`` to the GeoTIFF ``output_path``.

    ``wavelengths_override``: band centres in nm as text (else read from metadata);
    ``targets``: target wavelengths in nm as text (default 655,553,451); ``bad_bands``:
    BAD_BANDS text. Only good bands are interpolated. The output is Float32 with the
    input's grid; a pixel that is nodata (or NaN) in any good band is NaN, the output's
    nodata value. Works block by block; cancelling leaves no file.
    """
    progress = as_progress(progress)
    targets_nm = parse_targets(targets)
    raster_io.check_output_path(output_path, [input_path])
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress.sub(0.0, 0.05), need_wavelengths=True) as scene:
        progress.log_lines(scene.band_report())
        reader = PlanReader(scene, scene_weights(scene, targets_nm), block_bytes)
        windows = raster_io.row_windows(scene.height, scene.width, reader.bytes_per_pixel,
                                        block_bytes)
        profile = raster_io.geotiff_profile(scene, len(targets_nm), "float32", OUTPUT_NODATA)
        work = progress.sub(0.05, 1.0)
        with raster_io.atomic_output(output_path) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                if len(targets_nm) == 3:
                    dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                for k, t in enumerate(targets_nm):
                    dst.set_band_description(k + 1, f"{t:g} nm")
                    dst.update_tags(k + 1, wavelength=f"{t:g}", wavelength_units="nm")
                for i, window in enumerate(windows):
                    work.check()
                    rgb, invalid = reader.read(window)
                    rgb[:, invalid] = OUTPUT_NODATA
                    dst.write(rgb, window=window)
                    work.update((i + 1) / len(windows),
                                f"pseudo-RGB: block {i + 1}/{len(windows)}")
    return output_path
