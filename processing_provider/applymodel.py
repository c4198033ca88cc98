"""special:applymodel — a saved stage II model applied to another scene."""

from qgis.core import QgsProcessingParameterFile

from ..core import dependencies, noiserobust
from .common import (
    BAD_BANDS_HELP,
    DEVICE_HELP,
    INPUT_HELP,
    SpecialAlgorithm,
    add_bad_bands_parameter,
    add_device_parameter,
    add_input_parameter,
    bad_bands,
    push_warnings,
    run_core,
)
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
            "same sensor. The model's bands are found in the scene by wavelength (within "
            "1 nm, whatever the band order) when both know their wavelengths, else by band "
            "number (then the band count must be the same). "
            "Bands are standardised with the statistics of the scene the model was trained "
            "on, so apply it to data in the same units (radiance or reflectance, same "
            "scaling).\n\n" + INPUT_HELP + BAD_BANDS_HELP + DEVICE_HELP +
            "\n<b>Outputs</b>: classes with the model's class names and colours, and the "
            "confidence (best minus second-best probability), on the input's grid; nodata "
            "pixels stay nodata."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_input_parameter(self)
        self.addParameter(QgsProcessingParameterFile(
            "MODEL", "Model file", fileFilter="special_qgis model (*.pt);;All files (*)"))
        add_device_parameter(self)
        add_bad_bands_parameter(self)
        add_map_outputs(self)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        result = run_core(
            feedback, noiserobust.apply_model, self.raster_path(parameters, "INPUT", context),
            self.parameterAsFile(parameters, "MODEL", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context),
            self.parameterAsString(parameters, "DEVICE", context),
            bad_bands=bad_bands(self, parameters, context))
        push_warnings(feedback, result.warnings)
        return finish(self, context, result)
