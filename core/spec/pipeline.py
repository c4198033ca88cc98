"""special:classify: the whole SPECIAL pipeline in one step."""

from __future__ import annotations

from . import AlgorithmSpec, Param
from .shared import (
    BAD_BANDS,
    BAD_BANDS_HELP,
    CLASSES,
    CLASSES_FILE,
    INPUT_HELP,
    MAP_OUTPUTS,
    MASK,
    MODEL_OUTPUT,
    clip_params,
    input_param,
    schedule_help,
    schedule_params,
    stage_i_help,
    wavelength_params,
    wavelengths_help,
)


def classify() -> AlgorithmSpec:
    return AlgorithmSpec(
        "classify", "Classify hyperspectral image (whole pipeline)", "special",
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
        "below).\n" + stage_i_help() + wavelengths_help() + BAD_BANDS_HELP +
        "<b>Mask</b> (optional): pixels where it is 0 or nodata are not used for stage II "
        "training; the map still covers every valid pixel.\n" + schedule_help() +
        "\n<b>Outputs</b>: classes (1..C, 0 = no data) with the class names as legend; "
        "confidence = best minus second-best probability of the final model (0..1); "
        "optionally the stage I pseudo-labels, the pseudo-RGB and the stage II model "
        "file (for special:applymodel). All rasters are on the input's grid; input "
        "nodata pixels stay nodata. Random or unsuitable CLIP weights give meaningless "
        "maps: use real CLIP weights.",
        (input_param(), CLASSES, CLASSES_FILE, *clip_params(),
         *wavelength_params(advanced=True), BAD_BANDS,
         *schedule_params(("WARMUP_EPOCHS", "ITERATIONS", "SAMPLES_PER_CLASS")), MASK,
         *MAP_OUTPUTS,
         Param("OUTPUT_PSEUDO_LABELS", "raster_out", "Pseudo-labels (stage I)", optional=True,
               create_by_default=False, help="Stage I's pseudo-labels."),
         Param("OUTPUT_RGB", "raster_out", "Pseudo-RGB", optional=True,
               create_by_default=False, help="The pseudo-RGB CLIP saw."),
         MODEL_OUTPUT))
