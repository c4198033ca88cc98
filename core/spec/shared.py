"""Parameters and help shared by several algorithms. Functions, not constants, where a
default comes from an engine module that needs packages the other algorithms do not."""

from __future__ import annotations

from dataclasses import fields

from ..device import DEVICES
from ..final_map import PRIOR_MODES
from . import Param

DEFAULT_DEVICE = "auto"


def numbers(values) -> str:
    """(655.0, 553.0) → '655,553': a tuple of engine defaults as a parameter's text."""
    return ",".join(f"{v:g}" for v in values)


# ------------------------------------------------------------------------------ input

INPUT_HELP = (
    "<b>Input raster</b>: a hyperspectral raster (GeoTIFF, ENVI...) or a product file as "
    "downloaded: EnMAP or DESIS *-SPECTRAL_IMAGE (with its METADATA.XML beside it), PRISMA "
    "L2D .he5, EMIT L2A reflectance .nc, AVIRIS ENVI. Bands may come in any order "
    "(detector order, overlapping spectrometers).\n"
)


def input_param(label: str = "Input raster") -> Param:
    return Param("INPUT", "input", label, help=(
        "A hyperspectral raster (GeoTIFF, ENVI...) or a product file as downloaded (EnMAP, "
        "DESIS, PRISMA L2D .he5, EMIT L2A .nc, AVIRIS)."))


BAD_BANDS_HELP = (
    "<b>Bad bands</b> (advanced): bands the file flags (bbl = 0, a product's flags) or that "
    "hold no valid value at all are always left out, and the log lists them. Add more as "
    "1-based band numbers and ranges and/or wavelength ranges in nm, e.g. "
    "<i>130-135,165-182</i> or <i>1340-1450nm,1790-1960nm</i>. A pixel is nodata when any "
    "good band is nodata there.\n"
)

BAD_BANDS = Param(
    "BAD_BANDS", "string", "Bad bands to leave out (numbers, ranges, or nm ranges)",
    optional=True, advanced=True, help=(
        "Bands to leave out besides those the file flags, e.g. 130-135,165-182 or "
        "1340-1450nm,1790-1960nm."))


# ------------------------------------------------------------------------ wavelengths

def wavelengths_help() -> str:
    from .. import pseudo_rgb

    return (
        "<b>Band wavelengths</b>: band centres in nm, comma-separated, one per band in the "
        "file's band order (any order: detector order and overlaps are fine). Leave "
        "empty to read them from the raster's metadata (ENVI header 'wavelength' and "
        "'wavelength units', or GDAL band metadata 'wavelength' + 'wavelength_units', or "
        "IMAGERY/CENTRAL_WAVELENGTH_UM). Numbers below 100 without units are taken as "
        "micrometres.\n"
        f"<b>Target wavelengths</b>: nm, default {numbers(pseudo_rgb.DEFAULT_TARGETS)} (red, "
        "green, blue).\n"
    )


WAVELENGTHS = Param(
    "WAVELENGTHS", "string", "Band wavelengths (nm, comma-separated; empty = from metadata)",
    optional=True, help="Band centres in nm, one per band; empty: read from the metadata.")


def wavelength_params(advanced: bool = False) -> list:
    """WAVELENGTHS and TARGET_WAVELENGTHS, as every algorithm that makes a pseudo-RGB has."""
    from .. import pseudo_rgb

    targets = Param(
        "TARGET_WAVELENGTHS", "string", "Target wavelengths of the pseudo-RGB (nm)",
        default=numbers(pseudo_rgb.DEFAULT_TARGETS),
        help="Red, green and blue of the pseudo-RGB, in nm.")
    return [p.but(advanced=advanced) for p in (WAVELENGTHS, targets)]


# ----------------------------------------------------------------------------- device

DEVICE_HELP = ("<b>Device</b>: auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or "
               "cuda (an error when there is no GPU). Its default is set in Settings ▸ "
               "Options ▸ Processing ▸ Providers ▸ SPECIAL hyperspectral (auto unless "
               "changed), as is the number of CPU threads.\n")

DEVICE = Param(
    "DEVICE", "enum", "Device", default=DEFAULT_DEVICE, options=DEVICES, help=(
        "auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda. The default is "
        "the plugin setting 'Default device'."))


# ---------------------------------------------------------------------------- stage I

CLASSES = Param(
    "CLASSES", "string", "Classes (';' between classes, ',' between synonyms)",
    optional=True, help="e.g. water; trees, forest; meadows. Give this or CLASSES_FILE.")
CLASSES_FILE = Param(
    "CLASSES_FILE", "file", "Classes file (one class per line; instead of Classes)",
    optional=True, file_filter="Text files (*.txt);;All files (*)",
    help="A text file with one class per line (synonyms separated by ',').")


