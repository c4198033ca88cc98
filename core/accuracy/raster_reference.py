"""A reference raster of class codes, read strip by strip on INPUT's grid (reprojected on
the fly with nearest neighbour when its CRS or grid differs)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from .. import raster_io
from ..errors import UserInputError
from .histogram import integer_codes
from .matching import Value, match_key, shorten
from .sources import bounds_overlap, category_names


class RasterReference:
    """A reference raster read on INPUT's grid, reprojected with nearest neighbour when
    its CRS or grid differs."""

    kind = "raster"

    def __init__(self, path: str, grid, warnings: list) -> None:
        self._stack = contextlib.ExitStack()
        try:
            self._open(path, grid, warnings)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, path: str, grid, warnings: list) -> None:
        self.src = self._stack.enter_context(raster_io.open_raster(path, "REFERENCE"))
        if self.src.count != 1:
            raise UserInputError(
                f"REFERENCE: '{path}' has {self.src.count} bands; a reference raster has one "
                f"band of class codes (0 or nodata = no reference)."
            )
        self.names = category_names(path)
        src_crs, dst_crs = self.src.crs, grid.crs
        if not src_crs or not dst_crs:
            if src_crs != dst_crs:
                warnings.append(
                    f"{'REFERENCE' if not src_crs else 'INPUT'} has no CRS: it is taken to "
                    f"be in the CRS of {'INPUT' if not src_crs else 'REFERENCE'}.")
            src_crs = dst_crs = src_crs or dst_crs or CRS.from_epsg(3857)
        ref_bounds = tuple(self.src.bounds)
        if src_crs != dst_crs:
            try:
                ref_bounds = transform_bounds(src_crs, dst_crs, *ref_bounds)
            except rasterio.errors.CRSError as exc:
                raise UserInputError(
                    f"REFERENCE: its CRS cannot be transformed to INPUT's ({exc})."
                ) from None
        if not all(map(math.isfinite, ref_bounds)) or not bounds_overlap(ref_bounds,
                                                                           grid.bounds):
            raise UserInputError(
                "REFERENCE does not overlap INPUT: their extents (in INPUT's CRS) do not "
                "intersect. Choose the reference data of this scene, and check both CRSs."
            )
        same_grid = (self.src.crs == grid.crs and (self.src.height, self.src.width)
                     == (grid.height, grid.width)
                     and self.src.transform.almost_equals(grid.transform))
        if same_grid:
            self.reader = self.src
        else:
            self.reader = self._stack.enter_context(WarpedVRT(
                self.src, src_crs=src_crs, crs=dst_crs, transform=grid.transform,
                width=grid.width, height=grid.height, resampling=Resampling.nearest))
        self.values: dict[int, Value] = {}

    def read(self, window: Window) -> np.ndarray:
        block = self.reader.read(1, window=window)
        invalid = raster_io.invalid_mask(block[None], [self.reader.nodata])
        codes = integer_codes(block, invalid, "REFERENCE", "A reference raster")
        codes[codes < 0] = 0
        return codes

    def describe(self, ids, names: Sequence[str], warnings: list) -> dict:
        """Value of each reference code: matched to the INPUT class of the same code."""
        differ = []
        for code in ids:
            ref_name = self.names[code - 1] if code - 1 < len(self.names) else ""
            keys = {str(code)} | ({match_key(ref_name)} if ref_name.strip() else set())
            default = code if code <= len(names) else None
            if default and ref_name.strip() and match_key(ref_name) != match_key(names[code - 1]):
                differ.append(f"{code} is '{ref_name}' there and '{names[code - 1]}' in INPUT")
            self.values[code] = Value(str(code), keys, default)
        if differ:
            warnings.append(
                "REFERENCE and INPUT name some codes differently (" + shorten("; ".join(
                    differ)) + "). Codes were matched; if they mean different classes, give "
                "CLASS_NAMES (e.g. '1=water').")
        return self.values

    def close(self) -> None:
        self._stack.close()
