"""special:pseudorgb, special:importproduct and special:accuracy (group Hyperspectral tools)."""

from __future__ import annotations

from . import AlgorithmSpec, Output, Param
from .shared import BAD_BANDS, BAD_BANDS_HELP, INPUT_HELP, input_param, wavelength_params
from .shared import wavelengths_help as _wavelengths_help


def pseudorgb() -> AlgorithmSpec:
    return AlgorithmSpec(
        "pseudorgb", "Pseudo-RGB from hyperspectral raster", "tools",
        "Renders a hyperspectral raster as a 3-band image by linear interpolation "
        "between the two good bands nearest each target wavelength, by wavelength "
        "whatever the band order (bands sharing a wavelength are averaged; a target "
        "outside the sensor's range takes the edge band). The values are interpolated "
        "radiance or "
        "reflectance, not stretched. This is how SPECIAL (Pang et al. 2025, arXiv "
        "2501.16222) shows a hyperspectral cube to CLIP; the layer is displayed "
        "stretched to its 2–98 % values.\n\n"
        + INPUT_HELP + _wavelengths_help() + BAD_BANDS_HELP +
        "\nOutput: Float32 GeoTIFF on the input's grid (CRS, geotransform, size). A "
        "pixel that is nodata in any good input band is nodata (NaN) in the output.",
        (input_param(), *wavelength_params(), BAD_BANDS,
         Param("OUTPUT", "raster_out", "Pseudo-RGB",
               help="Float32 GeoTIFF, 3 bands, on the input's grid.")))


def importproduct() -> AlgorithmSpec:
    return AlgorithmSpec(
        "importproduct", "Import hyperspectral product", "tools",
        "Writes a hyperspectral product as downloaded (EnMAP or DESIS L1C/L2A, PRISMA "
        "L2D, EMIT L2A reflectance, AVIRIS) as one Float32 GeoTIFF that any QGIS or GDAL "
        "tool understands: the cube scaled to the product's physical units (e.g. "
        "reflectance 0–1), every band in the product's order with the standard band "
        "metadata wavelength and wavelength_units (nm), fwhm and bbl (0 = bad band), "
        "nodata as NaN, on the product's map grid (EMIT: orthorectified through its "
        "GLT). Any other raster the algorithms read is written the same way. The "
        "output is shown as pseudo-RGB (the good bands nearest 655, 553 and 451 nm). "
        "The product is never modified. The other algorithms read the same products "
        "directly; importing once saves reading a compressed product again for each "
        "step of the SPECIAL pipeline (Pang et al. 2025, arXiv 2501.16222).\n\n"
        + INPUT_HELP + BAD_BANDS_HELP +
        "<b>Band wavelengths</b> (advanced): replaces the product's band centres (nm, "
        "one per band).\n"
        "\n<b>What is read</b>: EnMAP: the SPECTRAL_IMAGE (GeoTIFF or ENVI BSQ/BIL) and "
        "METADATA.XML (band centres, FWHM, gain and offset, empty bands). DESIS: the "
        "SPECTRAL_IMAGE and METADATA.xml (centres, FWHM, gains, offsets; else from the "
        "image's .hdr). "
        "PRISMA L2D: VNIR and SWIR cubes merged, centres, FWHM and flags, the L2Scale "
        "min/max, the grid from the corner coordinates and EPSG code. EMIT: "
        "reflectance, wavelengths, FWHM, good_wavelengths, the GLT and geotransform. "
        "AVIRIS: the ENVI header's wavelength, fwhm, bbl and data ignore value.",
        (input_param("Product file or hyperspectral raster"), BAD_BANDS,
         wavelength_params(advanced=True)[0],
         Param("OUTPUT", "raster_out", "Imported raster",
               help="Float32 GeoTIFF with wavelength, fwhm and bbl band metadata.")))


