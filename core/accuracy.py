"""Accuracy of a class raster against reference data (``special:accuracy``).

INPUT is a class raster (values 1..C; 0 and nodata = unclassified). REFERENCE is a raster
of class codes, or a polygon layer with a class field, brought onto INPUT's grid: a
raster is reprojected on the fly with nearest neighbour, polygons are transformed to
INPUT's CRS and rasterised (a pixel belongs to a polygon when its centre lies inside;
where polygons overlap, the later feature wins). Pixels that are 0 or nodata in the
reference are ignored; reference pixels that INPUT leaves unclassified (0 or nodata) are
errors, counted in an "unclassified" column of the confusion matrix.

Scale: INPUT is read in full-width strips and the reference is read (or rasterised)
strip by strip; only a joint histogram of (reference value, class) is kept, so memory is
bounded whatever the scene size. The numbers all come from :mod:`.metrics`.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from . import metrics, raster_io
from .classes import read_class_metadata
from .errors import UserInputError
from .gdal_compat import call as gdal_call
from .gdal_compat import checked as gdal_checked
from .gdal_compat import succeeded as gdal_succeeded
from .progress import Progress, as_progress

HTML_EXTENSIONS = (".html", ".htm")
JSON_EXTENSIONS = (".json",)
# More classes than this in INPUT means it is not a class raster (a confusion matrix of
# thousands of classes is no use); the limit is checked on the largest value read.
MAX_CLASSES = 1000
# Bytes per pixel of one strip as processed (the input block, reference, int64 copies).
_BYTES_PER_PIXEL = 48
_LISTED = 12  # values named in a warning before "…"


@dataclass
class ClassAccuracy:
    """One class of INPUT. Accuracies are fractions; NaN where undefined: producer's
    accuracy of a class with no reference pixel, user's accuracy of a class never
    predicted inside the reference, F1 of a class that is neither."""

    code: int
    name: str
    reference_pixels: int
    predicted_pixels: int  # inside the reference
    correct: int
    producers: float  # recall
    users: float  # precision
    f1: float


@dataclass
class ReferenceValue:
    """A value of the reference (a raster code, or a value of the class field)."""

    label: str  # as shown: '3', 'Asphalt'
    pixels: int  # on INPUT's grid
    input_class: Optional[int] = None  # the INPUT class it was matched to (1..C), or None


@dataclass
class AccuracyResult:
    accuracy: metrics.Accuracy  # confusion (C, C + 1): rows reference, last column unclassified
    classes: list[ClassAccuracy]
    reference_values: list[ReferenceValue]
    input_path: str
    reference_path: str
    class_field: Optional[str] = None
    class_names_text: Optional[str] = None
    output_html: Optional[str] = None
    output_json: Optional[str] = None
    warnings: list = field(default_factory=list)

    @property
    def overall(self) -> float:
        return self.accuracy.overall

    @property
    def average(self) -> float:
        return self.accuracy.average

    @property
    def kappa(self) -> float:
        return self.accuracy.kappa

    @property
    def confusion(self) -> np.ndarray:
        return self.accuracy.confusion

    @property
    def n_pixels(self) -> int:
        """Reference pixels assessed (matched to an INPUT class, on INPUT's grid)."""
        return int(self.accuracy.confusion.sum())

    @property
    def unclassified_pixels(self) -> int:
        return self.accuracy.unclassified

    @property
    def left_out_pixels(self) -> int:
        return sum(v.pixels for v in self.reference_values if v.input_class is None)

    def as_dict(self) -> dict:
        """The report as JSON-ready data; undefined values are None (null)."""
        names = [c.name for c in self.classes]
        return {
            "OA": _num(self.overall),
            "AA": _num(self.average),
            "KAPPA": _num(self.kappa),
            "n_pixels": self.n_pixels,
            "unclassified_pixels": self.unclassified_pixels,
            "left_out_pixels": self.left_out_pixels,
            "input": self.input_path,
            "reference": self.reference_path,
            "class_field": self.class_field,
            "class_names": self.class_names_text,
            "per_class": [
                {"code": c.code, "name": c.name, "reference_pixels": c.reference_pixels,
                 "predicted_pixels": c.predicted_pixels, "correct": c.correct,
                 "producers": _num(c.producers), "users": _num(c.users), "f1": _num(c.f1)}
                for c in self.classes],
            "confusion_matrix": {
                "rows": names,
                "row_codes": [c.code for c in self.classes],
                "columns": names + ["unclassified"],
                "column_codes": [c.code for c in self.classes] + [0],
                "counts": self.confusion.tolist(),
                "note": "rows: reference class; columns: INPUT class; 'unclassified': "
                        "reference pixels that INPUT leaves 0 or nodata (errors)",
            },
            "reference_values": [
                {"value": v.label, "pixels": v.pixels, "input_class": v.input_class,
                 "input_name": names[v.input_class - 1] if v.input_class else None}
                for v in self.reference_values],
            "warnings": list(self.warnings),
        }


def _num(value: float) -> Optional[float]:
    return None if value is None or math.isnan(value) else float(value)


# ----------------------------------------------------------------------- class matching

def _key(text: str) -> str:
    """Case- and space-insensitive form of a class name or value; numbers canonical
    ('2', '2.0' and ' 2 ' are the same key)."""
    key = " ".join(str(text).lower().split())
    try:
        number = float(key)
    except ValueError:
        return key
    return str(int(number)) if number.is_integer() else key


def parse_class_names(text: Optional[str], param: str = "CLASS_NAMES") -> list[tuple[str, str]]:
    """'1=water; 2=trees; Asphalt=roads' → [('1', 'water'), ('2', 'trees'),
    ('Asphalt', 'roads')]: reference value = INPUT class (name or code). Entries are
    separated by ';' or new lines. Empty text: []."""
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    example = "e.g. '1=water; 2=trees; Asphalt=roads'"
    for chunk in (text or "").replace("\n", ";").split(";"):
        if not chunk.strip():
            continue
        reference, sep, target = chunk.partition("=")
        reference, target = reference.strip(), target.strip()
        if not sep or not reference or not target:
            raise UserInputError(
                f"{param}: '{chunk.strip()}' is not 'reference value = INPUT class'. Write "
                f"one entry per reference value, separated by ';', {example}."
            )
        if _key(reference) in seen:
            raise UserInputError(
                f"{param}: the reference value '{reference}' is given twice. Give each "
                f"reference value once (several values may map to the same INPUT class)."
            )
        seen[_key(reference)] = target
        pairs.append((reference, target))
    return pairs


@dataclass
class _Value:
    """A reference value while matching: its display label, the keys CLASS_NAMES may
    use for it, and its default INPUT class."""

    label: str
    keys: set
    default: Optional[int]
    numeric: bool = True  # False for a text field


def _input_class(target: str, names: Sequence[str]) -> Optional[int]:
    """The INPUT class (1..C) a name or code designates, or None."""
    key = _key(target)
    for code, name in enumerate(names, start=1):
        if _key(name) == key:
            return code
    if key.isdigit() and 1 <= int(key) <= len(names):
        return int(key)
    return None


def _match(values: dict, names: Sequence[str], pairs: list[tuple[str, str]],
           warnings: list) -> dict:
    """{reference id: INPUT class or None}. Without CLASS_NAMES the default matching of
    each value applies; with it, CLASS_NAMES is the whole mapping."""
    if not pairs:
        return {rid: value.default for rid, value in values.items()}
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names, start=1))
    matched: dict = dict.fromkeys(values)
    for reference, target in pairs:
        code = _input_class(target, names)
        if code is None:
            raise UserInputError(
                f"CLASS_NAMES: '{target}' (given for '{reference}') is not a class of INPUT. "
                f"Its classes are {_shorten(listing)}; name one of them or give its code."
            )
        hits = [rid for rid, value in values.items() if _key(reference) in value.keys]
        if not hits:
            warnings.append(f"CLASS_NAMES: no reference pixel on INPUT's grid has the value "
                            f"'{reference}'.")
        for rid in hits:
            matched[rid] = code
    return matched


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


