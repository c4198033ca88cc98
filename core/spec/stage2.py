"""special:noiserobust (SPECIAL stage II) and special:applymodel."""

from __future__ import annotations

from . import AlgorithmSpec, Param
from .shared import (
    BAD_BANDS,
    BAD_BANDS_HELP,
    DEVICE,
    DEVICE_HELP,
    INPUT_HELP,
    MAP_OUTPUTS,
    MASK,
    MODEL_FILTER,
    MODEL_OUTPUT,
    input_param,
    schedule_help,
    schedule_params,
)


def noiserobust() -> AlgorithmSpec:
    return AlgorithmSpec(
        "noiserobust", "Noise-robust classification (stage II)", "special",
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
        "valid pixel.\n" + BAD_BANDS_HELP + schedule_help() +
        "\n<b>Outputs</b>: classes with the labels' legend; confidence = best minus "
        "second-best probability of the final model (network and prior); optionally "
        "the model file, to classify other scenes of the same sensor with "
        "special:applymodel. The network has a "
        "spatial context of about 14 pixels. Training holds the scene in memory when it "
        "is under 768 MB as Float32, else random 256×256 chips of it; prediction runs in "
        "512×512 tiles.",
        (input_param(),
         Param("LABELS", "raster", "Pseudo-labels",
               help="special:pseudolabel's labels, or any class raster (1..C, 0 = unlabelled)."),
         Param("CONFIDENCE", "raster", "Pseudo-label confidence",
               help="A Float32 confidence in [0, 1] on the labels' grid."),
         *schedule_params(), DEVICE, MASK, BAD_BANDS, *MAP_OUTPUTS, MODEL_OUTPUT))


def applymodel() -> AlgorithmSpec:
    return AlgorithmSpec(
        "applymodel", "Apply a trained model", "special",
        "Classifies a hyperspectral raster with a model file saved by 'Noise-robust "
        "classification (stage II)' or 'Classify hyperspectral image' (their "
        "OUTPUT_MODEL: the network of SPECIAL's stage II, Pang et al. 2025, arXiv "
        "2501.16222), e.g. the next flight line of the "
        "same sensor. The model's bands are found in the scene by wavelength (within "
        "1 nm, whatever the band order) when both know their wavelengths, else by band "
        "number (then the band count must be the same). "
        "Bands are standardised with the statistics of the scene the model was trained "
        "on, so apply it to data in the same units (radiance or reflectance, same "
        "scaling). The map is finished as the model file records (CLASS_PRIORS and "
        "SMOOTHING_RADIUS of the run that trained it): with 'scene' priors, the class "
        "priors are estimated on the scene being classified; files from before 0.6 make "
        "their map with equal priors and no smoothing, as they did.\n\n" + INPUT_HELP
        + BAD_BANDS_HELP + DEVICE_HELP +
        "\n<b>Outputs</b>: classes with the model's class names and colours, and the "
        "confidence (best minus second-best probability), on the input's grid; nodata "
        "pixels stay nodata.",
        (input_param(),
         Param("MODEL", "file", "Model file", file_filter=f"{MODEL_FILTER};;All files (*)",
               help="A model file saved by special:noiserobust or special:classify."),
         DEVICE, BAD_BANDS, *MAP_OUTPUTS))
