"""special:pseudolabel — CLIP pseudo-labels with resolution scaling (SPECIAL stage I)."""

from ..core import classes as classes_mod
from ..core import dependencies, pseudolabel
from .base import SpecialAlgorithm, run_core
from .params import bad_bands, clip_arguments, read_classes, wavelength_arguments
from .settings import clip_cache_dir
from .styling import style_class_raster, style_confidence_raster


class PseudoLabelAlgorithm(SpecialAlgorithm):
    ALG_ID = "pseudolabel"
    NEEDS = dependencies.CLIP

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        classes = read_classes(self, parameters, context)
        labels = self.parameterAsOutputLayer(parameters, "OUTPUT_LABELS", context)
        confidence = self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context)
        probabilities = self.parameterAsOutputLayer(parameters, "OUTPUT_PROBABILITIES",
                                                    context) or None
        result = run_core(
            feedback, pseudolabel.run, self.raster_path(parameters, "INPUT", context),
            classes, labels, confidence, probabilities,
            cache_dir=clip_cache_dir(), bad_bands=bad_bands(self, parameters, context),
            **wavelength_arguments(self, parameters, context),
            **clip_arguments(self, parameters, context),
        )
        feedback.pushInfo(f"{result.windows} windows segmented; classes: "
                          + ", ".join(result.class_names))
        style_class_raster(context, labels, "Pseudo-labels", result.class_names,
                           classes_mod.colours(len(result.class_names)))
        style_confidence_raster(context, confidence, "Pseudo-label confidence")
        outputs = {"OUTPUT_LABELS": labels, "OUTPUT_CONFIDENCE": confidence}
        if probabilities:
            outputs["OUTPUT_PROBABILITIES"] = probabilities
        return outputs
