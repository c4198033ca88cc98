"""special:noiserobust — the noise-robust network trained on pseudo-labels (SPECIAL stage II)."""

from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

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
    style_class_raster,
    style_confidence_raster,
)

MODEL_FILTER = "special_qgis model (*.pt)"
_DEFAULTS = noiserobust.Schedule()

SCHEDULE_HELP = (
    "<b>Epochs</b> (20), of which <b>warm-up epochs</b> (10); <b>iterations</b> per epoch "
    "(20). Each iteration trains on a few 128×128 crops of the scene with random 90° "
    "rotations, flips and Gaussian noise (σ 0.1 on standardised bands); the network's "
    "output is turned back before the loss.\n"
    "<b>Samples per class</b> (500): every iteration, this many pixels of each pseudo-class "
    "are drawn with probability proportional to their confidence (the random set), from "
    "the class's most confident fifth (at least 50 pixels). A class with fewer pixels "
    "there gives all of them.\n"
    "After warm-up, every epoch the network's own best-versus-second-best margin is split, "
    "per predicted class, by a 3-component Gaussian mixture: the highest component is the "
    "confident set (1/5 of it is used), the lowest the hard set. Their targets are soft: "
    "per-class Gaussian models, with one pooled covariance, on 30 principal components of "
    "the confident pixels' spectra. Loss = CE(random) + 0.1·CE(hard) + 1.0·CE(confident). "
    "The network kept is the mean of its weights over all iterations after warm-up.\n"
    "<b>Learning rate</b> (0.001): Adam, cosine decay to a tenth of it. <b>Seed</b>: the "
    "same seed on the same device gives the same map.\n"
    "<b>Spectral prior weight</b> (1): the map adds to the network's scores a purely "
    "spectral model, linear discriminants (the same pooled Gaussians) fitted on each "
    "class's most confident fifth of the pseudo-labels, scaled so that its median margin "
    "is this many times the network's. The network alone decides some contested fields "
    "differently from one seed to the next; the per-pixel spectral model cannot memorise "
    "a field and steadies those decisions. 0 = the network alone.\n" + DEVICE_HELP
)


