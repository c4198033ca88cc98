"""special:classify — the whole SPECIAL pipeline in one step."""

from ..core import dependencies, pipeline
from .base import SpecialAlgorithm, push_warnings, run_core
from .noiserobust import finish
from .params import (
    bad_bands,
    clip_arguments,
    read_classes,
    schedule_from,
    wavelength_arguments,
)
from .settings import clip_cache_dir
from .styling import style_class_raster, style_rgb_raster


class ClassifyAlgorithm(SpecialAlgorithm):
    ALG_ID = "classify"
    NEEDS = tuple(dict.fromkeys(dependencies.CLIP + dependencies.NETWORK))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        outputs = {name: self.parameterAsOutputLayer(parameters, name, context) or None
                   for name in ("OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PSEUDO_LABELS",
                                "OUTPUT_RGB")}
        model = self.parameterAsFileOutput(parameters, "OUTPUT_MODEL", context) or None
        result = run_core(
            feedback, pipeline.classify, self.raster_path(parameters, "INPUT", context),
            read_classes(self, parameters, context), outputs["OUTPUT"],
            outputs["OUTPUT_CONFIDENCE"], outputs["OUTPUT_PSEUDO_LABELS"],
            outputs["OUTPUT_RGB"], model,
            **wavelength_arguments(self, parameters, context),
            schedule=schedule_from(self, parameters, context),
            mask_path=self.raster_path(parameters, "MASK", context),
            bad_bands=bad_bands(self, parameters, context),
            cache_dir=clip_cache_dir(), **clip_arguments(self, parameters, context))
        feedback.pushInfo(f"{result.windows} CLIP windows segmented; classes: "
                          + ", ".join(result.class_names))
        push_warnings(feedback, result.warnings)
        done = finish(self, context, result, model)
        if result.pseudo_labels:
            style_class_raster(context, result.pseudo_labels, "Pseudo-labels",
                               result.class_names, result.colours)
            done["OUTPUT_PSEUDO_LABELS"] = result.pseudo_labels
        if result.rgb:
            style_rgb_raster(context, result.rgb, "Pseudo-RGB")
            done["OUTPUT_RGB"] = result.rgb
        return done