def stage_i_help() -> str:
    from .. import clip_backbone, pseudolabel

    return (
        "<b>Classes</b>: the class names, separated by ';'; synonyms of one class separated "
        "by ',' (the best-matching synonym counts), e.g. <i>water; trees, forest; meadows; "
        "bare soil; asphalt, road</i>. At least two classes: CLIP chooses among the names "
        "given, so add a catch-all such as 'background' if the scene has other cover. Or a "
        "<b>classes file</b>: one class per line.\n"
        f"<b>Model</b>: an open_clip vision transformer (default {clip_backbone.DEFAULT_MODEL}"
        "; ViT-B-32, ViT-L-14, or ViT-B-16-quickgelu for an OpenAI checkpoint file). "
        f"<b>Weights</b>: an open_clip tag (default {clip_backbone.DEFAULT_PRETRAINED}, "
        "downloaded once into the cache folder of the plugin settings) or the path of a "
        "checkpoint file (.pt, .bin, .safetensors: e.g. RemoteCLIP or GeoRSCLIP weights for "
        "the same architecture).\n"
        "<b>Scales</b>: zoom factors (resolution scaling), default "
        f"{numbers(pseudolabel.DEFAULT_SCALES)}: the image is zoomed (cubic), segmented, and "
        "the class probabilities are zoomed back and averaged.\n"
        "<b>Window / stride</b>: sliding-window size and step in pixels of the zoomed image "
        f"({pseudolabel.DEFAULT_WINDOW} / {pseudolabel.DEFAULT_STRIDE}); overlapping windows "
        "are averaged.\n" + DEVICE_HELP
    )


def clip_params() -> list:
    """MODEL, PRETRAINED, SCALES, WINDOW, STRIDE, DEVICE: pseudolabel's and classify's."""
    from .. import clip_backbone, pseudolabel

    return [
        Param("MODEL", "string", "CLIP model (open_clip ViT)",
              default=clip_backbone.DEFAULT_MODEL,
              help="An open_clip vision transformer, e.g. ViT-B-16, ViT-B-32, ViT-L-14."),
        Param("PRETRAINED", "string", "CLIP weights (open_clip tag, or a checkpoint file)",
              default=clip_backbone.DEFAULT_PRETRAINED,
              help="An open_clip tag (downloaded once) or a checkpoint file (.pt, .bin, "
                   ".safetensors) for the same architecture."),
        Param("SCALES", "string", "Resolution scales (zoom factors, comma-separated)",
              default=numbers(pseudolabel.DEFAULT_SCALES),
              help="Zoom factors; the class probabilities of each are averaged."),
        Param("WINDOW", "int", "Sliding window size (px)", default=pseudolabel.DEFAULT_WINDOW,
              minimum=1, advanced=True, help="CLIP's sliding window, in zoomed pixels."),
        Param("STRIDE", "int", "Sliding window stride (px)", default=pseudolabel.DEFAULT_STRIDE,
              minimum=1, advanced=True, help="Step between windows, in zoomed pixels."),
        DEVICE,
    ]


# --------------------------------------------------------------------------- stage II

# Parameter → the field of core.noiserobust.Schedule it sets (and takes its default from).
SCHEDULE_FIELDS = {
    "EPOCHS": "epochs",
    "WARMUP_EPOCHS": "warmup_epochs",
    "ITERATIONS": "iterations",
    "SAMPLES_PER_CLASS": "samples_per_class",
    "LEARNING_RATE": "learning_rate",
    "SEED": "seed",
    "SPECTRAL_PRIOR": "spectral_prior",
    "CLASS_PRIORS": "class_priors",
    "SMOOTHING_RADIUS": "smoothing_radius",
}


def schedule_defaults() -> dict:
    """Schedule's defaults by parameter name, read from the engine's dataclass."""
    from .. import noiserobust

    defaults = {f.name: f.default for f in fields(noiserobust.Schedule)}
    return {name: defaults[field_name] for name, field_name in SCHEDULE_FIELDS.items()}


def schedule_help() -> str:
    d = schedule_defaults()
    return (
        f"<b>Epochs</b> ({d['EPOCHS']}), of which <b>warm-up epochs</b> "
        f"({d['WARMUP_EPOCHS']}); <b>iterations</b> per epoch ({d['ITERATIONS']}). Each "
        "iteration trains on a few 128×128 crops of the scene with random 90° "
        "rotations, flips and Gaussian noise (σ 0.1 on standardised bands); the network's "
        "output is turned back before the loss.\n"
        f"<b>Samples per class</b> ({d['SAMPLES_PER_CLASS']}): every iteration, this many "
        "pixels of each pseudo-class are drawn with probability proportional to their "
        "confidence (the random set), from the class's most confident fifth (at least 50 "
        "pixels). A class with fewer pixels there gives all of them.\n"
        "After warm-up, every epoch the network's own best-versus-second-best margin is split, "
        "per predicted class, by a 3-component Gaussian mixture: the highest component is the "
        "confident set (1/5 of it is used), the lowest the hard set. Their targets are soft: "
        "per-class Gaussian models, with one pooled covariance, on 30 principal components of "
        "the confident pixels' spectra. Loss = CE(random) + 0.1·CE(hard) + 1.0·CE(confident). "
        "The network kept is the mean of its weights over all iterations after warm-up.\n"
        f"<b>Learning rate</b> ({d['LEARNING_RATE']:g}): Adam, cosine decay to a tenth of it. "
        "<b>Seed</b>: the same seed on the same device gives the same map.\n"
        f"<b>Spectral prior weight</b> ({d['SPECTRAL_PRIOR']:g}): the map adds to the "
        "network's scores a purely spectral model, linear discriminants (the same pooled "
        "Gaussians) fitted on each class's most confident fifth of the pseudo-labels, scaled "
        "so that its median margin is this many times the network's. The network alone "
        "decides some contested fields differently from one seed to the next; the per-pixel "
        "spectral model cannot memorise a field and steadies those decisions. 0 = the network "
        "alone.\n" + final_map_help() + DEVICE_HELP
    )


