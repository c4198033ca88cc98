"""special:importproduct: a downloaded product (or any hyperspectral raster) as one
GeoTIFF that any QGIS or GDAL tool understands: the cube in physical units, every band
with standard metadata (``wavelength``, ``wavelength_units``, ``fwhm``, ``bbl``), nodata,
and the product's map grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import rasterio

from . import raster_io
from . import scene as scene_mod
from .progress import Progress, as_progress

OUTPUT_NODATA = float("nan")


@dataclass
class ImportResult:
    output: str
    product: str
    bands: int
    bad: dict
    rgb_bands: list  # 1-based bands nearest 655/553/451 nm among the good ones (for display)


def display_bands(scene, targets=(655.0, 553.0, 451.0)) -> list[int]:
    """1-based good bands nearest each target wavelength (bands 1-3 without wavelengths)."""
    good = scene.good
    if scene.wavelengths is None:
        return [int(b) + 1 for b in good[:3]]
    nm = scene.wavelengths[good]
    return [int(good[int(np.argmin(np.abs(nm - t)))]) + 1 for t in targets]


def import_product(input_path: str, output: str, bad_bands: Optional[str] = None,
                   wavelengths_override: Optional[str] = None,
                   progress: Optional[Progress] = None,
                   block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES) -> ImportResult:
    """Write ``input_path`` (a product file or any raster) as a Float32 GeoTIFF with every
    band in the file's order, ``bbl`` = 0 on the bad ones. Nodata is NaN. Windowed: memory
    does not grow with the scene; cancelling leaves no file."""
    progress = as_progress(progress)
    raster_io.check_output_path(output, [input_path])
    with scene_mod.open_scene(input_path, wavelengths_override, bad_bands,
                              progress=progress.sub(0.0, 0.05)) as scene:
        progress.log_lines(scene.band_report())
        bands = np.arange(scene.count)
        windows = raster_io.row_windows(scene.height, scene.width,
                                        scene.bytes_per_pixel(scene.count), block_bytes)
        profile = raster_io.geotiff_profile(scene, scene.count, "float32", OUTPUT_NODATA)
        work = progress.sub(0.05, 1.0)
        with raster_io.atomic_output(output) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                for b in range(scene.count):
                    tags = {"bbl": "0" if b in scene.bad else "1"}
                    name = f"band {b + 1}"
                    if scene.wavelengths is not None:
                        tags.update(wavelength=f"{scene.wavelengths[b]:.10g}",
                                    wavelength_units="Nanometers")
                        name += f" ({scene.wavelengths[b]:.10g} nm)"
                    if scene.fwhm is not None:
                        tags["fwhm"] = f"{scene.fwhm[b]:.10g}"
                    dst.update_tags(b + 1, **tags)
                    dst.set_band_description(b + 1, name)
                dst.update_tags(source_product=scene.product)
                for i, window in enumerate(windows):
                    work.check()
                    y0 = window.row_off
                    values, invalid = scene.read(y0, y0 + window.height, 0, scene.width,
                                                 bands=bands)
                    values[:, invalid] = OUTPUT_NODATA
                    dst.write(values, window=window)
                    work.update((i + 1) / len(windows),
                                f"import: block {i + 1}/{len(windows)}")
        return ImportResult(output, scene.product, scene.count, dict(scene.bad),
                            display_bands(scene))