# ------------------------------------------------------------------------ the histogram

class _JointCounts:
    """Pixel counts per (reference id, INPUT value), accumulated block by block."""

    def __init__(self) -> None:
        self.counts: dict[int, np.ndarray] = {}

    def add(self, ref: np.ndarray, pred: np.ndarray) -> None:
        """``ref``: reference ids (0 = none); ``pred``: INPUT values (0 = unclassified),
        both integer arrays of one shape."""
        used = ref > 0
        if not used.any():
            return
        r = ref[used].astype(np.int64)
        p = pred[used].astype(np.int64)
        width = int(p.max()) + 1
        top = int(r.max())
        if (top + 1) * width <= 1 << 22:  # small ids (the usual case): no sort needed
            flat = np.bincount(r * width + p, minlength=(top + 1) * width)
            flat = flat.reshape(top + 1, width)
            ids = np.flatnonzero(flat.any(1))
            flat = flat[ids]
        else:
            ids, inverse = np.unique(r, return_inverse=True)
            flat = np.bincount(inverse.astype(np.int64).ravel() * width + p,
                               minlength=len(ids) * width).reshape(len(ids), width)
        for rid, row in zip(ids.tolist(), flat, strict=True):
            have = self.counts.get(rid)
            if have is None:
                self.counts[rid] = row.copy()
                continue
            if len(have) < width:
                have = np.concatenate([have, np.zeros(width - len(have), np.int64)])
            have[:width] += row
            self.counts[rid] = have

    def pixels(self) -> dict[int, int]:
        return {rid: int(row.sum()) for rid, row in self.counts.items()}


