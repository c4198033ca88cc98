"""special:classify — the whole SPECIAL pipeline in one step."""

from qgis.core import QgsProcessingParameterRasterDestination

from ..core import dependencies, pipeline
from .common import (
    BAD_BANDS_HELP,
    INPUT_HELP,
    WAVELENGTHS_HELP,
    SpecialAlgorithm,
    add_bad_bands_parameter,
    add_input_parameter,
    add_wavelength_parameters,
    bad_bands,
    clip_cache_dir,
    push_warnings,
    run_core,
    style_class_raster,
    style_rgb_raster,
)
from .noiserobust import (
    SCHEDULE_HELP,
    add_map_outputs,
    add_mask_parameter,
    add_model_output,
    add_schedule_parameters,
    finish,
    schedule_from,
)
from .pseudolabel import (
    STAGE_I_HELP,
    add_classes_parameters,
    add_clip_parameters,
    clip_arguments,
    read_classes,
)


class ClassifyAlgorithm(SpecialAlgorithm):
    ALG_ID = "classify"
    NEEDS = tuple(dict.fromkeys(dependencies.CLIP + dependencies.NETWORK))
    TITLE = "Classify hyperspectral image (whole pipeline)"

    def shortHelpString(self):  # noqa: N802
        return (
            "Classifies a hyperspectral raster into the classes you name, with no training "
            "labels: the whole SPECIAL pipeline (Pang et al. 2025) in one step. The cube is "
            "rendered as pseudo-RGB; CLIP labels every pixel at several zoom factors "
            "(stage I, as in 'CLIP pseudo-labels'); a spectral–spatial network trained on "
            "those noisy pseudo-labels with a noise-robust schedule classifies the scene "
            "(stage II, as in 'Noise-robust classification'). Parameters have the same "
            "names and defaults as in the single-stage algorithms. The log names each stage "
            "as it starts, and errors say which stage raised them. Cancelling at any point "
            "leaves none of the outputs behind.\n\n"
            + INPUT_HELP + "It needs at least 4 good bands and their wavelengths (see "
            "below).\n" + STAGE_I_HELP + WAVELENGTHS_HELP + BAD_BANDS_HELP +
            "<b>Mask</b> (optional): pixels where it is 0 or nodata are not used for stage II "
            "training; the map still covers every valid pixel.\n" + SCHEDULE_HELP +
            "\n<b>Outputs</b>: classes (1..C, 0 = no data) with the class names as legend; "
            "confidence = best minus second-best probability of the final model (0..1); "
            "optionally the stage I pseudo-labels, the pseudo-RGB and the stage II model "
            "file (for special:applymodel). All rasters are on the input's grid; input "
            "nodata pixels stay nodata. Random or unsuitable CLIP weights give meaningless "
            "maps: use real CLIP weights."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_input_parameter(self)
        add_classes_parameters(self)
        add_clip_parameters(self)
        add_wavelength_parameters(self, advanced=True)
        add_bad_bands_parameter(self)
        add_schedule_parameters(self, ("WARMUP_EPOCHS", "ITERATIONS", "SAMPLES_PER_CLASS"))
        add_mask_parameter(self)
        add_map_outputs(self)
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_PSEUDO_LABELS", "Pseudo-labels (stage I)", optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_RGB", "Pseudo-RGB", optional=True, createByDefault=False))
        add_model_output(self)

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
            wavelengths_override=self.parameterAsString(parameters, "WAVELENGTHS", context),
            targets=self.parameterAsString(parameters, "TARGET_WAVELENGTHS", context),
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
