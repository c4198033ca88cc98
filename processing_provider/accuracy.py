"""special:accuracy — accuracy of a class raster against reference data (OA, AA, κ, per-class
producer's / user's accuracy and F1, confusion matrix) as an HTML and a JSON report."""

from qgis.core import QgsProcessingException, QgsVectorLayer

from ..core import accuracy
from .base import SpecialAlgorithm, push_warnings, run_core


class AccuracyAlgorithm(SpecialAlgorithm):
    ALG_ID = "accuracy"

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
