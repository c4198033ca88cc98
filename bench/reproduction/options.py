"""The command line of bench/reproduce.py. The pipeline's options (stage I, stage II, the
device) are built from the plugin's parameter spec (special_qgis.core.spec): the option is
the parameter's name in kebab case (SAMPLES_PER_CLASS → --samples-per-class), and its
default, choices and help are the spec's, which reads the defaults from the engine
(noiserobust.Schedule, core.pseudolabel's and core.clip_backbone's constants). No default
of the pipeline is written here."""

from __future__ import annotations

import argparse
import re
import textwrap

from special_qgis.core import noiserobust
from special_qgis.core.spec import Param, spec
from special_qgis.core.spec.shared import SCHEDULE_FIELDS

from .scene import SENSORS

DESCRIPTION = """\
Reproduce SPECIAL's ablation table on a benchmark scene with ground truth.

Runs the plugin's pipeline (special_qgis.core) on CUBE with the class names you give:
  1. stage I, CLIP pseudo-labels at scale 1 only (--scales ignored);
  2. stage I with resolution scaling (RS) at --scales (default {scales});
  3. stage II, the noise-robust network trained on the RS pseudo-labels;
and prints OA, AA and Cohen's κ (in percent) of the three maps against TRUTH, over the
pixels labelled in TRUTH (code 0 = unlabelled is skipped), plus per-class accuracy, the
wall time of each stage and the machine. The ground truth only scores the maps: it never
enters training, masking or model selection (the map scored is stage II's kept model:
its weights averaged after warm-up, plus the spectral prior fitted on the pseudo-labels).

Inputs
  CUBE  a MATLAB .mat file (scipy.io.loadmat; the file's only 3-D array, or --cube-key),
        stored (rows, cols, bands) as the benchmark files are, or any raster GDAL reads
        (ENVI .hdr/.img, GeoTIFF, ...). The whole cube is loaded into memory and written
        once as a GeoTIFF into --workdir: fine for the benchmark scenes (Pavia Centre,
        1096 x 715 x 102, is about 160 MB as uint16), not meant for huge scenes.
  TRUTH a .mat file (its only 2-D array, or --truth-key) or a one-band raster of class
        codes 1..C, 0 = unlabelled, on the cube's grid (same rows and cols).
  MATLAB v7.3 files are HDF5, which scipy cannot read: they are read with h5py when it is
  installed; otherwise re-save them as v7 (MATLAB/Octave: save('-v7', ...)).

Class names
  One name per ground-truth code, in code order 1..C, separated by ';'; synonyms of one
  class separated by ',' (the best-matching synonym counts), e.g.
  --classes "water; trees; meadows; self-blocking bricks; bare soil; asphalt; bitumen;
  tile; shadows" for Pavia Centre. The truth may use fewer codes than names, never more.

Wavelengths
  Stage I renders the cube as pseudo-RGB at {targets} nm, so it needs the band centres:
  from the raster's metadata (ENVI 'wavelength = {{...}}', GDAL band metadata), or
  --wavelengths (nm, comma-separated, one per band; or FIRST:LAST for evenly spaced
  centres, e.g. 430:860), or a --sensor preset. Bands listed out of wavelength order
  (AVIRIS' overlapping spectrometers) are sorted in the converted GeoTIFF.

Weights
  --pretrained is an open_clip tag (downloaded once and cached; needs a network) or a local
  checkpoint file (.pt, .bin, .safetensors) of the --model architecture. The paper's
  reference code uses OpenAI's ViT-B/16: --model ViT-B-16 --pretrained openai, or with
  OpenAI's own ViT-B-16.pt file --model ViT-B-16-quickgelu --pretrained /path/ViT-B-16.pt.
  Other architectures: SPECIAL_QGIS_MODEL_CONFIGS=/folder/of/open_clip/configs. Which
  weights a file holds cannot be checked: the header prints what was used. Random or
  wrong weights give meaningless numbers.
"""

EPILOG = """\
sensor presets:
{sensors}

output:
  The table on standard output, progress on standard error (--quiet: none). --workdir
  keeps the converted cube (cube.tif) and every map: clip_scale1_labels.tif,
  clip_rs_labels.tif, special_labels.tif and their *_confidence.tif. Without --workdir
  they go to a temporary folder that is deleted at the end. --json writes the same table
  (OA, AA, kappa and per-class accuracy in percent, seconds per stage, the settings and
  the machine) as JSON. Stage times are wall times; the model is loaded before stage I
  (timed apart), and the class names' text embeddings are computed in the first stage I
  run and reused by the second.

exit status:
  0 all three rows scored; 1 stage II refused the pseudo-labels (e.g. CLIP named only
  one class; the stage I rows are still printed); 2 a mistake in the inputs or options
  (message, no traceback); 130 interrupted.

example (Pavia Centre, weights downloaded once by open_clip):
  .venv/bin/python bench/reproduce.py --cube Pavia.mat --truth Pavia_gt.mat \\
      --sensor rosis-pavia-centre --model ViT-B-16 --pretrained openai \\
      --classes "water; trees; meadows; self-blocking bricks; bare soil; asphalt;
                 bitumen; tile; shadows" \\
      --json paviac.json
"""



