"""special:pseudolabel — CLIP pseudo-labels with resolution scaling (SPECIAL stage I)."""

from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..core import classes as classes_mod
from ..core import clip_backbone, dependencies, pseudolabel
from ..core.errors import UserInputError
from .common import (
    BAD_BANDS_HELP,
    DEVICE_HELP,
    INPUT_HELP,
    WAVELENGTHS_HELP,
    SpecialAlgorithm,
    add_bad_bands_parameter,
    add_device_parameter,
    add_input_parameter,
    add_wavelength_parameters,
    bad_bands,
    clip_cache_dir,
    run_core,
    style_class_raster,
    style_confidence_raster,
)

STAGE_I_HELP = (
    "<b>Classes</b>: the class names, separated by ';'; synonyms of one class separated by "
    "',' (the best-matching synonym counts), e.g. <i>water; trees, forest; meadows; bare "
    "soil; asphalt, road</i>. At least two classes: CLIP chooses among the names given, so "
    "add a catch-all such as 'background' if the scene has other cover. Or a <b>classes "
    "file</b>: one class per line.\n"
    "<b>Model</b>: an open_clip vision transformer (default ViT-B-16; ViT-B-32, ViT-L-14, "
    "or ViT-B-16-quickgelu for an OpenAI checkpoint file). <b>Weights</b>: an open_clip tag "
    "(default openai, downloaded once into the cache folder of the plugin settings) or the "
    "path "
    "of a checkpoint file (.pt, .bin, .safetensors: e.g. RemoteCLIP or GeoRSCLIP weights "
    "for the same architecture).\n"
    "<b>Scales</b>: zoom factors (resolution scaling), default 1,2: the image is zoomed "
    "(cubic), segmented, and the class probabilities are zoomed back and averaged.\n"
    "<b>Window / stride</b>: sliding-window size and step in pixels of the zoomed image "
    "(224 / 112); overlapping windows are averaged.\n"
    + DEVICE_HELP
)


class PseudoLabelAlgorithm(SpecialAlgorithm):
    ALG_ID = "pseudolabel"
    NEEDS = dependencies.CLIP
    TITLE = "CLIP pseudo-labels (stage I)"
    INPUT = "INPUT"
    CLASSES = "CLASSES"
    CLASSES_FILE = "CLASSES_FILE"
    MODEL = "MODEL"
    PRETRAINED = "PRETRAINED"
    SCALES = "SCALES"
    WINDOW = "WINDOW"
    STRIDE = "STRIDE"
    DEVICE = "DEVICE"
    OUTPUT_LABELS = "OUTPUT_LABELS"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"

    def shortHelpString(self):  # noqa: N802
        return (
            "Labels every pixel of a hyperspectral (or 3-band RGB) raster with one of the "
            "class names you type, using CLIP with no training labels (SPECIAL stage I, "
            "Pang et al. 2025). A hyperspectral input is rendered as pseudo-RGB; CLIP's last "
            "attention block is replaced by q-q, k-k and v-v self-attention to give per-patch "
            "embeddings (SegEarth-OV style), matched against the class names in CLIP's 80 "
            "ImageNet prompt templates, with the whole-window (CLS) prediction subtracted "
            "(λ = −0.3). The patch grid is upsampled bilinearly and then sharpened to the "
            "image's edges with a guided filter (radius = patch size, ε = 0.01).\n\n"
            + INPUT_HELP + "A 3-band raster is taken as R, G, B; a hyperspectral one needs "
            "its wavelengths (see below).\n" + STAGE_I_HELP + WAVELENGTHS_HELP
            + BAD_BANDS_HELP +
            "\n<b>Outputs</b>: labels (1..C, 0 = no data) with the class names as legend; "
            "confidence = best minus second-best class probability (0..1); optionally the "
            "fused per-class probabilities (one band per class). All on the input's grid; "
            "input nodata pixels stay nodata. Random or unsuitable weights give meaningless "
            "maps: use real CLIP weights."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_input_parameter(self, self.INPUT)
        add_classes_parameters(self)
        add_clip_parameters(self)
        add_wavelength_parameters(self, advanced=True)
        add_bad_bands_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_LABELS, "Pseudo-labels"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, "Pseudo-label confidence"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, "Class probabilities", optional=True,
            createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        classes = read_classes(self, parameters, context)
        labels = self.parameterAsOutputLayer(parameters, self.OUTPUT_LABELS, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context)
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES,
                                                    context) or None
        result = run_core(
            feedback, pseudolabel.run, self.raster_path(parameters, self.INPUT, context),
            classes, labels, confidence,
            probabilities, wavelengths_override=self.parameterAsString(
                parameters, "WAVELENGTHS", context),
            targets=self.parameterAsString(parameters, "TARGET_WAVELENGTHS", context),
            cache_dir=clip_cache_dir(), bad_bands=bad_bands(self, parameters, context),
            **clip_arguments(self, parameters, context),
        )
        feedback.pushInfo(f"{result.windows} windows segmented; classes: "
                          + ", ".join(result.class_names))
        style_class_raster(context, labels, "Pseudo-labels", result.class_names,
                           classes_mod.colours(len(result.class_names)))
        style_confidence_raster(context, confidence, "Pseudo-label confidence")
        outputs = {self.OUTPUT_LABELS: labels, self.OUTPUT_CONFIDENCE: confidence}
        if probabilities:
            outputs[self.OUTPUT_PROBABILITIES] = probabilities
        return outputs