def final_map_help() -> str:
    d = schedule_defaults()
    return (
        "<b>What the final map assumes.</b> The network learns from balanced samples (the "
        "same number of pixels per class), so its probabilities assume that every class is "
        "equally common. "
        f"<b>Class priors</b> ({d['CLASS_PRIORS']}): <i>equal</i> keeps that assumption; "
        "<i>scene</i> estimates how common each class is in the scene being classified, "
        "from the network's own probabilities (no labels: the EM re-estimation of Saerens "
        "et al. 2002), and weights the probabilities by it. On the project's benchmarks "
        "<i>scene</i> gave common classes a few more pixels but handed the small objects "
        "of rare classes (houses, narrow roads) to their neighbours, so it is not the "
        "default.\n"
        f"<b>Smoothing radius</b> ({d['SMOOTHING_RADIUS']} px): the class probabilities are "
        "averaged over (2·radius + 1)² pixels by an edge-aware (guided) filter that follows "
        "the scene's first three principal components: it smooths inside fields and roofs "
        "and stops at their edges, even weak ones. 0 = no smoothing (every pixel decided by "
        "the network alone).\n"
        "The model file records both, and special:applymodel makes its map the same way "
        "(with <i>scene</i> priors, estimated on the scene it classifies).\n"
    )


def schedule_params(advanced_names=()) -> list:
    """EPOCHS ... SPECTRAL_PRIOR: noiserobust's and classify's (which files more of them
    under Advanced: ``advanced_names``)."""
    d = schedule_defaults()
    params = [
        Param("EPOCHS", "int", "Epochs", default=d["EPOCHS"], minimum=1,
              help="Training epochs, warm-up included."),
        Param("WARMUP_EPOCHS", "int", "Warm-up epochs", default=d["WARMUP_EPOCHS"], minimum=0,
              help="Epochs on the random set alone, before the confident and hard sets."),
        Param("ITERATIONS", "int", "Iterations per epoch", default=d["ITERATIONS"], minimum=1,
              help="Training iterations per epoch."),
        Param("SAMPLES_PER_CLASS", "int", "Samples per class", default=d["SAMPLES_PER_CLASS"],
              minimum=1, help="Pixels of each pseudo-class drawn every iteration."),
    ]
    params = [p.but(advanced=p.name in advanced_names) for p in params]
    params += [
        Param("LEARNING_RATE", "float", "Learning rate", default=d["LEARNING_RATE"],
              advanced=True, decimals=6, help="Adam's, with cosine decay to a tenth of it."),
        Param("SEED", "int", "Random seed", default=d["SEED"], minimum=0, advanced=True,
              help="The same seed on the same device gives the same map."),
        # Optional (its default applies when unset) so that models and scripts written for
        # 0.2.x, which do not name it, stay valid.
        Param("SPECTRAL_PRIOR", "float", "Spectral prior weight (0 = network alone)",
              default=d["SPECTRAL_PRIOR"], minimum=0.0, optional=True, advanced=True,
              help="Weight of the spectral model added to the network's scores; 0 = the "
                   "network alone."),
        Param("CLASS_PRIORS", "enum", "Class priors of the final map",
              default=d["CLASS_PRIORS"], options=PRIOR_MODES, optional=True, advanced=True,
              help="scene: estimated on the scene from the network's probabilities; "
                   "equal: every class equally likely (the map of 0.5)."),
        Param("SMOOTHING_RADIUS", "int", "Smoothing radius of the final map (px, 0 = off)",
              default=d["SMOOTHING_RADIUS"], minimum=0, maximum=10, optional=True,
              advanced=True,
              help="Edge-aware smoothing of the class probabilities over (2·radius + 1)² "
                   "pixels; 0 = none."),
    ]
    return params


MASK = Param("MASK", "raster", "Training mask (0 = do not train here)", optional=True,
             help="Pixels where it is 0 or nodata are not used for training.")

MODEL_FILTER = "special_qgis model (*.pt)"

MAP_OUTPUTS = [
    Param("OUTPUT", "raster_out", "Classes", help="The class map (1..C, 0 = no data)."),
    Param("OUTPUT_CONFIDENCE", "raster_out", "Confidence",
          help="Best minus second-best class probability (0..1)."),
]

MODEL_OUTPUT = Param(
    "OUTPUT_MODEL", "file_out", "Model file", file_filter=MODEL_FILTER, optional=True,
    create_by_default=False, help="The trained network, for special:applymodel.")