# -------------------------------------------------------------------------- reference

def _split_source(source: str) -> tuple[str, dict]:
    """'file.gpkg|layername=roads|subset=...' (a QGIS layer source) → path, options."""
    path, *parts = source.split("|")
    options = {}
    for part in parts:
        name, _, value = part.partition("=")
        options[name.strip().lower()] = value
    return path, options


def _is_vector(path: str) -> bool:
    from osgeo import gdal

    ds = gdal_call(gdal.OpenEx, path, gdal.OF_VECTOR)
    return ds is not None and ds.GetLayerCount() > 0


def _category_names(path: str) -> list[str]:
    try:
        return read_class_metadata(path)[0]
    except OSError:  # GDAL could not open it: no names
        return []


def _integers(block: np.ndarray, invalid: np.ndarray, param: str, what: str) -> np.ndarray:
    """``block`` as int64 with invalid pixels 0; non-integer values are an error."""
    if np.issubdtype(block.dtype, np.floating):
        values = block[~invalid]
        bad = values != np.round(values)
        if bad.any():
            raise UserInputError(
                f"{param}: the value {values[bad][0]:g} is not a class code. {what} holds "
                f"whole numbers (1, 2, …; 0 or nodata = none)."
            )
        block = np.where(invalid, 0, block)
    out = block.astype(np.int64)
    out[invalid] = 0
    return out