class NoiseRobustAlgorithm(SpecialAlgorithm):
    ALG_ID = "noiserobust"
    NEEDS = dependencies.NETWORK
    TITLE = "Noise-robust classification (stage II)"

    def shortHelpString(self):  # noqa: N802
        return (
            "Trains a spectral–spatial network on the pseudo-labels of stage I (or any class "
            "raster with a confidence raster) with the noise-robust schedule of SPECIAL "
            "(Pang et al. 2025), then classifies the whole scene. No ground truth is used "
            "anywhere: the model kept is the mean of the network's weights after warm-up, "
            "with a spectral prior fitted on the pseudo-labels, chosen by no score.\n\n"
            + INPUT_HELP + "Each good band is standardised from its valid pixels.\n"
            "<b>Labels</b> and <b>confidence</b>: special:pseudolabel's outputs for this "
            "scene, or a class raster (1..C, 0 = unlabelled) and a Float32 confidence in "
            "[0, 1] on exactly the same grid. Class names and colours are taken from the "
            "labels' legend.\n"
            "<b>Mask</b> (optional): pixels where it is 0 or nodata are not used for "
            "training (e.g. clouds, or areas you distrust); the map still covers every "
            "valid pixel.\n" + BAD_BANDS_HELP + SCHEDULE_HELP +
            "\n<b>Outputs</b>: classes with the labels' legend; confidence = best minus "
            "second-best probability of the final model (network and prior); optionally "
            "the model file, to classify other scenes of the same sensor with "
            "special:applymodel. The network has a "
            "spatial context of about 14 pixels. Training holds the scene in memory when it "
            "is under 768 MB as Float32, else random 256×256 chips of it; prediction runs in "
            "512×512 tiles."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_input_parameter(self)
        self.addParameter(QgsProcessingParameterRasterLayer("LABELS", "Pseudo-labels"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "CONFIDENCE", "Pseudo-label confidence"))
        add_schedule_parameters(self)
        add_device_parameter(self)
        add_mask_parameter(self)
        add_bad_bands_parameter(self)
        add_map_outputs(self)
        add_model_output(self)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        inputs = noiserobust.Inputs(*(self.raster_path(parameters, name, context)
                                      for name in ("INPUT", "LABELS", "CONFIDENCE", "MASK")),
                                    bad_bands=bad_bands(self, parameters, context))
        schedule = schedule_from(self, parameters, context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        confidence = self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context)
        model = self.parameterAsFileOutput(parameters, "OUTPUT_MODEL", context) or None
        result = run_core(feedback, noiserobust.run, inputs, output, confidence, model,
                          schedule, self.parameterAsString(parameters, "DEVICE", context))
        push_warnings(feedback, result.warnings)
        return finish(self, context, result, model)


def add_schedule_parameters(alg, advanced_names=()) -> None:
    """EPOCHS ... SEED: shared with special:classify (which files more of them under
    Advanced: ``advanced_names``)."""
    advanced = QgsProcessingParameterDefinition.Flag.FlagAdvanced
    integer = QgsProcessingParameterNumber.Type.Integer
    for name, label, default, minimum in (
            ("EPOCHS", "Epochs", _DEFAULTS.epochs, 1),
            ("WARMUP_EPOCHS", "Warm-up epochs", _DEFAULTS.warmup_epochs, 0),
            ("ITERATIONS", "Iterations per epoch", _DEFAULTS.iterations, 1),
            ("SAMPLES_PER_CLASS", "Samples per class", _DEFAULTS.samples_per_class, 1)):
        param = QgsProcessingParameterNumber(name, label, integer, defaultValue=default,
                                             minValue=minimum)
        if name in advanced_names:
            param.setFlags(param.flags() | advanced)
        alg.addParameter(param)
    rate = QgsProcessingParameterNumber(
        "LEARNING_RATE", "Learning rate", QgsProcessingParameterNumber.Type.Double,
        defaultValue=_DEFAULTS.learning_rate)
    rate.setMetadata({"widget_wrapper": {"decimals": 6}})
    seed = QgsProcessingParameterNumber("SEED", "Random seed", integer,
                                        defaultValue=_DEFAULTS.seed, minValue=0)
    # Optional (its default applies when unset) so that models and scripts written for
    # 0.2.x, which do not name it, stay valid.
    prior = QgsProcessingParameterNumber(
        "SPECTRAL_PRIOR", "Spectral prior weight (0 = network alone)",
        QgsProcessingParameterNumber.Type.Double, defaultValue=_DEFAULTS.spectral_prior,
        optional=True, minValue=0.0)
    for param in (rate, seed, prior):
        param.setFlags(param.flags() | advanced)
        alg.addParameter(param)


def add_mask_parameter(alg) -> None:
    alg.addParameter(QgsProcessingParameterRasterLayer(
        "MASK", "Training mask (0 = do not train here)", optional=True))


def add_map_outputs(alg) -> None:
    """OUTPUT and OUTPUT_CONFIDENCE of stage II: shared with applymodel and classify."""
    alg.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Classes"))
    alg.addParameter(QgsProcessingParameterRasterDestination(
        "OUTPUT_CONFIDENCE", "Confidence"))


def add_model_output(alg) -> None:
    alg.addParameter(QgsProcessingParameterFileDestination(
        "OUTPUT_MODEL", "Model file", MODEL_FILTER, optional=True, createByDefault=False))


def schedule_from(alg, parameters, context) -> noiserobust.Schedule:
    return noiserobust.Schedule(
        epochs=alg.parameterAsInt(parameters, "EPOCHS", context),
        warmup_epochs=alg.parameterAsInt(parameters, "WARMUP_EPOCHS", context),
        iterations=alg.parameterAsInt(parameters, "ITERATIONS", context),
        samples_per_class=alg.parameterAsInt(parameters, "SAMPLES_PER_CLASS", context),
        learning_rate=alg.parameterAsDouble(parameters, "LEARNING_RATE", context),
        seed=alg.parameterAsInt(parameters, "SEED", context),
        spectral_prior=alg.parameterAsDouble(parameters, "SPECTRAL_PRIOR", context))


def finish(alg, context, result, model=None) -> dict:
    """Style the outputs of stage II (shared with special:applymodel)."""
    style_class_raster(context, result.output, "Classes", result.class_names, result.colours)
    style_confidence_raster(context, result.confidence, "Confidence")
    outputs = {"OUTPUT": result.output, "OUTPUT_CONFIDENCE": result.confidence}
    if model:
        outputs["OUTPUT_MODEL"] = model
    return outputs
