"""special:accuracy — accuracy of a class raster against reference data (OA, AA, κ, per-class
producer's / user's accuracy and F1, confusion matrix) as an HTML and a JSON report."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsVectorLayer,
)

from ..core import accuracy
from .common import SpecialAlgorithm, push_warnings, run_core


class AccuracyAlgorithm(SpecialAlgorithm):
    ALG_ID = "accuracy"
    TITLE = "Accuracy assessment"
    GROUP = "tools"

    def shortHelpString(self):  # noqa: N802
        return (
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
            "read in strips: memory does not grow with the scene."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input class raster"))
        self.addParameter(QgsProcessingParameterMapLayer(
            "REFERENCE", "Reference (class raster or polygons)",
            types=[QgsProcessing.SourceType.TypeRaster,
                   QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(
            "CLASS_FIELD", "Class field of the reference polygons",
            parentLayerParameterName="REFERENCE", optional=True))
        self.addParameter(QgsProcessingParameterString(
            "CLASS_NAMES", "Class names: reference value = INPUT class, separated by ';' "
            "(optional)", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_HTML", "Accuracy report (HTML)", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_JSON", "Accuracy report (JSON)", "JSON files (*.json)", optional=True,
            createByDefault=False))
        for name, label in (("OA", "Overall accuracy (0..1)"),
                            ("AA", "Average accuracy (0..1)"),
                            ("KAPPA", "Cohen's kappa")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        reference = self.parameterAsLayer(parameters, "REFERENCE", context)
        if reference is None:
            raise QgsProcessingException("REFERENCE: choose a class raster or a polygon layer.")
        # isinstance, not the layer-type enum: renamed in 3.30 (Qgis.LayerType) and gone in 4.
        vector = isinstance(reference, QgsVectorLayer)
        expected = "ogr" if vector else "gdal"
        if reference.providerType() != expected:
            raise QgsProcessingException(
                f"REFERENCE: '{reference.name()}' is a {reference.providerType()} layer; "
                f"save it to a file ({'GeoPackage' if vector else 'GeoTIFF'}) first.")
        html = self.parameterAsFileOutput(parameters, "OUTPUT_HTML", context)
        json_path = self.parameterAsFileOutput(parameters, "OUTPUT_JSON", context) or None
        result = run_core(
            feedback, accuracy.run, self.raster_path(parameters, "INPUT", context),
            reference.source(),
            output_html=html, output_json=json_path,
            class_field=self.parameterAsString(parameters, "CLASS_FIELD", context) or None,
            class_names=self.parameterAsString(parameters, "CLASS_NAMES", context) or None,
            reference_kind="vector" if vector else "raster")
        push_warnings(feedback, result.warnings)
        feedback.pushInfo(
            f"OA {100 * result.overall:.2f} %, AA {100 * result.average:.2f} %, "
            f"κ {result.kappa:.4f} over {result.n_pixels} reference pixels "
            f"({result.unclassified_pixels} unclassified in INPUT, counted as errors).")
        for c in result.classes:
            feedback.pushInfo(
                f"  {c.code} {c.name}: {c.reference_pixels} px, producer's "
                f"{accuracy.percent(c.producers)}, user's {accuracy.percent(c.users)}")
        outputs = {"OUTPUT_HTML": html, "OA": result.overall, "AA": result.average,
                   "KAPPA": result.kappa}
        if json_path:
            outputs["OUTPUT_JSON"] = json_path
        return outputs