def _bounds_overlap(a, b) -> bool:
    """(left, bottom, right, top) boxes share some area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crs_wkt(crs: Optional[CRS]) -> Optional[str]:
    return crs.to_wkt() if crs else None


class _RasterReference:
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
        self.names = _category_names(path)
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
        if not all(map(math.isfinite, ref_bounds)) or not _bounds_overlap(ref_bounds,
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
        self.values: dict[int, _Value] = {}

    def read(self, window: Window) -> np.ndarray:
        block = self.reader.read(1, window=window)
        invalid = raster_io.invalid_mask(block[None], [self.reader.nodata])
        codes = _integers(block, invalid, "REFERENCE", "A reference raster")
        codes[codes < 0] = 0
        return codes

    def describe(self, ids, names: Sequence[str], warnings: list) -> dict:
        """_Value of each reference code: matched to the INPUT class of the same code."""
        differ = []
        for code in ids:
            ref_name = self.names[code - 1] if code - 1 < len(self.names) else ""
            keys = {str(code)} | ({_key(ref_name)} if ref_name.strip() else set())
            default = code if code <= len(names) else None
            if default and ref_name.strip() and _key(ref_name) != _key(names[code - 1]):
                differ.append(f"{code} is '{ref_name}' there and '{names[code - 1]}' in INPUT")
            self.values[code] = _Value(str(code), keys, default)
        if differ:
            warnings.append(
                "REFERENCE and INPUT name some codes differently (" + _shorten("; ".join(
                    differ)) + "). Codes were matched; if they mean different classes, give "
                "CLASS_NAMES (e.g. '1=water').")
        return self.values

    def close(self) -> None:
        self._stack.close()


class _VectorReference:
    """Polygons with a class field, transformed to INPUT's CRS and rasterised strip by
    strip (pixel centre inside a polygon; the later feature wins where they overlap)."""

    kind = "vector"

    def __init__(self, source: str, class_field: Optional[str], grid, warnings: list,
                 progress: Progress) -> None:
        from osgeo import ogr, osr

        path, options = _split_source(source)
        ds = gdal_call(ogr.Open, path)
        if ds is None or ds.GetLayerCount() == 0:
            raise UserInputError(f"REFERENCE: '{path}' is not a vector layer OGR can read.")
        if "layername" in options:
            layer = gdal_call(ds.GetLayerByName, options["layername"])
        elif "layerid" in options and options["layerid"].isdigit():
            layer = gdal_call(ds.GetLayer, int(options["layerid"]))
        elif ds.GetLayerCount() > 1:
            layers = ", ".join(ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount()))
            raise UserInputError(
                f"REFERENCE: '{path}' holds several layers ({_shorten(layers)}). Name one "
                f"as '{path}|layername=NAME'."
            )
        else:
            layer = ds.GetLayer(0)
        if layer is None:
            raise UserInputError(f"REFERENCE: '{source}' names no layer of '{path}'.")
        if options.get("subset"):
            # GeoPackage accepts any filter and fails when it runs it: count to find out.
            error = None
            if gdal_succeeded(layer.SetAttributeFilter, options["subset"]):
                error = gdal_checked(layer.GetFeatureCount)[1]
            else:
                error = "invalid filter"
            if error:
                raise UserInputError(
                    f"REFERENCE: OGR cannot apply the layer's filter '{options['subset']}' "
                    f"({_shorten(error)}). Correct or remove the layer's filter.")
        defn = layer.GetLayerDefn()
        fields = [defn.GetFieldDefn(i) for i in range(defn.GetFieldCount())]
        if not class_field:
            raise UserInputError(
                "CLASS_FIELD: REFERENCE is a vector layer; choose the field that holds each "
                "polygon's class (a class name or code)."
            )
        matches = [f for f in fields if f.GetName() == class_field] or [
            f for f in fields if f.GetName().lower() == class_field.lower()]
        if not matches:
            names = ", ".join(f.GetName() for f in fields) or "none"
            raise UserInputError(
                f"CLASS_FIELD: '{class_field}' is not a field of REFERENCE (its fields: "
                f"{_shorten(names)})."
            )
        field_defn = matches[0]
        numeric = field_defn.GetType() in (ogr.OFTInteger, ogr.OFTInteger64, ogr.OFTReal)
        geom_type = ogr.GT_Flatten(layer.GetGeomType())
        if geom_type not in (ogr.wkbUnknown, ogr.wkbPolygon, ogr.wkbMultiPolygon,
                             ogr.wkbCurvePolygon, ogr.wkbMultiSurface,
                             ogr.wkbGeometryCollection):
            raise UserInputError(
                f"REFERENCE: the layer holds {ogr.GeometryTypeToName(geom_type).lower()} "
                f"geometries; it must hold polygons (buffer points or lines first)."
            )
        transform = None
        srs = layer.GetSpatialRef()
        if grid.crs and srs is not None:
            target = osr.SpatialReference()
            target.ImportFromWkt(_crs_wkt(grid.crs))
            for ref in (srs, target):
                ref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            if not srs.IsSame(target):
                transform = gdal_call(osr.CoordinateTransformation, srs, target)
                if transform is None:
                    raise UserInputError(
                        "REFERENCE: its CRS cannot be transformed to INPUT's CRS. Reproject "
                        "REFERENCE to INPUT's CRS first.")
        elif srs is not None or grid.crs:
            warnings.append(f"{'REFERENCE' if srs is None else 'INPUT'} has no CRS: it is "
                            f"taken to be in the CRS of "
                            f"{'INPUT' if srs is None else 'REFERENCE'}.")

        value_ids: dict = {}
        self.values: dict[int, _Value] = {}
        shapes, ids, boxes = [], [], []
        no_class = not_polygon = failed = features = 0
        total = max(1, layer.GetFeatureCount())
        layer.ResetReading()
        for number, feature in enumerate(layer, start=1):
            features += 1
            if number % 1000 == 0:
                progress.check()
                progress.update(number / total, "Reading the reference polygons")
            if not feature.IsFieldSetAndNotNull(field_defn.GetName()):
                no_class += 1
                continue
            geom = feature.GetGeometryRef()
            if geom is None or geom.IsEmpty():
                not_polygon += 1
                continue
            geom = geom.Clone()
            if geom.HasCurveGeometry():
                geom = geom.GetLinearGeometry()
            geom.FlattenTo2D()
            rings = _polygons(geom, ogr)
            if not rings:
                not_polygon += 1
                continue
            if transform is not None:
                geom = ogr.Geometry(ogr.wkbMultiPolygon)
                for polygon in rings:
                    geom.AddGeometry(_ogr_polygon(polygon, ogr))
                if not gdal_succeeded(geom.Transform, transform):
                    failed += 1
                    continue
                rings = _polygons(geom, ogr)
            value = self._value(feature, field_defn, numeric, value_ids, grid)
            xs = [x for polygon in rings for x, _ in polygon[0]]
            ys = [y for polygon in rings for _, y in polygon[0]]
            shapes.append({"type": "MultiPolygon", "coordinates": rings})
            ids.append(value)
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
        if features == 0:
            raise UserInputError(
                "REFERENCE: the layer has no features (or its filter leaves none). Choose "
                "reference polygons with a class field."
            )
        for count, what in ((no_class, f"have no value in '{field_defn.GetName()}'"),
                            (not_polygon, "have no polygon geometry"),
                            (failed, "could not be transformed to INPUT's CRS")):
            if count:
                warnings.append(f"REFERENCE: {count} of {features} features {what} and "
                                f"were left out.")
        if not shapes:
            raise UserInputError(
                f"REFERENCE: none of its {features} features has both a polygon and a value "
                f"in '{field_defn.GetName()}'."
            )
        self.shapes, self.ids = shapes, np.asarray(ids, np.int64)
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        extent = (self.boxes[:, 0].min(), self.boxes[:, 1].min(),
                  self.boxes[:, 2].max(), self.boxes[:, 3].max())
        if not _bounds_overlap(extent, grid.bounds):
            raise UserInputError(
                "REFERENCE does not overlap INPUT: no polygon lies within INPUT's extent "
                "(compared in INPUT's CRS). Choose the reference data of this scene, and "
                "check both CRSs."
            )
        self.grid = grid
        self.field = field_defn.GetName()

    def _value(self, feature, field_defn, numeric: bool, value_ids: dict, grid) -> int:
        name = field_defn.GetName()
        if numeric:
            number = feature.GetFieldAsDouble(name)
            label = str(int(number)) if float(number).is_integer() else f"{number:g}"
        else:
            label = feature.GetFieldAsString(name).strip()
        key = _key(label)
        rid = value_ids.get(key)
        if rid is None:
            rid = value_ids[key] = len(value_ids) + 1
            self.values[rid] = _Value(label, {key}, None, numeric)
        return rid

    def read(self, window: Window) -> np.ndarray:
        from rasterio import features

        out = np.zeros((int(window.height), int(window.width)), np.int64)
        wt = window_transform(window, self.grid.transform)
        left, top = wt * (0, 0)
        right, bottom = wt * (window.width, window.height)
        box = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        hit = np.flatnonzero((self.boxes[:, 0] < box[2]) & (self.boxes[:, 2] > box[0])
                             & (self.boxes[:, 1] < box[3]) & (self.boxes[:, 3] > box[1]))
        if len(hit):
            burned = features.rasterize(
                ((self.shapes[i], int(self.ids[i])) for i in hit), out_shape=out.shape,
                transform=wt, fill=0, all_touched=False, dtype="int32")
            out[:] = burned
        return out

    def describe(self, ids, names: Sequence[str], warnings: list) -> dict:
        """A numeric field matches INPUT codes; a text field INPUT's class names
        (case-insensitive), or a code when the text is a whole number."""
        for value in self.values.values():
            key = next(iter(value.keys))
            if value.numeric:
                value.default = int(key) if key.isdigit() and 1 <= int(key) <= len(names) \
                    else None
            else:
                value.default = _input_class(value.label, names)
        return self.values

    def close(self) -> None:
        pass


def _polygons(geom, ogr) -> list:
    """GeoJSON-style coordinates [[ring, ...], ...] of the polygons in ``geom``."""
    kind = ogr.GT_Flatten(geom.GetGeometryType())
    if kind == ogr.wkbPolygon:
        rings = [geom.GetGeometryRef(i).GetPoints() for i in range(geom.GetGeometryCount())]
        rings = [[(p[0], p[1]) for p in ring] for ring in rings if ring]
        return [rings] if rings else []
    if kind in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection):
        out = []
        for i in range(geom.GetGeometryCount()):
            out += _polygons(geom.GetGeometryRef(i), ogr)
        return out
    return []


def _ogr_polygon(rings, ogr):
    polygon = ogr.Geometry(ogr.wkbPolygon)
    for ring in rings:
        linear = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ring:
            linear.AddPoint_2D(x, y)
        polygon.AddGeometry(linear)
    return polygon


# ------------------------------------------------------------------------------- run

@dataclass
class _Grid:
    crs: Optional[CRS]
    transform: object
    width: int
    height: int
    bounds: tuple


def run(input_path: str, reference_path: str, output_html: Optional[str] = None,
        output_json: Optional[str] = None, class_field: Optional[str] = None,
        class_names: Optional[str] = None, reference_kind: Optional[str] = None,
        progress: Optional[Progress] = None,
        block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES) -> AccuracyResult:
    """Assess the class raster ``input_path`` against ``reference_path`` and write the
    reports.

    ``reference_path``: a raster of class codes, or a polygon layer (a file, or a QGIS
    layer source such as 'ref.gpkg|layername=fields') whose ``class_field`` holds each
    polygon's class. ``class_names``: 'reference value = INPUT class' entries separated by
    ';' (see :func:`parse_class_names`); without it, raster codes and numeric fields match
    INPUT's codes, and text fields INPUT's class names (case-insensitive).
    ``reference_kind``: 'raster', 'vector' or None (found out from the file).
    ``output_html`` / ``output_json``: optional report files, written only on success.
    """
    progress = as_progress(progress)
    warnings: list[str] = []
    ref_file = _split_source(reference_path or "")[0]
    if not ref_file or not os.path.exists(ref_file):
        raise UserInputError(f"REFERENCE: the file '{ref_file}' does not exist.")
    if input_path and os.path.exists(input_path) and raster_io.same_file(input_path, ref_file):
        raise UserInputError("REFERENCE is the INPUT file itself; choose the reference data.")
    for path, param, ext, kind in ((output_html, "OUTPUT_HTML", HTML_EXTENSIONS, "HTML"),
                                   (output_json, "OUTPUT_JSON", JSON_EXTENSIONS, "JSON")):
        if path:
            raster_io.check_output_path(path, [input_path, ref_file], param, ext, kind)
    pairs = parse_class_names(class_names)
    if reference_kind not in (None, "raster", "vector"):
        raise ValueError(f"reference_kind must be 'raster', 'vector' or None, not "
                         f"{reference_kind!r}")

    with raster_io.gdal_env(), raster_io.open_raster(input_path, "INPUT") as src:
        if src.count != 1:
            raise UserInputError(
                f"INPUT: '{input_path}' has {src.count} bands; a class raster has one band "
                f"(values 1..C, 0 or nodata = unclassified), such as special:noiserobust's "
                f"OUTPUT."
            )
        grid = _Grid(src.crs, src.transform, src.width, src.height, tuple(src.bounds))
        if reference_kind is None:
            reference_kind = "vector" if _is_vector(ref_file) else "raster"
        if reference_kind == "vector":
            reference = _VectorReference(reference_path, class_field, grid, warnings,
                                         progress.sub(0.0, 0.1))
        else:
            if class_field:
                warnings.append("CLASS_FIELD is ignored: REFERENCE is a raster.")
            reference = _RasterReference(ref_file, grid, warnings)
        try:
            joint, max_value = _accumulate(src, reference, progress.sub(0.1, 0.95),
                                           block_bytes)
        finally:
            reference.close()
        names = _category_names(input_path)
        n_classes = max(len(names), max_value)
        if n_classes == 0:
            raise UserInputError(
                "INPUT has no classes: every pixel is 0 or nodata and it has no legend. "
                "Choose a class raster (values 1..C), such as special:noiserobust's OUTPUT."
            )
        names = [(names[k] if k < len(names) and names[k].strip() else f"class {k + 1}")
                 for k in range(n_classes)]
        if not joint.counts:
            raise UserInputError(
                "REFERENCE is empty on INPUT's grid: " + (
                    "no polygon covers the centre of an INPUT pixel." if reference.kind ==
                    "vector" else "every pixel it covers is 0 or nodata.")
                + " Choose reference data with labelled areas inside INPUT."
            )
        values = reference.describe(sorted(joint.counts), names, warnings)

    matched = _match({rid: values[rid] for rid in joint.counts}, names, pairs, warnings)
    pixels = joint.pixels()
    if not any(code is not None for code in matched.values()):
        listed = ", ".join(values[rid].label for rid in sorted(joint.counts))
        classes_text = ", ".join(f"{i}={n}" for i, n in enumerate(names, start=1))
        hint = ("Check that CLASS_NAMES lists the reference values on the left of '='"
                if pairs else "Give CLASS_NAMES to say which is which, e.g. "
                f"'{values[min(joint.counts)].label}={names[0]}'")
        raise UserInputError(
            f"{'CLASS_NAMES' if pairs else 'REFERENCE'}: none of the reference values "
            f"({_shorten(listed)}) matches a class of INPUT ({_shorten(classes_text)}). "
            f"{hint}."
        )

    confusion = np.zeros((n_classes, n_classes + 1), np.int64)
    for rid, row in joint.counts.items():
        code = matched[rid]
        if code is None:
            continue
        confusion[code - 1, n_classes] += row[0]
        confusion[code - 1, : len(row) - 1] += row[1:]
    left_out = sorted((rid for rid in matched if matched[rid] is None),
                      key=lambda rid: -pixels[rid])
    if left_out:
        listed = ", ".join(f"'{values[rid].label}' ({pixels[rid]} px)"
                           for rid in left_out[:_LISTED])
        warnings.append(
            f"Reference values that match no INPUT class were left out: {listed}"
            f"{' …' if len(left_out) > _LISTED else ''}"
            f"{'' if pairs else '. Give CLASS_NAMES to match them'}.")

    accuracy = metrics.from_confusion(confusion)
    predicted = confusion[:, :n_classes].sum(0)
    per_class = [
        ClassAccuracy(k + 1, names[k], int(accuracy.reference_pixels[k]), int(predicted[k]),
                      int(confusion[k, k]), float(accuracy.producers[k]),
                      float(accuracy.users[k]), float(accuracy.f1[k]))
        for k in range(n_classes)]
    ref_values = [ReferenceValue(values[rid].label, pixels[rid], matched[rid])
                  for rid in sorted(joint.counts, key=lambda r: _sort_key(values[r].label))]
    if accuracy.unclassified:
        warnings.append(f"{accuracy.unclassified} reference pixels are unclassified (0 or "
                        f"nodata) in INPUT; they count as errors.")
    result = AccuracyResult(accuracy, per_class, ref_values, input_path, reference_path,
                            class_field if reference.kind == "vector" else None,
                            class_names if pairs else None, output_html or None,
                            output_json or None, warnings)
    progress.update(0.96, "Writing the report")
    texts = {}
    if output_html:
        texts[output_html] = render_html(result)
    if output_json:
        texts[output_json] = json.dumps(result.as_dict(), indent=2, allow_nan=False,
                                        ensure_ascii=False) + "\n"
    _write_texts(texts)
    progress.update(1.0, "Done")
    return result


def _sort_key(label: str):
    key = _key(label)
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _accumulate(src, reference, progress: Progress, block_bytes: int):
    """Joint counts of (reference id, INPUT value) over INPUT's grid, strip by strip;
    also the largest INPUT value anywhere (INPUT's class count when it has no legend)."""
    joint = _JointCounts()
    max_value = 0
    floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
    per_pixel = _BYTES_PER_PIXEL + np.dtype(src.dtypes[0]).itemsize
    windows = raster_io.row_windows(src.height, src.width, per_pixel, block_bytes)
    for i, window in enumerate(windows):
        progress.check()
        progress.update(i / len(windows), f"Counting pixels: rows {window.row_off + 1}–"
                                          f"{window.row_off + window.height}")
        block = src.read(1, window=window)
        invalid = raster_io.invalid_mask(block[None], [src.nodata])
        pred = _integers(block, invalid, "INPUT", "A class raster") if floating else (
            np.where(invalid, 0, block).astype(np.int64))
        pred[pred < 0] = 0
        top = int(pred.max()) if pred.size else 0
        if top > MAX_CLASSES:
            raise UserInputError(
                f"INPUT: the value {top} is not a class code (at most {MAX_CLASSES} classes). "
                f"INPUT must be a class raster (1..C, 0 or nodata = unclassified), such as "
                f"special:noiserobust's OUTPUT."
            )
        max_value = max(max_value, top)
        joint.add(reference.read(window), pred)
    progress.update(1.0, "Counting pixels")
    return joint, max_value


def _write_texts(texts: dict) -> None:
    """All reports or none (an earlier report stays as it was): raster_io's temporary
    names beside the outputs, moved into place only when every file is written."""
    paths = list(texts)
    with raster_io.atomic_outputs(paths) as temps:
        for path, tmp in zip(paths, temps, strict=True):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(texts[path])


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5em;
color:#222;max-width:72em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3;text-align:left}
table.cm td{text-align:right;min-width:3.5em;font-variant-numeric:tabular-nums}
table.cm td.zero{color:#bbb}
.note{color:#555;font-size:.92em}
.warn{color:#8a4b00}
"""


def percent(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def render_html(result: AccuracyResult) -> str:
    """A self-contained HTML report: summary, per-class table, an SVG plot of producer's
    and user's accuracies, the confusion matrix and the class matching."""
    e = html.escape
    names = [c.name for c in result.classes]
    n = len(names)
    ref_label = os.path.basename(_split_source(result.reference_path)[0])
    if result.class_field:
        ref_label += f" (field {result.class_field})"
    rows = [
        ("Overall accuracy (OA)", percent(result.overall)),
        ("Average accuracy (AA, mean producer's accuracy)", percent(result.average)),
        ("Cohen's κ", f"{result.kappa:.4f}"),
        ("Reference pixels assessed", f"{result.n_pixels:,}"),
        ("of which unclassified in INPUT (errors)", f"{result.unclassified_pixels:,}"),
        ("Reference pixels left out (value matches no INPUT class)",
         f"{result.left_out_pixels:,}"),
        ("INPUT", os.path.basename(result.input_path)),
        ("REFERENCE", ref_label),
    ]
    if result.class_names_text:
        rows.append(("CLASS_NAMES", result.class_names_text))
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Accuracy of {e(os.path.basename(result.input_path))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Accuracy assessment</h1>",
        "<table class=\"summary\">",
        *(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows),
        "</table>",
        '<p class="note">Only pixels with a reference class count. Pixels that are 0 or '
        "nodata in the reference are ignored. Reference pixels that INPUT leaves "
        "unclassified (0 or nodata) count as errors: they are in the "
        "<i>unclassified</i> column of the confusion matrix, lower the producer's "
        "accuracy of their class, and are in no class's user's accuracy. "
        "κ counts 'unclassified' as a label of its own.</p>",
    ]
    if result.warnings:
        out += ["<h2>Warnings</h2><ul>",
                *(f'<li class="warn">{e(w)}</li>' for w in result.warnings), "</ul>"]
    out += [
        "<h2>Classes</h2><table><tr><th>Code</th><th>Class</th><th>Reference pixels</th>"
        "<th>Classified as the class (in the reference)</th><th>Correct</th>"
        "<th>Producer's accuracy</th><th>User's accuracy</th><th>F1</th></tr>",
        *(f"<tr><td class=\"n\">{c.code}</td><td>{e(c.name)}</td>"
          f"<td class=\"n\">{c.reference_pixels:,}</td><td class=\"n\">{c.predicted_pixels:,}"
          f"</td><td class=\"n\">{c.correct:,}</td><td class=\"n\">{percent(c.producers)}</td>"
          f"<td class=\"n\">{percent(c.users)}</td>"
          f"<td class=\"n\">{'–' if math.isnan(c.f1) else f'{c.f1:.3f}'}</td></tr>"
          for c in result.classes),
        "</table>",
        '<p class="note">Producer\'s accuracy: share of the class\'s reference pixels '
        "classified as the class (recall). User's accuracy: share of the pixels classified "
        "as the class, inside the reference, that are the class (precision). F1: their "
        "harmonic mean. – : undefined (no reference pixel, or never classified as the "
        "class).</p>",
        "<h2>Producer's and user's accuracy</h2>",
        _svg_bars(result.classes),
        "<h2>Confusion matrix</h2>",
        '<p class="note">Rows: reference class; columns: INPUT class. Cells are shaded by '
        "their share of the row (green: correct, red: errors).</p>",
        '<table class="cm"><tr><th>reference \\ INPUT</th>',
        *(f"<th>{e(name)}</th>" for name in names),
        "<th><i>unclassified</i></th><th>total</th></tr>",
    ]
    confusion = result.confusion
    for k in range(n):
        total = int(confusion[k].sum())
        cells = []
        for j in range(n + 1):
            count = int(confusion[k, j])
            share = count / total if total else 0.0
            colour = "44,160,44" if j == k else "214,39,40"
            style = f' style="background:rgba({colour},{0.08 + 0.72 * share:.3f})"' if count \
                else ""
            zero = ' class="zero"' if not count else ""
            cells.append(f"<td{zero}{style}>{count:,}</td>")
        out.append(f"<tr><th>{e(names[k])}</th>{''.join(cells)}<td><b>{total:,}</b></td></tr>")
    col_totals = confusion.sum(0)
    out.append("<tr><th>total</th>" + "".join(f"<td><b>{int(t):,}</b></td>" for t in col_totals)
               + f"<td><b>{int(confusion.sum()):,}</b></td></tr></table>")
    out += ["<h2>Class matching</h2><table><tr><th>Reference value</th><th>Pixels</th>"
            "<th>INPUT class</th></tr>",
            *(f"<tr><td>{e(v.label)}</td><td class=\"n\">{v.pixels:,}</td><td>"
              + (e(f"{v.input_class} {names[v.input_class - 1]}") if v.input_class
                 else "<i>left out</i>") + "</td></tr>" for v in result.reference_values),
            "</table>",
            f'<p class="note">special_qgis special:accuracy, '
            f"{datetime.datetime.now().isoformat(timespec='seconds')}.</p>",
            "</body></html>"]
    return "\n".join(out) + "\n"


def _svg_bars(classes: Sequence[ClassAccuracy]) -> str:
    """Horizontal bars of producer's (dark) and user's (light) accuracy per class."""
    e = html.escape
    label_w, bar_w, row_h = 190, 360, 34
    height = 30 + row_h * len(classes)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" '
             f'height="{height}" role="img" aria-label="Producer\'s and user\'s accuracy" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect x="{label_w}" y="4" width="12" height="10" fill="#1f77b4"/>'
             f'<text x="{label_w + 16}" y="13">producer\'s</text>'
             f'<rect x="{label_w + 100}" y="4" width="12" height="10" fill="#9ecae1"/>'
             f'<text x="{label_w + 116}" y="13">user\'s</text>']
    for pct in (0, 0.5, 1.0):
        x = label_w + bar_w * pct
        parts.append(f'<line x1="{x:.1f}" y1="22" x2="{x:.1f}" y2="{height - 2}" '
                     f'stroke="#ddd"/>')
    for i, c in enumerate(classes):
        y = 26 + row_h * i
        name = c.name if len(c.name) <= 28 else c.name[:27] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 18}" text-anchor="end">'
                     f"{e(name)}</text>")
        for j, (value, colour) in enumerate(((c.producers, "#1f77b4"),
                                             (c.users, "#9ecae1"))):
            top = y + 3 + 14 * j
            if math.isnan(value):
                parts.append(f'<text x="{label_w + 4}" y="{top + 11}" fill="#999">–</text>')
                continue
            width = bar_w * value
            parts.append(f'<rect x="{label_w}" y="{top}" width="{width:.1f}" height="12" '
                         f'fill="{colour}"><title>{e(c.name)}: {percent(value)}</title></rect>')
            parts.append(f'<text x="{label_w + width + 4:.1f}" y="{top + 11}">'
                         f"{percent(value)}</text>")
    parts.append("</svg>")
    return "".join(parts)
