"""What the inputs are: QGIS layer sources ('file.gpkg|layername=...'), whether a file is a
vector layer, a class raster's category names, and INPUT's grid that the reference is
brought onto."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rasterio.crs import CRS

from ..classes import read_class_metadata
from ..gdal_compat import call as gdal_call


def split_source(source: str) -> tuple[str, dict]:
    """'file.gpkg|layername=roads|subset=...' (a QGIS layer source) → path, options."""
    path, *parts = source.split("|")
    options = {}
    for part in parts:
        name, _, value = part.partition("=")
        options[name.strip().lower()] = value
    return path, options


def is_vector(path: str) -> bool:
    from osgeo import gdal

    ds = gdal_call(gdal.OpenEx, path, gdal.OF_VECTOR)
    return ds is not None and ds.GetLayerCount() > 0


def category_names(path: str) -> list[str]:
    try:
        return read_class_metadata(path)[0]
    except OSError:  # GDAL could not open it: no names
        return []


def bounds_overlap(a, b) -> bool:
    """(left, bottom, right, top) boxes share some area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass
class Grid:
    """INPUT's grid: what the reference is read or rasterised on."""

    crs: Optional[CRS]
    transform: object
    width: int
    height: int
    bounds: tuple
