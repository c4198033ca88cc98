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
bounded whatever the scene size. The numbers all come from
:mod:`special_qgis.core.metrics`.

The package, one idea a module: :mod:`.assess` (``run``), :mod:`.sources` (layer sources,
INPUT's grid), :mod:`.raster_reference` and :mod:`.vector_reference` (the reference on
INPUT's grid), :mod:`.histogram` (the streamed joint counts), :mod:`.matching` (reference
values to INPUT classes, CLASS_NAMES), :mod:`.results` (the result and its JSON) and
:mod:`.report` (the HTML report, from the template ``report.html``).
"""

from .assess import HTML_EXTENSIONS, JSON_EXTENSIONS, run
from .histogram import MAX_CLASSES
from .matching import parse_class_names
from .report import percent, render_html
from .results import AccuracyResult, ClassAccuracy, ReferenceValue

__all__ = [
    "HTML_EXTENSIONS",
    "JSON_EXTENSIONS",
    "MAX_CLASSES",
    "AccuracyResult",
    "ClassAccuracy",
    "ReferenceValue",
    "parse_class_names",
    "percent",
    "render_html",
    "run",
]
