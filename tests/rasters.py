"""Test rasters written independently of the code under test, and expected values
computed with plain numpy."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

# A non-trivial grid: UTM 33N, 2.5 m pixels, not at the origin.
CRS_UTM = CRS.from_epsg(32633)
TRANSFORM = Affine(2.5, 0.0, 512345.0, 0.0, -2.5, 4123456.0)
_ENVI_DTYPES = {"uint8": 1, "int16": 2, "int32": 3, "float32": 4, "float64": 5, "uint16": 12}


def make_cube(bands: int = 12, rows: int = 17, cols: int = 23, dtype: str = "float32",
              seed: int = 0) -> np.ndarray:
    """A random cube whose values fit ``dtype``; (bands, rows, cols)."""
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        lo = 0 if np.dtype(dtype).kind == "u" else -2000
        return rng.integers(lo, 12000, size=(bands, rows, cols)).astype(dtype)
    return rng.uniform(0, 1, size=(bands, rows, cols)).astype(dtype)


def write_envi(path: str, cube: np.ndarray, wavelengths=None, units: str | None = "Nanometers",
               interleave: str = "bsq", nodata: float | None = None) -> str:
    """Raw binary + a hand-written .hdr, as ENVI writes them. ``path`` ends in .img."""
    bands, rows, cols = cube.shape
    order = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (1, 2, 0)}[interleave]
    np.ascontiguousarray(cube.transpose(order)).astype(cube.dtype.newbyteorder("<")).tofile(path)
    lines = [
        "ENVI",
        f"samples = {cols}",
        f"lines = {rows}",
        f"bands = {bands}",
        "header offset = 0",
        "file type = ENVI Standard",
        f"data type = {_ENVI_DTYPES[cube.dtype.name]}",
        f"interleave = {interleave}",
        "byte order = 0",
        f"map info = {{UTM, 1.000, 1.000, {TRANSFORM.c:.3f}, {TRANSFORM.f:.3f}, {TRANSFORM.a}, "
        f"{-TRANSFORM.e}, 33, North, WGS-84, units=Meters}}",
    ]
    if nodata is not None:
        lines.append(f"data ignore value = {nodata}")
    if units is not None:
        lines.append(f"wavelength units = {units}")
    if wavelengths is not None:
        lines.append("wavelength = {" + ", ".join(f"{w}" for w in wavelengths) + "}")
    with open(path[: -len(".img")] + ".hdr", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def write_gtiff(path: str, cube: np.ndarray, wavelengths=None, units: str = "nm",
                nodata: float | None = None, style: str = "band") -> str:
    """GeoTIFF with wavelengths as band metadata (style 'band') or IMAGERY domain
    CENTRAL_WAVELENGTH_UM (style 'imagery', values then in µm)."""
    profile = dict(driver="GTiff", width=cube.shape[2], height=cube.shape[1],
                   count=cube.shape[0], dtype=cube.dtype.name, crs=CRS_UTM,
                   transform=TRANSFORM, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(cube)
        if wavelengths is not None:
            for b, w in enumerate(wavelengths, start=1):
                if style == "band":
                    dst.update_tags(b, wavelength=str(w), wavelength_units=units)
                else:
                    dst.update_tags(b, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=f"{w:.6f}")
    return path


def expected_pseudo_rgb(cube: np.ndarray, wavelengths_nm, targets_nm) -> np.ndarray:
    """np.interp per pixel: linear between neighbours, edge value outside the range."""
    flat = cube.reshape(cube.shape[0], -1).astype(np.float64)
    out = np.stack([np.interp(targets_nm, wavelengths_nm, flat[:, i])
                    for i in range(flat.shape[1])], axis=1)
    return out.reshape((len(targets_nm),) + cube.shape[1:])


def file_digest(path: str) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def write_labelled_scene(folder, rows: int = 96, cols: int = 96, bands: int = 20,
                         n_classes: int = 4, wrong: float = 0.3, block: int = 12,
                         seed: int = 0, wavelengths=True) -> dict:
    """A separable scene of square fields (one class each) and pseudo-labels in which a
    ``wrong`` fraction of whole fields carry another class (clustered noise, like CLIP's),
    with a confidence that is lower, on average, on the wrong fields.

    Writes cube.tif (GeoTIFF, wavelengths as band metadata), labels.tif (with a legend),
    confidence.tif; returns their paths and the truth and labels arrays.
    """
    import os

    from special_qgis.core.classes import write_class_metadata

    rng = np.random.default_rng(seed)
    fields = rng.integers(1, n_classes + 1, size=(-(-rows // block), -(-cols // block)))
    truth = np.kron(fields, np.ones((block, block), int))[:rows, :cols]
    flip = rng.random(fields.shape) < wrong
    shifted = (fields - 1 + rng.integers(1, n_classes, size=fields.shape)) % n_classes + 1
    labels = np.kron(np.where(flip, shifted, fields), np.ones((block, block), int))[:rows, :cols]
    means = 0.3 + 0.4 * rng.random((n_classes, bands))
    cube = means[truth - 1].transpose(2, 0, 1) + rng.normal(0, 0.08, (bands, rows, cols))
    right = labels == truth
    confidence = np.where(right, rng.beta(5, 4, truth.shape), rng.beta(3, 5, truth.shape))
    wl = np.linspace(450, 2400, bands) if wavelengths else None
    paths = {
        "cube": write_gtiff(os.path.join(folder, "cube.tif"), cube.astype("float32"), wl),
        "labels": os.path.join(folder, "labels.tif"),
        "confidence": write_gtiff(os.path.join(folder, "confidence.tif"),
                                  confidence[None].astype("float32")),
    }
    write_gtiff(paths["labels"], labels[None].astype("uint8"), nodata=0)
    write_class_metadata(paths["labels"], [f"class {chr(65 + i)}" for i in range(n_classes)])
    return {**paths, "truth": truth, "pseudo": labels}