# The pipeline's options, by --help group: (algorithm of the spec, its parameters).
PIPELINE_OPTIONS = (
    ("stage I (CLIP pseudo-labels)", "pseudolabel",
     ("MODEL", "PRETRAINED", "SCALES", "WINDOW", "STRIDE", "TARGET_WAVELENGTHS")),
    ("stage II (noise-robust network)", "noiserobust", tuple(SCHEDULE_FIELDS)),
    ("run", "noiserobust", ("DEVICE",)),
)
# Older spellings, still accepted.
ALIASES = {"TARGET_WAVELENGTHS": ("--targets",)}
_TYPES = {"int": int, "float": float, "string": str, "enum": str}
_METAVARS = {"int": "N", "float": "X", "string": "TEXT", "enum": None}
_DEFAULT = " (default %(default)s)"


def option(name: str) -> str:
    """SAMPLES_PER_CLASS → --samples-per-class."""
    return "--" + name.lower().replace("_", "-")


def dest(name: str) -> str:
    """Where a parameter's value goes in the parsed arguments: the Schedule field it sets
    (core.spec.shared.SCHEDULE_FIELDS), else its name in lower case."""
    return SCHEDULE_FIELDS.get(name, name.lower())


def spec_options() -> list:
    """(--help group, the spec's Param) of every pipeline option, in --help order."""
    return [(group, spec(alg_id).param(name))
            for group, alg_id, names in PIPELINE_OPTIONS for name in names]


class _Given(argparse.Action):
    """Stores the value, and its dest in ``given``: the warm-up's default depends on whether
    --epochs was given (see :func:`make_schedule`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = namespace.given | {self.dest}


def _help(param: Param, notes: dict) -> str:
    # A sentence about the plugin's settings does not apply on the command line.
    sentences = [s for s in re.split(r"(?<=\.) ", param.help) if "plugin setting" not in s]
    text = f"{param.label}. " + " ".join(sentences).replace("%", "%%").rstrip(".")
    if param.name in notes:
        text += "; " + notes[param.name]
    return text + _DEFAULT


def add_spec_options(parser: argparse.ArgumentParser) -> dict:
    """The pipeline's options, from the spec (see the module's docstring). Returns the
    argument groups by title."""
    epochs = spec("noiserobust").param("EPOCHS").default
    warmup = spec("noiserobust").param("WARMUP_EPOCHS").default
    notes = {
        "SCALES": "row 2 (RS) only, row 1 always runs at scale 1",
        "WARMUP_EPOCHS": f"with another --epochs and no --warmup-epochs, the same share of "
                         f"--epochs ({warmup} of {epochs})",
    }
    groups = {}
    for group, param in spec_options():
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        groups[group].add_argument(
            option(param.name), *ALIASES.get(param.name, ()), dest=dest(param.name),
            action=_Given, type=_TYPES[param.kind], default=param.default,
            choices=param.options or None, metavar=_METAVARS[param.kind],
            help=_help(param, notes))
    parser.set_defaults(given=frozenset())
    return groups


def make_schedule(args) -> noiserobust.Schedule:
    """Stage II's schedule from the parsed options. Without --warmup-epochs, the warm-up is
    the defaults' share of --epochs (WARMUP_EPOCHS' default over EPOCHS')."""
    values = {field: getattr(args, field) for field in SCHEDULE_FIELDS.values()}
    epochs, warmup = SCHEDULE_FIELDS["EPOCHS"], SCHEDULE_FIELDS["WARMUP_EPOCHS"]
    if epochs in args.given and warmup not in args.given:
        default = noiserobust.Schedule()
        values[warmup] = values[epochs] * default.warmup_epochs // default.epochs
    return noiserobust.Schedule(**values).validate()


def build_parser() -> argparse.ArgumentParser:
    stage_i = spec("pseudolabel")
    texts = {"scales": stage_i.param("SCALES").default,
             "targets": stage_i.param("TARGET_WAVELENGTHS").default.replace(",", "/")}
    sensors = "\n".join(textwrap.fill(f"{name}: {s.description}", 88, initial_indent="  ",
                                       subsequent_indent="    ")
                         for name, s in SENSORS.items())
    p = argparse.ArgumentParser(
        prog="reproduce.py", description=DESCRIPTION.format(**texts),
        epilog=EPILOG.format(sensors=sensors),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("scene")
    g.add_argument("--cube", required=True, metavar="PATH",
                   help="hyperspectral cube: .mat, ENVI (.img/.hdr), GeoTIFF, ...")
    g.add_argument("--cube-key", metavar="NAME",
                   help="variable name in a .mat cube (default: its only 3-D array)")
    g.add_argument("--truth", required=True, metavar="PATH",
                   help="ground truth: .mat or one-band raster, codes 1..C, 0 = unlabelled")
    g.add_argument("--truth-key", metavar="NAME",
                   help="variable name in a .mat truth (default: its only 2-D array)")
    names = g.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", metavar="TEXT",
                       help="class names in truth-code order 1..C, ';'-separated, synonyms "
                            "','-separated")
    names.add_argument("--classes-file", metavar="PATH",
                       help="instead of --classes: a UTF-8 file, one class per line "
                            "(synonyms ','-separated), '#' comments")
    wl = g.add_mutually_exclusive_group()
    wl.add_argument("--wavelengths", metavar="NM",
                    help="band centres in nm: one per band, comma-separated, or FIRST:LAST "
                         "for evenly spaced centres (e.g. 430:860); overrides metadata")
    wl.add_argument("--sensor", choices=sorted(SENSORS),
                    help="band centres of a benchmark's sensor (see 'sensor presets' below)")
    groups = add_spec_options(p)
    g = groups["run"]
    g.add_argument("--workdir", metavar="DIR",
                   help="folder for the converted cube and the maps, kept (created if "
                        "missing; default: a temporary folder, deleted at the end)")
    g.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    g.add_argument("--quiet", action="store_true", help="no progress output")
    return p
