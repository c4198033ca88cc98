"""special:pseudolabel (SPECIAL stage I)."""

from __future__ import annotations

from . import AlgorithmSpec, Param
from .shared import (
    BAD_BANDS,
    BAD_BANDS_HELP,
    CLASSES,
    CLASSES_FILE,
    INPUT_HELP,
    clip_params,
    input_param,
    stage_i_help,
    wavelength_params,
    wavelengths_help,
)


def pseudolabel() -> AlgorithmSpec:
    return AlgorithmSpec(
        "pseudolabel", "CLIP pseudo-labels (stage I)", "special",
        "Labels every pixel of a hyperspectral (or 3-band RGB) raster with one of the "
        "class names you type, using CLIP with no training labels (SPECIAL stage I, "
        "Pang et al. 2025). A hyperspectral input is rendered as pseudo-RGB; CLIP's last "
        "attention block is replaced by q-q, k-k and v-v self-attention to give per-patch "
        "embeddings (SegEarth-OV style), matched against the class names in CLIP's 80 "
        "ImageNet prompt templates, with the whole-window (CLS) prediction subtracted "
        "(λ = −0.3). The patch grid is upsampled bilinearly and then sharpened to the "
        "image's edges with a guided filter (radius = patch size, ε = 0.01).\n\n"
        + INPUT_HELP + "A 3-band raster is taken as R, G, B; a hyperspectral one needs "
        "its wavelengths (see below).\n" + stage_i_help() + wavelengths_help()
        + BAD_BANDS_HELP +
        "\n<b>Outputs</b>: labels (1..C, 0 = no data) with the class names as legend; "
        "confidence = best minus second-best class probability (0..1); optionally the "
        "fused per-class probabilities (one band per class). All on the input's grid; "
        "input nodata pixels stay nodata. Random or unsuitable weights give meaningless "
        "maps: use real CLIP weights.",
        (input_param(), CLASSES, CLASSES_FILE, *clip_params(),
         *wavelength_params(advanced=True), BAD_BANDS,
         Param("OUTPUT_LABELS", "raster_out", "Pseudo-labels",
               help="Classes 1..C (0 = no data), with the class names as legend."),
         Param("OUTPUT_CONFIDENCE", "raster_out", "Pseudo-label confidence",
               help="Best minus second-best class probability (0..1)."),
         Param("OUTPUT_PROBABILITIES", "raster_out", "Class probabilities", optional=True,
               create_by_default=False, help="The fused probabilities, one band per class.")))