def accuracy() -> AlgorithmSpec:
    return AlgorithmSpec(
        "accuracy", "Accuracy assessment", "tools",
        "Compares a class raster with reference data and reports overall accuracy (OA), "
        "average accuracy (AA), Cohen's κ, each class's producer's accuracy, user's "
        "accuracy and F1, and the confusion matrix: the usual measures of a "
        "classification's accuracy (Congalton 1991; κ: Cohen 1960), as reported in "
        "SPECIAL (Pang et al. 2025, arXiv 2501.16222).\n\n"
        "<b>Input class raster</b> (INPUT): one band, classes 1..C, 0 or nodata = "
        "unclassified, e.g. special:noiserobust's or special:pseudolabel's output. Class "
        "names come from its legend (category names), else 'class k'.\n"
        "<b>Reference</b> (REFERENCE): a raster of class codes (0 or nodata = no "
        "reference), or a polygon layer. A raster on another grid or in another CRS is "
        "reprojected onto INPUT's grid with nearest neighbour. Polygons are transformed "
        "to INPUT's CRS and rasterised onto its grid: a pixel is in a polygon when its "
        "centre is; where polygons overlap, the later feature wins.\n"
        "<b>Class field</b> (CLASS_FIELD): for polygons, the field with each polygon's "
        "class (required then; ignored for a raster). A text field is matched to INPUT's "
        "class names (case-insensitive) or, if it holds whole numbers, to its codes; a "
        "numeric field to INPUT's codes. A reference raster's codes are INPUT's codes.\n"
        "<b>Class names</b> (CLASS_NAMES, optional): when the reference uses other codes "
        "or names, 'reference value = INPUT class' entries separated by ';', e.g. "
        "<code>1=water; 2=trees; Asphalt=roads</code>; the INPUT class is a name or a "
        "code, and several reference values may map to one class. When given it is the "
        "whole mapping: reference values it does not list are left out.\n"
        "Reference values that match no INPUT class are left out, with a warning that "
        "counts their pixels; if none matches, the run stops with an error.\n\n"
        "<b>Which pixels count</b>: only pixels with a reference class. Pixels that are 0 "
        "or nodata in the reference are ignored. Reference pixels that INPUT leaves "
        "unclassified (0 or nodata) count as errors: they form an 'unclassified' column "
        "of the confusion matrix.\n"
        "<b>Definitions</b>: OA = correct / reference pixels. Producer's accuracy "
        "(recall) = correct / reference pixels of the class; user's accuracy (precision) "
        "= correct / pixels classified as the class inside the reference; F1 = their "
        "harmonic mean; undefined values (class absent from the reference, or never "
        "classified) are '–' in the HTML and null in the JSON. AA = mean producer's "
        "accuracy over the classes present in the reference. κ = Cohen's kappa with "
        "'unclassified' as a label of its own. OA, AA and κ are fractions (0..1).\n\n"
        "<b>Outputs</b>: HTML report (OUTPUT_HTML: summary, class table, a bar plot, the "
        "confusion matrix, the class matching), optional JSON report (OUTPUT_JSON: the "
        "same numbers), and the results OA, AA and KAPPA for models. Large rasters are "
        "read in strips: memory does not grow with the scene.",
        (Param("INPUT", "raster", "Input class raster",
               help="One band, classes 1..C, 0 or nodata = unclassified."),
         Param("REFERENCE", "layer", "Reference (class raster or polygons)",
               layer_types=("raster", "polygon"),
               help="A raster of class codes or a polygon layer (saved to a file)."),
         Param("CLASS_FIELD", "field", "Class field of the reference polygons",
               parent="REFERENCE", optional=True,
               help="For polygons: the field with each polygon's class."),
         Param("CLASS_NAMES", "string", "Class names: reference value = INPUT class, "
               "separated by ';' (optional)", optional=True,
               help="e.g. 1=water; 2=trees; Asphalt=roads. When given, the whole mapping."),
         Param("OUTPUT_HTML", "file_out", "Accuracy report (HTML)",
               file_filter="HTML files (*.html)", help="The report."),
         Param("OUTPUT_JSON", "file_out", "Accuracy report (JSON)",
               file_filter="JSON files (*.json)", optional=True, create_by_default=False,
               help="The same numbers as JSON.")),
        (Output("OA", "number", "Overall accuracy (0..1)"),
         Output("AA", "number", "Average accuracy (0..1)"),
         Output("KAPPA", "number", "Cohen's kappa")))