def add_classes_parameters(alg) -> None:
    """CLASSES or CLASSES_FILE: shared with special:classify."""
    alg.addParameter(QgsProcessingParameterString(
        "CLASSES", "Classes (';' between classes, ',' between synonyms)", optional=True))
    alg.addParameter(QgsProcessingParameterFile(
        "CLASSES_FILE", "Classes file (one class per line; instead of Classes)",
        optional=True, fileFilter="Text files (*.txt);;All files (*)"))


def add_clip_parameters(alg) -> None:
    """MODEL, PRETRAINED, SCALES, WINDOW, STRIDE, DEVICE: shared with special:classify."""
    advanced = QgsProcessingParameterDefinition.Flag.FlagAdvanced
    alg.addParameter(QgsProcessingParameterString(
        "MODEL", "CLIP model (open_clip ViT)", defaultValue=clip_backbone.DEFAULT_MODEL))
    alg.addParameter(QgsProcessingParameterString(
        "PRETRAINED", "CLIP weights (open_clip tag, or a checkpoint file)",
        defaultValue=clip_backbone.DEFAULT_PRETRAINED))
    alg.addParameter(QgsProcessingParameterString(
        "SCALES", "Resolution scales (zoom factors, comma-separated)", defaultValue="1,2"))
    for name, label, default in (("WINDOW", "Sliding window size (px)",
                                  pseudolabel.DEFAULT_WINDOW),
                                 ("STRIDE", "Sliding window stride (px)",
                                  pseudolabel.DEFAULT_STRIDE)):
        param = QgsProcessingParameterNumber(name, label, QgsProcessingParameterNumber.Type.Integer,
                                             defaultValue=default, minValue=1)
        param.setFlags(param.flags() | advanced)
        alg.addParameter(param)
    add_device_parameter(alg)


def clip_arguments(alg, parameters, context) -> dict:
    return dict(
        model_name=alg.parameterAsString(parameters, "MODEL", context).strip(),
        pretrained=alg.parameterAsString(parameters, "PRETRAINED", context).strip(),
        scales=alg.parameterAsString(parameters, "SCALES", context),
        window=alg.parameterAsInt(parameters, "WINDOW", context),
        stride=alg.parameterAsInt(parameters, "STRIDE", context),
        device=alg.parameterAsString(parameters, "DEVICE", context),
    )


def read_classes(alg, parameters, context) -> list:
    """CLASSES or CLASSES_FILE (exactly one of them), parsed by core."""
    from qgis.core import QgsProcessingException

    text = alg.parameterAsString(parameters, "CLASSES", context)
    path = alg.parameterAsFile(parameters, "CLASSES_FILE", context)
    try:
        if text.strip() and path:
            raise UserInputError("Give either CLASSES or CLASSES_FILE, not both.")
        if path:
            return classes_mod.read_classes_file(path)
        return classes_mod.parse_classes(text)
    except UserInputError as exc:
        raise QgsProcessingException(str(exc)) from None
