"""special:applymodel — a saved stage II model applied to another scene."""

from qgis.core import (
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterLayer,
)

from ..core import dependencies, noiserobust
from .common import DEVICE_HELP, SpecialAlgorithm, add_device_parameter, push_warnings, run_core
from .noiserobust import add_map_outputs, finish


class ApplyModelAlgorithm(SpecialAlgorithm):
    ALG_ID = "applymodel"
    NEEDS = dependencies.NETWORK
    TITLE = "Apply a trained model"

    def shortHelpString(self):  # noqa: N802
        return (
            "Classifies a hyperspectral raster with a model file saved by 'Noise-robust "
            "classification (stage II)' or 'Classify hyperspectral image' (their "
            "OUTPUT_MODEL: the network of SPECIAL's stage II, Pang et al. 2025, arXiv "
            "2501.16222), e.g. the next flight line of the "
            "same sensor. The scene must have the same bands: the same band count, and the "
            "same wavelengths (within 1 nm) when both the model and the scene know them. "
            "Bands are standardised with the statistics of the scene the model was trained "
            "on, so apply it to data in the same units (radiance or reflectance, same "
            "scaling).\n\n" + DEVICE_HELP +
            "\n<b>Outputs</b>: classes with the model's class names and colours, and the "
            "confidence (best minus second-best probability), on the input's grid; nodata "
            "pixels stay nodata."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input raster"))
        self.addParameter(QgsProcessingParameterFile(
            "MODEL", "Model file", fileFilter="special_qgis model (*.pt);;All files (*)"))
        add_device_parameter(self)
        add_map_outputs(self)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        result = run_core(
            feedback, noiserobust.apply_model, self.raster_path(parameters, "INPUT", context),
            self.parameterAsFile(parameters, "MODEL", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context),
            self.parameterAsString(parameters, "DEVICE", context))
        push_warnings(feedback, result.warnings)
        return finish(self, context, result)
