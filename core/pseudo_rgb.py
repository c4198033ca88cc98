"""Pseudo-RGB synthesis: a 3-band image interpolated from a hyperspectral cube at
chosen wavelengths (DESIGN.md §1.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import rasterio
from rasterio.enums import ColorInterp

from . import raster_io, wavelengths
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


def interpolation_plan(band_nm: np.ndarray, targets_nm: Sequence[float]
                       ) -> list[tuple[int, int, float]]:
    """For each target, (lower band, upper band, weight of upper band).

    Linear interpolation between the two bands that bracket the target; a target outside
    the sensor's range takes the edge band. ``band_nm`` must be strictly increasing.
    """
    band_nm = np.asarray(band_nm, dtype=np.float64)
    last = band_nm.size - 1
    plan = []
    for t in targets_nm:
        if t <= band_nm[0]:
            plan.append((0, 0, 0.0))
        elif t >= band_nm[last]:
            plan.append((last, last, 0.0))
        else:
            hi = int(np.searchsorted(band_nm, t, side="right"))
            lo = hi - 1
            plan.append((lo, hi, float((t - band_nm[lo]) / (band_nm[hi] - band_nm[lo]))))
    return plan


def synthesize(cube: np.ndarray, band_nm: Sequence[float],
               targets_nm: Sequence[float] = DEFAULT_TARGETS) -> np.ndarray:
    """Interpolate ``cube`` (bands, rows, cols) at ``targets_nm``.

    Returns (len(targets), rows, cols) float32. Wavelengths in nm, strictly increasing.
    """
    band_nm = wavelengths.validate(np.asarray(band_nm, float), cube.shape[0], "wavelengths")
    plan = interpolation_plan(band_nm, targets_nm)
    return _apply_plan(cube, plan)


def _apply_plan(cube: np.ndarray, plan: list[tuple[int, int, float]],
                index: Optional[dict[int, int]] = None) -> np.ndarray:
    index = index or {}
    out = np.empty((len(plan),) + cube.shape[1:], dtype=np.float32)
    for k, (lo, hi, w) in enumerate(plan):
        a = cube[index.get(lo, lo)].astype(np.float64)
        b = cube[index.get(hi, hi)].astype(np.float64)
        out[k] = (1.0 - w) * a + w * b
    return out


IDENTITY_RGB = [(0, 0, 0.0), (1, 1, 0.0), (2, 2, 0.0)]


class PlanReader:
    """Reads windows of ``src`` through an interpolation plan, with the nodata mask.

    ``plan``: from :func:`interpolation_plan`, or :data:`IDENTITY_RGB` to read bands 1-3
    of an RGB raster as they are. ``read(window)`` gives (len(plan), rows, cols) float32
    and a (rows, cols) mask, True where any input band is nodata or NaN.
    """

    def __init__(self, src: rasterio.DatasetReader, plan: list[tuple[int, int, float]]) -> None:
        self.src = src
        self.plan = plan
        self.nodatavals = list(src.nodatavals)
        floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
        # Nodata in any band blanks the pixel, so then every band must be read.
        if floating or any(v is not None for v in self.nodatavals):
            self.bands = list(range(src.count))
        else:
            self.bands = sorted({i for lo, hi, _ in plan for i in (lo, hi)})
        self.index = {b: k for k, b in enumerate(self.bands)}
        # Bytes a block costs per pixel: the bands as read plus the float output.
        self.bytes_per_pixel = (len(self.bands) * np.dtype(src.dtypes[0]).itemsize
                                + 4 * len(plan) + 8)

    def read(self, window) -> tuple[np.ndarray, np.ndarray]:
        block = self.src.read([b + 1 for b in self.bands], window=window)
        values = _apply_plan(block, self.plan, self.index)
        invalid = raster_io.invalid_mask(block, [self.nodatavals[b] for b in self.bands])
        return values, invalid


def open_plan(src: rasterio.DatasetReader, input_path: str,
              wavelengths_override: Optional[str], targets_nm: Sequence[float]
              ) -> list[tuple[int, int, float]]:
    """The interpolation plan for a hyperspectral ``src`` (checks bands and wavelengths)."""
    if src.count < 2:
        raise UserInputError(
            f"INPUT '{input_path}' has {src.count} band; a hyperspectral raster with "
            f"at least 2 bands is needed."
        )
    band_nm = wavelengths.resolve(input_path, src.count, wavelengths_override)
    return interpolation_plan(band_nm, targets_nm)


def write_pseudo_rgb(input_path: str, output_path: str, wavelengths_override: Optional[str] = None,
                     targets: Optional[str] = None, progress: Optional[Progress] = None,
                     block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES) -> str:
    """Write the pseudo-RGB of ``input_path`` to the GeoTIFF ``output_path``.

    ``wavelengths_override``: band centres in nm as text (else read from metadata);
    ``targets``: target wavelengths in nm as text (default 655,553,451). The output is
    Float32 with the input's grid; a pixel that is nodata (or NaN) in any input band is
    NaN, the output's nodata value. Works block by block; cancelling leaves no file.
    """
    progress = as_progress(progress)
    targets_nm = parse_targets(targets)
    raster_io.check_output_path(output_path, [input_path])
    with raster_io.gdal_env(), raster_io.open_raster(input_path) as src:
        reader = PlanReader(src, open_plan(src, input_path, wavelengths_override, targets_nm))
        windows = raster_io.row_windows(src.height, src.width, reader.bytes_per_pixel,
                                        block_bytes)
        profile = raster_io.geotiff_profile(src, len(targets_nm), "float32", OUTPUT_NODATA)
        with raster_io.atomic_output(output_path) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                if len(targets_nm) == 3:
                    dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                for k, t in enumerate(targets_nm):
                    dst.set_band_description(k + 1, f"{t:g} nm")
                    dst.update_tags(k + 1, wavelength=f"{t:g}", wavelength_units="nm")
                for i, window in enumerate(windows):
                    progress.check()
                    rgb, invalid = reader.read(window)
                    rgb[:, invalid] = OUTPUT_NODATA
                    dst.write(rgb, window=window)
                    progress.update((i + 1) / len(windows),
                                    f"pseudo-RGB: block {i + 1}/{len(windows)}")
    return output_path
