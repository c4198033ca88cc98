"""The scene of bench/reproduce.py: band centres (sensor presets, --wavelengths), reading the
cube and the ground truth (.mat, v7.3 through h5py, or any raster GDAL reads), and writing
the cube as the GeoTIFF the stages read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scenes import IP_REMOVED_BANDS, aviris_92av3c

from special_qgis.core import raster_io
from special_qgis.core import wavelengths as wavelengths_mod
from special_qgis.core.errors import UserInputError

# 1-based band numbers of the usual "corrected" cubes (water absorption and noisy bands);
# Indian Pines' are bench/scenes.py's IP_REMOVED_BANDS.
SALINAS_REMOVED = tuple(range(108, 113)) + tuple(range(154, 168)) + (224,)
_GTIFF_DTYPES = {"uint8", "uint16", "int16", "uint32", "int32", "float32"}


# ------------------------------------------------------------------------ wavelengths

@dataclass(frozen=True)
class Sensor:
    description: str
    band_counts: str  # for messages


SENSORS = {
    "rosis-pavia-centre": Sensor(
        "ROSIS, Pavia Centre: 102 bands evenly spaced over 430-860 nm (the range the "
        "dataset is published with; the exact centres are not published, so this is an "
        "approximation of a few nm)", "102"),
    "rosis-pavia-university": Sensor(
        "ROSIS, Pavia University: 103 bands evenly spaced over 430-860 nm (approximate, as "
        "for Pavia Centre)", "103"),
    "aviris-indian-pines": Sensor(
        "AVIRIS, Indian Pines: the 220 band centres of 92AV3C shipped by the 'spectral' "
        "package (spectral/tests/data/92AV3C.spc); a 200-band cube (Indian_pines_corrected"
        ".mat) drops bands 104-108, 150-163 and 220", "220 or 200"),
    "aviris-salinas": Sensor(
        "AVIRIS, Salinas: 224 bands evenly spaced over 400-2500 nm (approximate: the "
        "flight's own centres are not shipped by any package here; AVIRIS' real centres "
        "differ by up to about 10 nm in the visible, a small shift for the pseudo-RGB's "
        "~100 nm apart targets); a 204-band cube (Salinas_corrected.mat) drops bands "
        "108-112, 154-167 and 224", "224 or 204"),
}


def _drop(values: np.ndarray, removed: tuple) -> np.ndarray:
    keep = ~np.isin(np.arange(1, len(values) + 1), removed)
    return values[keep]


def _indian_pines_centres() -> np.ndarray:
    try:
        return aviris_92av3c()[0]
    except (ImportError, OSError):
        raise UserInputError(
            "--sensor aviris-indian-pines needs the band centres that the 'spectral' package "
            "ships (spectral/tests/data/92AV3C.spc), and they are not installed here. "
            "Install it (.venv/bin/pip install spectral) or give --wavelengths.") from None


def sensor_wavelengths(name: str, band_count: int) -> np.ndarray:
    """Band centres (nm) of a preset for a cube of ``band_count`` bands, in band order
    (not necessarily increasing: AVIRIS' spectrometers overlap)."""
    if name == "rosis-pavia-centre" and band_count == 102:
        return np.linspace(430.0, 860.0, 102)
    if name == "rosis-pavia-university" and band_count == 103:
        return np.linspace(430.0, 860.0, 103)
    if name == "aviris-indian-pines" and band_count in (220, 200):
        centres = _indian_pines_centres()
        return centres if band_count == 220 else _drop(centres, IP_REMOVED_BANDS)
    if name == "aviris-salinas" and band_count in (224, 204):
        centres = np.linspace(400.0, 2500.0, 224)
        return centres if band_count == 224 else _drop(centres, SALINAS_REMOVED)
    raise UserInputError(
        f"--sensor {name}: the cube has {band_count} bands, but this preset is for "
        f"{SENSORS[name].band_counts} bands. Check --cube (and --cube-key), or give the band "
        f"centres with --wavelengths.")


def parse_wavelengths(text: str, band_count: int) -> np.ndarray:
    """'430:860' (evenly spaced band centres from first to last) or a comma-separated list,
    one per band; nm, or µm for numbers below 100."""
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 2:
            raise UserInputError(
                f"--wavelengths: '{text}' is not 'first:last' (e.g. 430:860 for ROSIS).")
        first, last = (wavelengths_mod.parse_number_list(p, "--wavelengths") for p in parts)
        if len(first) != 1 or len(last) != 1:
            raise UserInputError(
                f"--wavelengths: '{text}' is not 'first:last' (e.g. 430:860 for ROSIS).")
        values = np.linspace(first[0], last[0], band_count)
    else:
        values = np.asarray(wavelengths_mod.parse_number_list(text, "--wavelengths"))
        if values.size != band_count:
            raise UserInputError(
                f"--wavelengths: {values.size} wavelengths given but the cube has "
                f"{band_count} bands; give one per band, or 'first:last' for evenly spaced "
                f"centres.")
    return wavelengths_mod.to_nm(values, None, source="--wavelengths")


# ----------------------------------------------------------------------------- reading

def _check_file(path: str, param: str) -> None:
    if not path or not os.path.exists(path):
        raise UserInputError(f"{param}: the file '{path}' does not exist.")
    if os.path.isdir(path):
        raise UserInputError(f"{param}: '{path}' is a folder, not a file.")


def _mat_v73_message(path: str, param: str) -> str:
    return (
        f"{param}: '{path}' is a MATLAB v7.3 file (HDF5), which scipy cannot read, and h5py "
        f"is not installed. Either install h5py (.venv/bin/pip install h5py) and run again, "
        f"or re-save the file in the v7 format: in MATLAB or Octave, "
        f"load('{os.path.basename(path)}'); save('-v7', 'converted.mat', 'NAME') with NAME "
        f"the array's variable name.")


def _pick(names_shapes: list, key: Optional[str], ndim: int, path: str, param: str) -> str:
    """The variable to read: ``key``, or the only ``ndim``-D array in the file."""
    listing = ", ".join(f"'{n}' {tuple(s)}" for n, s in names_shapes) or "none"
    if key:
        for name, shape in names_shapes:
            if name == key:
                if len(shape) != ndim:
                    raise UserInputError(
                        f"{param}-key: '{key}' in '{path}' has shape {tuple(shape)}, not a "
                        f"{ndim}-D array.")
                return name
        raise UserInputError(
            f"{param}-key: '{path}' has no variable '{key}'. Its variables: {listing}.")
    found = [name for name, shape in names_shapes if len(shape) == ndim]
    if len(found) == 1:
        return found[0]
    what = "(rows, cols, bands) cube" if ndim == 3 else "(rows, cols) label array"
    if not found:
        raise UserInputError(
            f"{param}: '{path}' holds no {ndim}-D array (a {what} is needed). Its variables: "
            f"{listing}.")
    raise UserInputError(
        f"{param}: '{path}' holds several {ndim}-D arrays ({', '.join(found)}); choose one "
        f"with {param}-key.")


def read_mat(path: str, key: Optional[str], ndim: int, param: str) -> np.ndarray:
    """One ``ndim``-D array of a MATLAB file, as stored (MATLAB's rows, cols, bands)."""
    import scipy.io
    from scipy.io.matlab import matfile_version

    _check_file(path, param)
    try:
        major, _ = matfile_version(path)
    except Exception as exc:  # scipy raises ValueError or its MatReadError on junk
        raise UserInputError(f"{param}: '{path}' is not a MATLAB .mat file ({exc}).") from None
    if major == 2:
        try:
            import h5py
        except ImportError:
            raise UserInputError(_mat_v73_message(path, param)) from None
        with h5py.File(path, "r") as fh:
            # HDF5 stores MATLAB's column-major arrays with the axes reversed.
            items = [(n, tuple(reversed(d.shape))) for n, d in fh.items()
                     if isinstance(d, h5py.Dataset) and not n.startswith("#")]
            name = _pick(items, key, ndim, path, param)
            return np.asarray(fh[name][()]).T
    try:
        items = [(n, s) for n, s, _ in scipy.io.whosmat(path)]
        name = _pick(items, key, ndim, path, param)
        return np.asarray(scipy.io.loadmat(path, variable_names=[name])[name])
    except UserInputError:
        raise
    except (ValueError, NotImplementedError, OSError) as exc:
        raise UserInputError(f"{param}: '{path}' could not be read as a .mat file ({exc}).") \
            from None


@dataclass
class Cube:
    data: Optional[np.ndarray]  # (bands, rows, cols); None once written as a GeoTIFF
    raster_path: Optional[str]  # the raster read (None for a .mat): its metadata
    nodata: Optional[float]
    crs: object = None
    transform: object = None

    def metadata_wavelengths(self) -> Optional[np.ndarray]:
        """Band centres (nm) from the raster's metadata, or None."""
        return wavelengths_mod.read(self.raster_path) if self.raster_path else None


def raster_data_path(path: str) -> str:
    """An ENVI header given instead of its data file: the data file beside it."""
    if path.lower().endswith(".hdr") and os.path.isfile(path):
        stem = path[:-4]
        for candidate in (stem, *(stem + ext for ext in (".img", ".dat", ".raw", ".bsq",
                                                         ".bil", ".bip", ".IMG", ".DAT"))):
            if os.path.isfile(candidate):
                return candidate
    return path


def read_cube(path: str, key: Optional[str], truth_shape: Optional[tuple]) -> Cube:
    """The cube as (bands, rows, cols). A .mat array is (rows, cols, bands) as the benchmark
    files store it; one whose last two axes match the truth is taken as (bands, rows, cols)."""
    if path.lower().endswith(".mat"):
        arr = read_mat(path, key, 3, "--cube")
        if truth_shape is not None and arr.shape[1:] == tuple(truth_shape) \
                and arr.shape[:2] != tuple(truth_shape):
            data = arr
        else:
            data = arr.transpose(2, 0, 1)
        return Cube(np.ascontiguousarray(data), None, None)
    path = raster_data_path(path)
    with raster_io.gdal_env(), raster_io.open_raster(path, "--cube") as src:
        data = src.read()
        nodata = src.nodatavals[0]
        georeferenced = not src.transform.is_identity or src.crs is not None
        crs, transform = (src.crs, src.transform) if georeferenced else (None, None)
    return Cube(data, path, nodata, crs, transform)


def read_truth(path: str, key: Optional[str]) -> tuple[np.ndarray, object]:
    """The ground truth (rows, cols) as int64 (0 = unlabelled), and its grid (or None)."""
    if path.lower().endswith(".mat"):
        arr, grid = read_mat(path, key, 2, "--truth"), None
    else:
        with raster_io.gdal_env(), \
                raster_io.open_raster(raster_data_path(path), "--truth") as src:
            if src.count != 1:
                raise UserInputError(
                    f"--truth: '{path}' has {src.count} bands; the ground truth is one band "
                    f"of class codes (0 = unlabelled).")
            arr = src.read(1)
            if src.nodata is not None and not np.isnan(src.nodata):
                arr = np.where(arr == src.nodata, 0, arr)
            grid = None if src.transform.is_identity else src.transform
    arr = np.asarray(arr)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise UserInputError(f"--truth: '{path}' holds {arr.dtype} values, not class codes.")
    if arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), 0, arr)
        if np.any(arr != np.round(arr)):
            raise UserInputError(
                f"--truth: '{path}' has non-integer values; the ground truth must hold class "
                f"codes 1..C and 0 for unlabelled pixels.")
    if arr.min(initial=0) < 0:
        raise UserInputError(
            f"--truth: '{path}' has negative values; class codes are 1..C, 0 = unlabelled.")
    return arr.astype(np.int64), grid


