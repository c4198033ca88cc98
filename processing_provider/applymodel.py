"""special:applymodel — a saved stage II model applied to another scene."""

from ..core import dependencies, noiserobust
from .base import SpecialAlgorithm, push_warnings, run_core
from .noiserobust import finish
from .params import bad_bands, device


class ApplyModelAlgorithm(SpecialAlgorithm):
    ALG_ID = "applymodel"
    NEEDS = dependencies.NETWORK

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        result = run_core(
            feedback, noiserobust.apply_model, self.raster_path(parameters, "INPUT", context),
            self.parameterAsFile(parameters, "MODEL", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context),
            device(self, parameters, context),
            bad_bands=bad_bands(self, parameters, context))
        push_warnings(feedback, result.warnings)
        return finish(self, context, result)
