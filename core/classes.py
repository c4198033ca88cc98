"""Class lists typed by users, and class rasters (values 1..C, 0 = no data) with a colour
table and category names so GIS software shows a named, coloured legend."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

import numpy as np

from .errors import UserInputError
from .gdal_compat import call as gdal_call

# Colour-blind-safe qualitative colours: Okabe & Ito (2008) without black, then Paul Tol's
# "muted" scheme (2021); cycled for longer lists.
PALETTE = [
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
    (213, 94, 0), (204, 121, 167),
    (204, 102, 119), (51, 34, 136), (221, 204, 119), (17, 119, 51), (136, 204, 238),
    (136, 34, 85), (68, 170, 153), (153, 153, 51), (170, 68, 153), (221, 221, 221),
]
NODATA_LABEL = 0


def parse_classes(text: str, param: str = "CLASSES") -> list[list[str]]:
    """'water; trees, forest; roofs' → [['water'], ['trees', 'forest'], ['roofs']].

    Classes are separated by ';' or new lines, synonyms inside a class by ','. At least
    two classes, and no name twice (case-insensitive).
    """
    classes = []
    for chunk in (text or "").replace("\n", ";").split(";"):
        names = [n.strip() for n in chunk.split(",") if n.strip()]
        if names:
            classes.append(names)
    return validate_classes(classes, param)


def validate_classes(classes: list[list[str]], param: str = "CLASSES") -> list[list[str]]:
    """At least two classes, and no name twice (case-insensitive); returns ``classes``."""
    if not classes:
        raise UserInputError(
            f"{param} is empty. Type the class names separated by ';' (synonyms of one class "
            f"separated by ','), e.g. 'water; trees, forest; roofs; asphalt'."
        )
    if len(classes) < 2:
        raise UserInputError(
            f"{param}: only one class ('{classes[0][0]}') was given. CLIP chooses among the "
            f"names you give, so at least two are needed; add the other cover types of the "
            f"scene, or a catch-all such as 'background'."
        )
    seen: dict[str, str] = {}
    for names in classes:
        for name in names:
            key = " ".join(name.lower().split())
            if key in seen:
                raise UserInputError(
                    f"{param}: '{name}' appears more than once. Give each name once; to merge "
                    f"synonyms into one class, separate them by ',' inside that class."
                )
            seen[key] = name
    return classes


def read_classes_file(path: str, param: str = "CLASSES_FILE") -> list[list[str]]:
    """One class per line (synonyms separated by ','); blank lines and '#' comments skipped."""
    if not os.path.isfile(path):
        raise UserInputError(f"{param}: the file '{path}' does not exist.")
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = [line.split("#", 1)[0].strip() for line in fh]
    except UnicodeDecodeError:
        raise UserInputError(f"{param}: '{path}' is not a UTF-8 text file.") from None
    return parse_classes("\n".join(line for line in lines if line), param)


def class_names(classes: Sequence[Sequence[str]]) -> list[str]:
    """Display names: the first name of each class."""
    return [names[0] for names in classes]


def colours(count: int) -> list[tuple[int, int, int]]:
    return [PALETTE[i % len(PALETTE)] for i in range(count)]


def label_dtype(count: int) -> str:
    return "uint8" if count < 255 else "uint16"


def write_class_metadata(path: str, names: Sequence[str],
                         rgb: Optional[Sequence[Sequence[int]]] = None) -> None:
    """Give band 1 of the class raster ``path`` a colour table and category names.

    Index 0 is 'no data' (transparent), index i is names[i-1]. Done with GDAL itself:
    rasterio cannot write category names. GeoTIFF keeps them in the .aux.xml sidecar.
    """
    from osgeo import gdal

    rgb = list(rgb) if rgb is not None else colours(len(names))
    ds = gdal_call(gdal.Open, path, gdal.GA_Update)
    if ds is None:
        raise OSError(f"GDAL could not open '{path}' to write its legend")
    band = ds.GetRasterBand(1)
    # GeoTIFF holds a colour table on Byte and UInt16 bands only (a user's float label
    # raster keeps its names without one).
    if band.DataType in (gdal.GDT_Byte, gdal.GDT_UInt16):
        table = gdal.ColorTable()
        table.SetColorEntry(NODATA_LABEL, (0, 0, 0, 0))
        for i, colour in enumerate(rgb, start=1):
            table.SetColorEntry(i, tuple(int(c) for c in colour[:3]) + (255,))
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.SetCategoryNames(["no data"] + list(names))
    band.SetDescription("class")
    ds.FlushCache()
    ds = None


def read_class_metadata(path: str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Category names and colours (for values 1..N) of a class raster, as far as it has them."""
    from osgeo import gdal

    ds = gdal_call(gdal.Open, path)
    if ds is None:
        raise OSError(f"GDAL could not open '{path}' to read its legend")
    band = ds.GetRasterBand(1)
    # GDAL 3.6's GeoTIFF driver loads the .aux.xml lazily and GetCategoryNames alone does
    # not trigger it; reading the description does.
    band.GetDescription()
    names = list(band.GetCategoryNames() or [])[1:]
    table = band.GetColorTable()
    rgb = []
    if table is not None:
        # GDAL pads a byte raster's table to 256 entries; keep those of named classes.
        count = len(names) + 1 if names else table.GetCount()
        rgb = [table.GetColorEntry(i)[:3] for i in range(1, min(count, table.GetCount()))]
    return names, rgb


def bvsb(probabilities, axis: int = 0):
    """Best-versus-second-best margin along ``axis``: top probability minus the runner-up.

    Takes a numpy array or a torch tensor (computed where the tensor lives, e.g. a GPU).
    """
    if not isinstance(probabilities, np.ndarray):
        top2 = probabilities.topk(2, dim=axis).values
        return top2.select(axis, 0) - top2.select(axis, 1)
    top2 = -np.partition(-probabilities, 1, axis=axis)
    best = np.take(top2, 0, axis=axis)
    second = np.take(top2, 1, axis=axis)
    return best - second
