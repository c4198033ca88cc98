"""special:noiserobust — the noise-robust network trained on pseudo-labels (SPECIAL stage II)."""

from ..core import dependencies, noiserobust
from .base import SpecialAlgorithm, push_warnings, run_core
from .params import bad_bands, device, schedule_from
from .styling import style_class_raster, style_confidence_raster


class NoiseRobustAlgorithm(SpecialAlgorithm):
    ALG_ID = "noiserobust"
    NEEDS = dependencies.NETWORK

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        inputs = noiserobust.Inputs(*(self.raster_path(parameters, name, context)
                                      for name in ("INPUT", "LABELS", "CONFIDENCE", "MASK")),
                                    bad_bands=bad_bands(self, parameters, context))
        schedule = schedule_from(self, parameters, context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        confidence = self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context)
        model = self.parameterAsFileOutput(parameters, "OUTPUT_MODEL", context) or None
        result = run_core(feedback, noiserobust.run, inputs, output, confidence, model,
                          schedule, device(self, parameters, context))
        push_warnings(feedback, result.warnings)
        return finish(self, context, result, model)


def finish(alg, context, result, model=None) -> dict:
    """Style the outputs of stage II (shared with special:applymodel and special:classify)."""
    style_class_raster(context, result.output, "Classes", result.class_names, result.colours)
    style_confidence_raster(context, result.confidence, "Confidence")
    outputs = {"OUTPUT": result.output, "OUTPUT_CONFIDENCE": result.confidence}
    if model:
        outputs["OUTPUT_MODEL"] = model
    return outputs
