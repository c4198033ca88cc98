"""A polygon layer with a class field as reference: its polygons transformed to INPUT's
CRS and rasterised strip by strip on INPUT's grid (a pixel belongs to a polygon when its
centre lies inside; where polygons overlap, the later feature wins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
from rasterio.crs import CRS
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..errors import UserInputError
from ..gdal_compat import call as gdal_call
from ..gdal_compat import checked as gdal_checked
from ..gdal_compat import succeeded as gdal_succeeded
from ..progress import Progress
from .matching import Value, find_input_class, match_key, shorten
from .sources import bounds_overlap, split_source


def _crs_wkt(crs: Optional[CRS]) -> Optional[str]:
    return crs.to_wkt() if crs else None


class VectorReference:
    """Polygons with a class field, transformed to INPUT's CRS and rasterised strip by
    strip (pixel centre inside a polygon; the later feature wins where they overlap)."""

    kind = "vector"

    def __init__(self, source: str, class_field: Optional[str], grid, warnings: list,
                 progress: Progress) -> None:
        from osgeo import ogr, osr

        path, options = split_source(source)
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
                f"REFERENCE: '{path}' holds several layers ({shorten(layers)}). Name one "
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
                    f"({shorten(error)}). Correct or remove the layer's filter.")
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
                f"{shorten(names)})."
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
        self.values: dict[int, Value] = {}
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
        if not bounds_overlap(extent, grid.bounds):
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
        key = match_key(label)
        rid = value_ids.get(key)
        if rid is None:
            rid = value_ids[key] = len(value_ids) + 1
            self.values[rid] = Value(label, {key}, None, numeric)
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
                value.default = find_input_class(value.label, names)
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
