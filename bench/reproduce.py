#!/usr/bin/env python3
"""Reproduce the ablation table of SPECIAL (Pang et al., arXiv 2501.16222) on a public
benchmark scene with ground truth: OA, AA and κ of the CLIP pseudo-labels at scale 1 only,
of the pseudo-labels with resolution scaling (RS), and of the final map of the
noise-robust network (stage II), each scored against the ground truth.

  .venv/bin/python bench/reproduce.py --cube Pavia.mat --truth Pavia_gt.mat \\
      --sensor rosis-pavia-centre --pretrained openai \\
      --classes "water; trees; meadows; self-blocking bricks; bare soil; asphalt; \\
                 bitumen; tile; shadows"

Run with --help for every option. The pipeline is the plugin's own (special_qgis.core:
pseudolabel.run for stage I, noiserobust.run for stage II); this script only converts the
benchmark's files, runs the stages and scores the maps. The ground truth is used only to
score: it never enters training or model selection.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from special_qgis.core import classes as classes_mod
from special_qgis.core import clip_backbone, metrics, noiserobust, pseudolabel, raster_io
from special_qgis.core import wavelengths as wavelengths_mod
from special_qgis.core.errors import Cancelled, UserInputError
from special_qgis.core.progress import Progress

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenes import IP_REMOVED_BANDS, aviris_92av3c  # noqa: E402

ROW_SCALE1 = "CLIP pseudo-labels, scale 1"
ROW_SPECIAL = "SPECIAL (noise-robust network)"
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


# ----------------------------------------------------------------------------- progress

class TerminalProgress:
    """A progress line on a terminal (rewritten in place), or, when the output is not a
    terminal, a line each time the stage's text changes kind or another tenth is done."""

    def __init__(self, label: str, stream=None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._kind = None
        self._tenth = -1
        self._width = 0

    def __call__(self, fraction: float, text: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            filled = int(round(fraction * 30))
            line = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {text}"
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.stream.flush()
            return
        kind = re.sub(r"\d+", "#", text)
        tenth = int(fraction * 10)
        if kind != self._kind or tenth != self._tenth:
            self._kind, self._tenth = kind, tenth
            self.stream.write(f"{self.label} {fraction:4.0%} {text}\n")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------- scoring

@dataclass
class Row:
    name: str
    key: str
    labels: Optional[str] = None
    seconds: float = 0.0
    accuracy: Optional[metrics.Accuracy] = None
    unscored: int = 0
    error: Optional[str] = None
    note: Optional[str] = None


def score(row: Row, truth: np.ndarray, n_classes: int) -> None:
    predicted = read_labels(row.labels)
    labelled = truth > 0
    row.unscored = int(np.count_nonzero(labelled & (predicted == 0)))
    row.accuracy = metrics.assess(np.where(labelled, truth, 0), predicted, n_classes)


def _pct(x: float) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else 100.0 * x


def machine_info(device) -> dict:
    import torch

    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device), "gpu": None}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def format_table(rows: list, names: list, counts: np.ndarray) -> str:
    """The ablation table, then per-class accuracy; ``counts``: truth pixels per class."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'':{width}}  {'OA %':>6}  {'AA %':>6}  {'κ×100':>6}  {'time':>9}",
             "-" * (width + 37)]
    for r in rows:
        if r.accuracy is None:
            lines.append(f"{r.name:{width}}  not run: {r.error}")
            continue
        a = r.accuracy
        line = (f"{r.name:{width}}  {100 * a.overall:6.2f}  {100 * a.average:6.2f}  "
                f"{100 * a.kappa:6.2f}  {r.seconds:8.2f}s")
        if r.note:
            line += f"  ({r.note})"
        lines.append(line)
    scored = [r for r in rows if r.accuracy is not None]
    if scored:
        lines.append("")
        lines.append("Per-class accuracy (recall, %):")
        head = f"  {'class':24}  {'pixels':>7}" + "".join(f"  {r.key:>14}" for r in scored)
        lines.append(head)
        for i, name in enumerate(names):
            cells = []
            for r in scored:
                v = r.accuracy.per_class[i]
                cells.append(f"  {'-' if not math.isfinite(v) else f'{100 * v:.2f}':>14}")
            lines.append(f"  {name[:24]:24}  {int(counts[i]):7d}" + "".join(cells))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- options

DESCRIPTION = """\
Reproduce SPECIAL's ablation table on a benchmark scene with ground truth.

