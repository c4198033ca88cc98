"""Raster input and output through rasterio: opening with clear errors, windowed
iteration, nodata masks, GeoTIFF profiles and all-or-nothing output files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Optional

import numpy as np
import rasterio
from rasterio.windows import Window

from .errors import UserInputError

# Budget for one block of input as read, in bytes. Keeps memory bounded whatever the
# scene size; the peak adds float64 copies of the few bands actually interpolated.
DEFAULT_BLOCK_BYTES = 64 * 1024 * 1024
GEOTIFF_EXTENSIONS = (".tif", ".tiff")
# GDAL's block cache defaults to 5 % of RAM and fills up on big scenes; cap it so peak
# memory does not grow with the scene.
GDAL_CACHE_MB = 128


def gdal_env() -> rasterio.Env:
    """The GDAL settings every core read/write runs under."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


RASTER_HINT = "Choose a raster file such as GeoTIFF or ENVI (.img/.dat with its .hdr)."


def check_input_file(path: str, param: str = "INPUT", hint: str = RASTER_HINT) -> None:
    """A missing file or a folder given as ``param`` is a :class:`UserInputError`."""
    if not path or not os.path.exists(path):
        raise UserInputError(f"{param}: the file '{path}' does not exist.")
    if os.path.isdir(path):
        raise UserInputError(f"{param}: '{path}' is a folder, not a raster file. {hint}")


@contextlib.contextmanager
def open_raster(path: str, param: str = "INPUT",
                hint: str = RASTER_HINT) -> Iterator[rasterio.DatasetReader]:
    """Open ``path`` for reading; a missing or unreadable file is a :class:`UserInputError`
    whose message ends with ``hint`` (what to choose instead)."""
    check_input_file(path, param, hint)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise UserInputError(
            f"{param}: '{path}' is not a raster that GDAL can read ({exc}). {hint}"
        ) from None
    with src:
        yield src


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output_path(path: str, inputs: Sequence[str], param: str = "OUTPUT",
                      extensions: Sequence[str] = GEOTIFF_EXTENSIONS,
                      written_as: str = "GeoTIFF") -> None:
    """Refuse an output path that cannot be written safely: missing folder, wrong
    format (an ending not in ``extensions``), or one of the inputs (which must never be
    overwritten)."""
    if not path:
        raise UserInputError(f"{param}: no output file given.")
    for item in inputs:
        if item and (same_file(path, item) or os.path.abspath(path) == os.path.abspath(item)):
            raise UserInputError(
                f"{param}: '{path}' is also an input. Choose another output file; inputs "
                f"are never overwritten."
            )
    if not path.lower().endswith(tuple(extensions)):
        raise UserInputError(
            f"{param}: '{path}' must end in {extensions[0]}: it is written as {written_as}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserInputError(
            f"{param}: the folder '{folder}' does not exist. Create it first or choose "
            f"another output location."
        )


def check_distinct_outputs(outputs: dict) -> None:
    """``outputs``: {parameter name: path or None}; the given paths must differ."""
    given = {name: os.path.abspath(path) for name, path in outputs.items() if path}
    if len(set(given.values())) != len(given):
        raise UserInputError(f"{', '.join(given)} must be different files.")


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str]) -> Iterator[list[str]]:
    """Yield one temporary path beside each of ``paths``; move them all into place only if
    the block succeeds, delete them (and GDAL's sidecars) otherwise."""
    temps = []
    try:
        for path in paths:
            # The temporary name keeps the ending: GDAL and readers pick formats by it.
            fd, tmp = tempfile.mkstemp(prefix=".partial-",
                                       suffix=os.path.splitext(path)[1] or ".tif",
                                       dir=os.path.dirname(os.path.abspath(path)))
            os.close(fd)
            temps.append(tmp)
        yield list(temps)
        for tmp, path in zip(temps, paths, strict=True):
            os.replace(tmp, path)
            if os.path.exists(tmp + ".aux.xml"):
                os.replace(tmp + ".aux.xml", path + ".aux.xml")
            elif os.path.exists(path + ".aux.xml"):
                os.remove(path + ".aux.xml")  # a stale legend of an earlier output
    finally:
        for tmp in temps:
            for leftover in (tmp, tmp + ".aux.xml", tmp + ".msk"):
                if os.path.exists(leftover):
                    os.remove(leftover)


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """:func:`atomic_outputs` for a single file."""
    with atomic_outputs([path]) as (tmp,):
        yield tmp


def row_windows(height: int, width: int, bytes_per_pixel: int,
                budget: int = DEFAULT_BLOCK_BYTES) -> list[Window]:
    """Full-width row strips whose input block fits ``budget`` bytes.

    Strips are multiples of 256 rows when they can be, to match the tiles we write.
    """
    rows = max(1, budget // max(1, width * bytes_per_pixel))
    if rows >= 256:
        rows -= rows % 256
    rows = min(rows, height)
    return [Window(0, r, width, min(rows, height - r)) for r in range(0, height, rows)]


def tiles(shape: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) tiles of at most ``tile`` × ``tile`` covering a (rows, cols) grid."""
    return [(y, min(y + tile, shape[0]), x, min(x + tile, shape[1]))
            for y in range(0, shape[0], tile) for x in range(0, shape[1], tile)]


def invalid_mask(block: np.ndarray, nodatavals: Sequence[Optional[float]]) -> np.ndarray:
    """(rows, cols) True where any band is nodata (its nodata value, or NaN).

    ``block``: (bands, rows, cols); ``nodatavals``: one entry per band, None if unset.
    """
    mask = np.zeros(block.shape[1:], dtype=bool)
    for band, nodata in zip(block, nodatavals, strict=True):
        if np.issubdtype(band.dtype, np.floating):
            mask |= np.isnan(band)
        if nodata is not None and not np.isnan(nodata):
            mask |= band == nodata
    return mask


def geotiff_profile(src: rasterio.DatasetReader, count: int, dtype: str,
                    nodata: Optional[float]) -> dict:
    """A compressed, tiled GeoTIFF profile with ``src``'s grid (CRS, transform, size)."""
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    profile = {
        "driver": "GTiff",
        "width": src.width,
        "height": src.height,
        "count": count,
        "dtype": dtype,
        "crs": src.crs,
        "transform": src.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 3 if floating else 2,
        "BIGTIFF": "IF_SAFER",
    }
    return profile