# ----------------------------------------------------------------------------- writing

def write_cube_tif(path: str, cube: Cube, wavelengths_nm: Optional[np.ndarray]) -> list:
    """Write the cube as a tiled GeoTIFF with band metadata 'wavelength' (nm), bands
    sorted by wavelength (the core wants increasing centres). Returns notes for the log."""
    import rasterio
    from rasterio.transform import Affine

    notes = []
    data = cube.data
    if wavelengths_nm is not None:
        order = np.argsort(wavelengths_nm, kind="stable")
        if np.any(order != np.arange(len(order))):
            notes.append("bands reordered by wavelength (the file lists overlapping "
                         "spectrometers out of order)")
            data, wavelengths_nm = data[order], wavelengths_nm[order]
        wavelengths_mod.validate(wavelengths_nm, data.shape[0], "the cube's wavelengths")
    dtype = data.dtype.name if data.dtype.name in _GTIFF_DTYPES else "float32"
    nodata = cube.nodata
    if nodata is None and data.dtype.kind == "f" and np.isnan(data).any():
        nodata = float("nan")
    bands, rows, cols = data.shape
    floating = np.dtype(dtype).kind == "f"
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": bands, "dtype": dtype,
        "crs": cube.crs,
        # A .mat has no georeferencing: a plain pixel grid (1 unit per pixel, north up).
        "transform": cube.transform or Affine(1.0, 0.0, 0.0, 0.0, -1.0, float(rows)),
        # Band-interleaved, so that writing band after band never rewrites a tile.
        "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "interleave": "band",
        "compress": "deflate", "predictor": 3 if floating else 2, "BIGTIFF": "IF_SAFER",
    }
    with raster_io.gdal_env(), rasterio.open(path, "w", **profile) as dst:
        for b in range(bands):
            dst.write(data[b].astype(dtype, copy=False), b + 1)
            if wavelengths_nm is not None:
                dst.update_tags(b + 1, wavelength=f"{wavelengths_nm[b]:.4f}",
                                wavelength_units="nm")
    return notes


def read_labels(path: str) -> np.ndarray:
    import rasterio

    with raster_io.gdal_env(), rasterio.open(path) as src:
        return src.read(1).astype(np.int64)



def resolve_wavelengths(args, cube: Cube) -> Optional[np.ndarray]:
    """The cube's band centres (nm): --sensor, --wavelengths or the raster's metadata; None
    for a 3-band cube without any (taken as R, G, B)."""
    bands = cube.data.shape[0]
    if args.sensor:
        return sensor_wavelengths(args.sensor, bands)
    if args.wavelengths:
        return parse_wavelengths(args.wavelengths, bands)
    found = cube.metadata_wavelengths()
    if found is not None:
        return found
    if bands == 3:
        return None  # taken as R, G, B
    raise UserInputError(
        f"--cube '{args.cube}' has {bands} bands and no wavelength metadata. Give the band "
        f"centres with --wavelengths (e.g. 430:860 for evenly spaced ones) or a --sensor "
        f"preset ({', '.join(sorted(SENSORS))}).")
