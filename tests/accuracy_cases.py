"""Shared by the accuracy tests (tests/core/test_accuracy.py, the engine;
tests/processing/test_accuracy_processing.py, the algorithm): class rasters, reference
polygons on a known layout, and the expected numbers from scikit-learn."""

import os
import warnings

import numpy as np
import rasterio
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_score,
    recall_score,
)
from sklearn.metrics import confusion_matrix as sk_confusion

from special_qgis.core.classes import write_class_metadata

from rasters import CRS_UTM, TRANSFORM

NAMES = ["water", "trees", "roofs", "asphalt"]
ROWS, COLS = 20, 24


def class_raster(path, labels, names=NAMES, nodata=0, transform=TRANSFORM, crs=CRS_UTM):
    with rasterio.open(path, "w", driver="GTiff", width=labels.shape[1],
                       height=labels.shape[0], count=1, dtype=labels.dtype.name, crs=crs,
                       transform=transform, nodata=nodata) as dst:
        dst.write(labels[None])
    if names:
        write_class_metadata(str(path), names)
    return str(path)


def sklearn_expected(reference, predicted, n_classes):
    """Expected values, from scikit-learn over the pixels with a reference class."""
    used = reference > 0
    r, p = reference[used], predicted[used]
    labels = list(range(1, n_classes + 1))
    nan = {"labels": labels, "average": None, "zero_division": np.nan}
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": on purpose
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(r, p)
    return {
        "OA": accuracy_score(r, p), "AA": balanced,
        "KAPPA": cohen_kappa_score(r, p, labels=[0] + labels),
        "producers": recall_score(r, p, **nan), "users": precision_score(r, p, **nan),
        "f1": f1_score(r, p, **nan),
        # rows: reference 1..C; columns: predicted 1..C, then 0 (unclassified)
        "confusion": sk_confusion(r, p, labels=labels + [0])[:n_classes],
    }


def predicted_labels():
    """INPUT: four vertical bands of classes 1..4, a block of 0 (unclassified)."""
    labels = np.repeat(np.arange(1, 5), COLS // 4)[None].repeat(ROWS, 0).astype("uint8")
    labels[12:16, 2:5] = 0
    return labels


# Polygons as boxes (row0, row1, col0, col1) in pixel coordinates of the INPUT grid, with a
# text and a numeric class: 'Water' = class 1 whatever its case; 'lake' matches no class.
POLYGONS = [
    ((1, 18, 1, 8), "Water", 1),  # over classes 1 and 2 (cols 0-5 / 6-11), and the 0 block
    ((2, 7, 10, 20), "roofs", 3),  # over classes 2, 3, 4
    ((9, 19, 15, 23), "lake", 9),  # no such class
    # Edges inside pixels: the centres inside are rows 9-12, cols 8-10 (class 2).
    ((9.3, 12.6, 8.2, 11.4), "asphalt", 4),
]


def _box(r0, r1, c0, c1, transform=TRANSFORM):
    x0, y0 = transform * (c0, r0)
    x1, y1 = transform * (c1, r1)
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def write_polygons(path, polygons, epsg=32633, transform_to=None, layer_name="reference"):
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = None
    if transform_to is not None:
        utm = osr.SpatialReference()
        utm.ImportFromEPSG(32633)
        utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(utm, srs)
    ds = (ogr.Open(str(path), update=1) if os.path.exists(path)
          else ogr.GetDriverByName("GPKG").CreateDataSource(str(path)))
    layer = ds.CreateLayer(layer_name, srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("code", ogr.OFTInteger))
    for (r0, r1, c0, c1), name, code in polygons:
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in _box(r0, r1, c0, c1):
            ring.AddPoint_2D(x, y)
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        if ct is not None:
            assert polygon.Transform(ct) == 0
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", name)
        feature.SetField("code", code)
        feature.SetGeometry(polygon)
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def expected_vector(predicted, polygons, field):
    """The reference raster the polygons make, by construction: a pixel takes a box's
    class when its centre is inside the box."""
    reference = np.zeros_like(predicted, dtype=int)
    centre_rows = np.arange(predicted.shape[0])[:, None] + 0.5
    centre_cols = np.arange(predicted.shape[1])[None, :] + 0.5
    for (r0, r1, c0, c1), name, code in polygons:
        value = {"name": {"water": 1, "roofs": 3, "asphalt": 4}.get(name.lower(), 0),
                 "code": code}[field]
        inside = (centre_rows > r0) & (centre_rows < r1) & (centre_cols > c0) & (centre_cols < c1)
        reference[inside] = value if value <= 4 else 0
    return reference