Runs the plugin's pipeline (special_qgis.core) on CUBE with the class names you give:
  1. stage I, CLIP pseudo-labels at scale 1 only (--scales ignored);
  2. stage I with resolution scaling (RS) at --scales (default 1,2, the paper's);
  3. stage II, the noise-robust network trained on the RS pseudo-labels;
and prints OA, AA and Cohen's κ (in percent) of the three maps against TRUTH, over the
pixels labelled in TRUTH (code 0 = unlabelled is skipped), plus per-class accuracy, the
wall time of each stage and the machine. The ground truth only scores the maps: it never
enters training, masking or model selection (the map scored is stage II's kept model:
its weights averaged after warm-up, plus the spectral prior fitted on the pseudo-labels).

Inputs
  CUBE  a MATLAB .mat file (scipy.io.loadmat; the file's only 3-D array, or --cube-key),
        stored (rows, cols, bands) as the benchmark files are, or any raster GDAL reads
        (ENVI .hdr/.img, GeoTIFF, ...). The whole cube is loaded into memory and written
        once as a GeoTIFF into --workdir: fine for the benchmark scenes (Pavia Centre,
        1096 x 715 x 102, is about 160 MB as uint16), not meant for huge scenes.
  TRUTH a .mat file (its only 2-D array, or --truth-key) or a one-band raster of class
        codes 1..C, 0 = unlabelled, on the cube's grid (same rows and cols).
  MATLAB v7.3 files are HDF5, which scipy cannot read: they are read with h5py when it is
  installed; otherwise re-save them as v7 (MATLAB/Octave: save('-v7', ...)).

Class names
  One name per ground-truth code, in code order 1..C, separated by ';'; synonyms of one
  class separated by ',' (the best-matching synonym counts), e.g.
  --classes "water; trees; meadows; self-blocking bricks; bare soil; asphalt; bitumen;
  tile; shadows" for Pavia Centre. The truth may use fewer codes than names, never more.

Wavelengths
  Stage I renders the cube as pseudo-RGB at 655/553/451 nm, so it needs the band centres:
  from the raster's metadata (ENVI 'wavelength = {...}', GDAL band metadata), or
  --wavelengths (nm, comma-separated, one per band; or FIRST:LAST for evenly spaced
  centres, e.g. 430:860), or a --sensor preset. Bands listed out of wavelength order
  (AVIRIS' overlapping spectrometers) are sorted in the converted GeoTIFF.

Weights
  --pretrained is an open_clip tag (downloaded once and cached; needs a network) or a local
  checkpoint file (.pt, .bin, .safetensors) of the --model architecture. The paper's
  reference code uses OpenAI's ViT-B/16: --model ViT-B-16 --pretrained openai, or with
  OpenAI's own ViT-B-16.pt file --model ViT-B-16-quickgelu --pretrained /path/ViT-B-16.pt.
  Other architectures: SPECIAL_QGIS_MODEL_CONFIGS=/folder/of/open_clip/configs. Which
  weights a file holds cannot be checked: the header prints what was used. Random or
  wrong weights give meaningless numbers.
"""

EPILOG = """\
sensor presets:
{sensors}

output:
  The table on standard output, progress on standard error (--quiet: none). --workdir
  keeps the converted cube (cube.tif) and every map: clip_scale1_labels.tif,
  clip_rs_labels.tif, special_labels.tif and their *_confidence.tif. Without --workdir
  they go to a temporary folder that is deleted at the end. --json writes the same table
  (OA, AA, kappa and per-class accuracy in percent, seconds per stage, the settings and
  the machine) as JSON. Stage times are wall times; the model is loaded before stage I
  (timed apart), and the class names' text embeddings are computed in the first stage I
  run and reused by the second.

exit status:
  0 all three rows scored; 1 stage II refused the pseudo-labels (e.g. CLIP named only
  one class; the stage I rows are still printed); 2 a mistake in the inputs or options
  (message, no traceback); 130 interrupted.

example (Pavia Centre, weights downloaded once by open_clip):
  .venv/bin/python bench/reproduce.py --cube Pavia.mat --truth Pavia_gt.mat \\
      --sensor rosis-pavia-centre --model ViT-B-16 --pretrained openai \\
      --classes "water; trees; meadows; self-blocking bricks; bare soil; asphalt;
                 bitumen; tile; shadows" \\
      --json paviac.json
"""


def build_parser() -> argparse.ArgumentParser:
    sensors = "\n".join(textwrap.fill(f"{name}: {s.description}", 88, initial_indent="  ",
                                       subsequent_indent="    ")
                         for name, s in SENSORS.items())
    p = argparse.ArgumentParser(
        prog="reproduce.py", description=DESCRIPTION, epilog=EPILOG.format(sensors=sensors),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("scene")
    g.add_argument("--cube", required=True, metavar="PATH",
                   help="hyperspectral cube: .mat, ENVI (.img/.hdr), GeoTIFF, ...")
    g.add_argument("--cube-key", metavar="NAME",
                   help="variable name in a .mat cube (default: its only 3-D array)")
    g.add_argument("--truth", required=True, metavar="PATH",
                   help="ground truth: .mat or one-band raster, codes 1..C, 0 = unlabelled")
    g.add_argument("--truth-key", metavar="NAME",
                   help="variable name in a .mat truth (default: its only 2-D array)")
    names = g.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", metavar="TEXT",
                       help="class names in truth-code order 1..C, ';'-separated, synonyms "
                            "','-separated")
    names.add_argument("--classes-file", metavar="PATH",
                       help="instead of --classes: a UTF-8 file, one class per line "
                            "(synonyms ','-separated), '#' comments")
    wl = g.add_mutually_exclusive_group()
    wl.add_argument("--wavelengths", metavar="NM",
                    help="band centres in nm: one per band, comma-separated, or FIRST:LAST "
                         "for evenly spaced centres (e.g. 430:860); overrides metadata")
    wl.add_argument("--sensor", choices=sorted(SENSORS),
                    help="band centres of a benchmark's sensor (see 'sensor presets' below)")
    g = p.add_argument_group("stage I (CLIP pseudo-labels)")
    g.add_argument("--model", default=clip_backbone.DEFAULT_MODEL,
                   help="open_clip ViT architecture (default %(default)s)")
    g.add_argument("--pretrained", default=clip_backbone.DEFAULT_PRETRAINED,
                   help="open_clip weights tag or a checkpoint file (default %(default)s)")
    g.add_argument("--scales", default="1,2",
                   help="RS zoom factors, comma-separated (default %(default)s, the paper's)")
    g.add_argument("--window", type=int, default=pseudolabel.DEFAULT_WINDOW,
                   help="sliding window in pixels of the zoomed image (default %(default)s)")
    g.add_argument("--stride", type=int, default=pseudolabel.DEFAULT_STRIDE,
                   help="sliding-window step (default %(default)s)")
    g.add_argument("--targets", metavar="NM", default=None,
                   help="pseudo-RGB target wavelengths (default 655,553,451, the paper's)")
    d = noiserobust.Schedule()
    g = p.add_argument_group("stage II (noise-robust network)")
    g.add_argument("--epochs", type=int, default=d.epochs,
                   help="epochs in all, warm-up included (default %(default)s)")
    g.add_argument("--warmup-epochs", type=int, default=None,
                   help="warm-up epochs (default: half of --epochs, i.e. 10 of 20 as in "
                        "the paper)")
    g.add_argument("--iterations", type=int, default=d.iterations,
                   help="iterations per epoch (default %(default)s)")
    g.add_argument("--samples-per-class", type=int, default=d.samples_per_class,
                   help="random-set pixels per class and iteration (default %(default)s)")
    g.add_argument("--learning-rate", type=float, default=d.learning_rate,
                   help="Adam learning rate, cosine decay to a tenth (default %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="random seed of stage II (default %(default)s)")
    g.add_argument("--spectral-prior", type=float, default=d.spectral_prior,
                   help="weight of the spectral prior in the final map, as a multiple of "
                        "the network's median margin; 0 = the network alone (default "
                        "%(default)s)")
    g = p.add_argument_group("run")
    g.add_argument("--device", default="auto",
                   help="auto (a CUDA GPU when PyTorch sees one), cpu or cuda "
                        "(default %(default)s)")
    g.add_argument("--workdir", metavar="DIR",
                   help="folder for the converted cube and the maps, kept (created if "
                        "missing; default: a temporary folder, deleted at the end)")
    g.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    g.add_argument("--quiet", action="store_true", help="no progress output")
    return p


# ----------------------------------------------------------------------------- the run

def _resolve_wavelengths(args, cube: Cube) -> Optional[np.ndarray]:
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


def _schedule(args) -> noiserobust.Schedule:
    warmup = args.warmup_epochs if args.warmup_epochs is not None else args.epochs // 2
    return noiserobust.Schedule(
        epochs=args.epochs, warmup_epochs=warmup, iterations=args.iterations,
        samples_per_class=args.samples_per_class, learning_rate=args.learning_rate,
        seed=args.seed, spectral_prior=args.spectral_prior).validate()


def run(args) -> int:
    out = sys.stdout
    classes = (classes_mod.read_classes_file(args.classes_file, "--classes-file")
               if args.classes_file else classes_mod.parse_classes(args.classes, "--classes"))
    names = classes_mod.class_names(classes)
    n_classes = len(classes)
    scales = pseudolabel.parse_scales(args.scales, "--scales")
    schedule = _schedule(args)
    device = clip_backbone.resolve_device(args.device)
    clip_backbone.check_model_name(args.model)
    if clip_backbone.is_checkpoint_path(args.pretrained) and not os.path.isfile(
            args.pretrained):
        raise UserInputError(f"--pretrained: the checkpoint file '{args.pretrained}' does "
                             f"not exist.")

    truth, truth_grid = read_truth(args.truth, args.truth_key)
    cube = read_cube(args.cube, args.cube_key, truth.shape)
    if cube.data.shape[1:] != truth.shape:
        raise UserInputError(
            f"--cube is {cube.data.shape[1]} rows × {cube.data.shape[2]} columns "
            f"({cube.data.shape[0]} bands) but --truth is {truth.shape[0]} × {truth.shape[1]}: "
            f"they must cover the same pixel grid. Check that the files belong together "
            f"(and --cube-key / --truth-key).")
    if truth_grid is not None and cube.transform is not None and truth_grid != cube.transform:
        raise UserInputError(
            "--truth is georeferenced differently from --cube (another geotransform): it must "
            "lie on the cube's pixel grid.")
    top = int(truth.max(initial=0))
    if top == 0:
        raise UserInputError(f"--truth: '{args.truth}' has no labelled pixel (all 0).")
    if top > n_classes:
        raise UserInputError(
            f"--truth has class codes up to {top}, but {n_classes} class names were given "
            f"({'; '.join(names)}). Give one name per ground-truth code, in code order "
            f"1..{top}.")
    wl = _resolve_wavelengths(args, cube)

    temporary = not args.workdir
    workdir = tempfile.mkdtemp(prefix="special-reproduce-") if temporary else args.workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        return _run_stages(args, out, classes, names, scales, schedule, device, truth, cube,
                           wl, workdir, temporary)
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_stages(args, out, classes, names, scales, schedule, device, truth, cube, wl,
                workdir, temporary) -> int:
    n_classes = len(classes)
    path = {k: os.path.join(workdir, f"{k}.tif") for k in (
        "cube", "clip_scale1_labels", "clip_scale1_confidence", "clip_rs_labels",
        "clip_rs_confidence", "special_labels", "special_confidence")}
    machine = machine_info(device)
    present = sorted(int(c) for c in np.unique(truth[truth > 0]))
    bands, rows, cols = cube.data.shape
    scale_text = ", ".join(f"{s:g}" for s in scales)

    print("SPECIAL reproduction (special_qgis, bench/reproduce.py)", file=out)
    print(f"  cube:     {args.cube}  ({rows} rows × {cols} cols × {bands} bands, "
          f"{cube.data.dtype})", file=out)
    if wl is not None:
        print(f"  bands:    {wl.min():.1f}–{wl.max():.1f} nm"
              f"{f' (--sensor {args.sensor})' if args.sensor else ''}", file=out)
    print(f"  truth:    {args.truth}  ({int(np.count_nonzero(truth))} labelled pixels, "
          f"{len(present)} of {n_classes} classes present)", file=out)
    print(f"  classes:  {'; '.join(', '.join(c) for c in classes)}", file=out)
    print(f"  model:    {args.model}, weights: {args.pretrained}", file=out)
    print(f"  stage I:  RS scales {scale_text}, window {args.window}, stride {args.stride}",
          file=out)
    print(f"  stage II: {schedule.epochs} epochs ({schedule.warmup_epochs} warm-up) × "
          f"{schedule.iterations} iterations, {schedule.samples_per_class} samples/class, "
          f"lr {schedule.learning_rate:g}, seed {schedule.seed}", file=out)
    gpu = f", GPU {machine['gpu']}" if machine["gpu"] else ""
    print(f"  machine:  {machine['cpu_count']} CPUs ({machine['torch_threads']} torch "
          f"threads), device {machine['device']}{gpu}", file=out)
    print(f"  workdir:  {workdir}{' (temporary)' if temporary else ''}", file=out)
    out.flush()

    t = time.perf_counter()
    notes = write_cube_tif(path["cube"], cube, wl)
    cube.data = None  # the stages read the GeoTIFF: free the array (160 MB for Pavia Centre)
    for note in notes:
        print(f"  note: {note}", file=out)
    convert_s = time.perf_counter() - t

    stage_i = dict(model_name=args.model, pretrained=args.pretrained, device=args.device,
                   window=args.window, stride=args.stride, targets=args.targets)
    rs_name = f"CLIP pseudo-labels, RS (scales {scale_text})"
    rows_ = [Row(ROW_SCALE1, "clip_scale1", path["clip_scale1_labels"]),
             Row(rs_name, "clip_rs", path["clip_rs_labels"]),
             Row(ROW_SPECIAL, "special", path["special_labels"])]

    def progress(label):
        return TerminalProgress(label, enabled=not args.quiet)

    bar = progress("[0/3] loading CLIP")
    t = time.perf_counter()
    # Loaded once here (the core keeps it for both stage I runs), so that the stage times
    # compare the stages and not the loading.
    clip_backbone.load(args.model, args.pretrained, args.device, progress=Progress(bar))
    bar.done()
    load_s = time.perf_counter() - t

    bar = progress("[1/3] stage I, scale 1")
    t = time.perf_counter()
    pseudolabel.run(path["cube"], classes, path["clip_scale1_labels"],
                    path["clip_scale1_confidence"], scales="1", progress=Progress(bar),
                    **stage_i)
    bar.done()
    rows_[0].seconds = time.perf_counter() - t

    if scales == (1.0,):
        shutil.copyfile(path["clip_scale1_labels"], path["clip_rs_labels"])
        shutil.copyfile(path["clip_scale1_confidence"], path["clip_rs_confidence"])
        legend = path["clip_scale1_labels"] + ".aux.xml"  # class names, if GDAL put them there
        if os.path.exists(legend):
            shutil.copyfile(legend, path["clip_rs_labels"] + ".aux.xml")
        rows_[1].note = "--scales 1: the scale-1 map"
    else:
        bar = progress(f"[2/3] stage I, scales {scale_text}")
        t = time.perf_counter()
        pseudolabel.run(path["cube"], classes, path["clip_rs_labels"],
                        path["clip_rs_confidence"], scales=scales, progress=Progress(bar),
                        **stage_i)
        bar.done()
        rows_[1].seconds = time.perf_counter() - t

    bar = progress("[3/3] stage II")
    t = time.perf_counter()
    status = 0
    stage2_warnings = []
    try:
        result = noiserobust.run(
            noiserobust.Inputs(path["cube"], path["clip_rs_labels"], path["clip_rs_confidence"],
                               None),
            path["special_labels"], path["special_confidence"], schedule=schedule,
            device=args.device, progress=Progress(bar))
        stage2_warnings = list(result.warnings)
        rows_[2].seconds = time.perf_counter() - t
    except UserInputError as exc:
        rows_[2].error = f"stage II refused the RS pseudo-labels: {exc}"
        rows_[2].labels = None
        status = 1
    finally:
        bar.done()

    for row in rows_:
        if row.labels:
            score(row, truth, n_classes)

    print("", file=out)
    counts = np.bincount(truth[truth > 0], minlength=n_classes + 1)[1:]
    print(format_table(rows_, names, counts), file=out)
    for row in rows_:
        if row.unscored:
            print(f"note: {row.key}: {row.unscored} labelled truth pixels have no prediction "
                  f"(no data in the cube) and are left out of its scores.", file=out)
    for w in stage2_warnings:
        print(f"stage II: {w}", file=out)
    print(f"(κ×100: Cohen's kappa in percent; scored over the truth's labelled pixels; "
          f"'pixels': the truth's pixels per class, to check the class-name order against "
          f"the dataset's documentation; model loading {load_s:.2f}s and cube conversion "
          f"{convert_s:.2f}s are not in the stage times)", file=out)

    if args.json:
        doc = {
            "scene": {"cube": os.path.abspath(args.cube), "truth": os.path.abspath(args.truth),
                      "rows": rows, "cols": cols, "bands": bands,
                      "wavelengths_nm": None if wl is None else [float(v) for v in wl],
                      "sensor": args.sensor, "labelled_pixels": int(np.count_nonzero(truth)),
                      "classes_in_truth": present},
            "class_names": names,
            "classes": classes,
            "model": args.model, "pretrained": args.pretrained,
            "stage_i": {"scales": list(scales), "window": args.window, "stride": args.stride,
                        "targets": args.targets},
            "stage_ii": {"epochs": schedule.epochs, "warmup_epochs": schedule.warmup_epochs,
                         "iterations": schedule.iterations,
                         "samples_per_class": schedule.samples_per_class,
                         "learning_rate": schedule.learning_rate, "seed": schedule.seed,
                         "warnings": stage2_warnings},
            "machine": machine,
            "units": "OA, AA, kappa and per_class in percent; seconds of wall time",
            "cube_conversion_seconds": convert_s,
            "model_loading_seconds": load_s,
            "workdir": None if temporary else os.path.abspath(workdir),
            "rows": [_row_json(r, names, temporary) for r in rows_],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, ensure_ascii=False)
        print(f"JSON written to {args.json}", file=out)
    return status


def _row_json(row: Row, names: list, temporary: bool) -> dict:
    a = row.accuracy
    return {
        "row": row.name, "key": row.key,
        "OA": None if a is None else _pct(a.overall),
        "AA": None if a is None else _pct(a.average),
        "kappa": None if a is None else _pct(a.kappa),
        "per_class": None if a is None else {
            n: _pct(float(v)) for n, v in zip(names, a.per_class, strict=True)},
        "seconds": row.seconds if a is not None else None,
        "unscored_pixels": row.unscored,
        "labels": None if temporary or row.labels is None else os.path.abspath(row.labels),
        "note": row.note, "error": row.error,
    }


def main(argv: Optional[list] = None) -> int:
    import rasterio.errors

    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    try:
        return run(args)
    except UserInputError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
