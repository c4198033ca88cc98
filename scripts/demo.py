#!/usr/bin/env python3
"""make demo: the whole SPECIAL job on a small generated scene, the way a user runs it.

1. Generates a 256 × 256 hyperspectral scene (196 AVIRIS bands of Indian Pines, pixels
   mixed from real earthlib spectra of 6 land-cover classes, with known truth) in demo/.
2. Renders its pseudo-RGB with special:pseudorgb.
3. Finds CLIP weights: CHECKPOINT (a local file) if given, else the default weights tag
   (ViT-B-16 'openai'), from the cache folder or downloaded once when online.
4. Runs special:classify (stage I + stage II) and special:accuracy against the truth, all
   through scripts/qgis_process, printing each command first.
5. Writes demo/overview.png: pseudo-RGB | CLIP pseudo-labels | final map | truth.

Offline without weights it stops after step 2 and says what is missing and how to supply
it. The scene is synthetic: numbers measured on it are not a benchmark result.

  make demo                          # default weights (cached or downloaded)
  make demo CHECKPOINT=ViT-B-16.pt   # a local checkpoint (MODEL=ViT-B-32 for another)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
QGIS_PROCESS = os.path.join(REPO, "scripts", "qgis_process")
N_CLASSES = 6


def _qgis_process(*args: str) -> None:
    print("$ scripts/qgis_process " + " ".join(shlex.quote(a) for a in args), flush=True)
    done = subprocess.run([QGIS_PROCESS, *args], text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    # qgis_process's own chatter (plugin loading) is noise here; the log lines are not.
    for line in done.stdout.splitlines():
        if line.strip() and "setapi() is deprecated" not in line:
            print("  " + line)
    if done.returncode:
        raise SystemExit(f"demo: the command above failed (exit code {done.returncode}).")


def _scene(folder: str, size: int, seed: int) -> tuple[dict, list]:
    """The scene's files and its class names, in the truth's code order."""
    from scenes import make_scene, write_scene

    scene = make_scene(seed, size, size, n_classes=N_CLASSES)
    return {k: str(v) for k, v in write_scene(scene, folder).items()}, scene.class_names


def _stretch(rgb: np.ndarray) -> np.ndarray:
    """2–98 % stretch per band to 8 bits, as QGIS shows a raster by default."""
    out = np.zeros(rgb.shape, np.uint8)
    for i, band in enumerate(rgb):
        valid = np.isfinite(band)
        if valid.any():
            lo, hi = np.percentile(band[valid], (2, 98))
            scaled = np.clip((band - lo) / max(hi - lo, 1e-12), 0, 1) * 255
            out[i] = np.where(valid, scaled, 0).astype(np.uint8)
    return out


def _paint(labels: np.ndarray, n_classes: int) -> np.ndarray:
    from special_qgis.core.classes import colours

    palette = np.array([(0, 0, 0)] + list(colours(n_classes)), np.uint8)
    return palette[np.clip(labels, 0, n_classes)].transpose(2, 0, 1)


def _overview(path: str, rgb: str, panels: list[str], n_classes: int) -> None:
    import warnings

    import rasterio

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    with rasterio.open(rgb) as ds:
        images = [_stretch(ds.read())]
    for panel in panels:
        with rasterio.open(panel) as ds:
            images.append(_paint(ds.read(1), n_classes))
    gap = np.full((3, images[0].shape[1], 8), 255, np.uint8)
    row = np.concatenate([x for img in images for x in (img, gap)][:-1], axis=2)
    with rasterio.open(path, "w", driver="PNG", width=row.shape[2], height=row.shape[1],
                       count=3, dtype="uint8") as dst:
        dst.write(row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "demo"), help="output folder")
    parser.add_argument("--checkpoint", default="",
                        help="a local CLIP checkpoint file (.pt, .bin, .safetensors)")
    parser.add_argument("--model", default="", help="open_clip model (default ViT-B-16)")
    parser.add_argument("--pretrained", default="",
                        help="open_clip weights tag when no checkpoint is given (default "
                             "openai)")
    parser.add_argument("--size", type=int, default=256, help="scene size in pixels")
    parser.add_argument("--seed", type=int, default=1, help="scene seed")
    parser.add_argument("--epochs", type=int, default=20, help="stage II epochs")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--window", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stride", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from special_qgis.core import clip_backbone
    from special_qgis.core.errors import UserInputError
    from special_qgis.core.progress import Progress

    model = args.model or clip_backbone.DEFAULT_MODEL
    pretrained = args.checkpoint or args.pretrained or clip_backbone.DEFAULT_PRETRAINED
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    print(f"[1/5] generating a {args.size} × {args.size} × 196 scene with known truth "
          f"in {out}/scene (synthetic: real spectra, simulated layout)", flush=True)
    scene, names = _scene(os.path.join(out, "scene"), args.size, args.seed)
    rgb = os.path.join(out, "pseudo_rgb.tif")
    print("[2/5] pseudo-RGB", flush=True)
    _qgis_process("run", "special:pseudorgb", "--", f"INPUT={scene['cube']}", f"OUTPUT={rgb}")

    print(f"[3/5] CLIP weights: {model} '{pretrained}'", flush=True)
    try:
        clip_backbone.resolve_weights(model, pretrained, os.environ.get(
            clip_backbone.ENV_CACHE_DIR) or None, Progress(
            lambda f, t: print(f"  {t} {100 * f:.0f} %", end="\r", flush=True)))
    except UserInputError as exc:
        _overview(os.path.join(out, "overview.png"), rgb, [scene["truth"]], N_CLASSES)
        print(f"\nThe demo cannot classify: no CLIP weights.\n  {exc}\n\nWhat was made: the "
              f"scene ({scene['cube']}), its pseudo-RGB ({rgb}) and {out}/overview.png "
              f"(pseudo-RGB | truth).\nTo run the whole job, give a checkpoint file:\n"
              f"  make demo CHECKPOINT=/path/to/open_clip_ViT-B-16.bin   (MODEL=... for "
              f"another architecture)\nor connect to the internet once so the default "
              f"weights ({model} '{pretrained}', about 600 MB) are downloaded and cached.")
        return 0

    print("[4/5] special:classify (stage I: CLIP pseudo-labels; stage II: noise-robust "
          "network)", flush=True)
    outputs = {k: os.path.join(out, f"{k}.tif") for k in ("classes", "confidence",
                                                           "pseudo_labels")}
    extra = [f"{k}={v}" for k, v in (("WINDOW", args.window), ("STRIDE", args.stride),
                                     ("ITERATIONS", args.iterations)) if v]
    _qgis_process("run", "special:classify", "--", f"INPUT={scene['cube']}",
                  f"CLASSES={'; '.join(names)}", f"MODEL={model}", f"PRETRAINED={pretrained}",
                  f"EPOCHS={args.epochs}", f"WARMUP_EPOCHS={args.epochs // 2}",
                  f"DEVICE={args.device}", *extra, f"OUTPUT={outputs['classes']}",
                  f"OUTPUT_CONFIDENCE={outputs['confidence']}",
                  f"OUTPUT_PSEUDO_LABELS={outputs['pseudo_labels']}")

    print("[5/5] special:accuracy against the truth", flush=True)
    table = {}
    for key, title in (("pseudo_labels", "CLIP pseudo-labels (stage I)"),
                       ("classes", "SPECIAL map (stage II)")):
        report = os.path.join(out, f"accuracy_{key}")
        _qgis_process("run", "special:accuracy", "--", f"INPUT={outputs[key]}",
                      f"REFERENCE={scene['truth']}", f"OUTPUT_HTML={report}.html",
                      f"OUTPUT_JSON={report}.json")
        with open(f"{report}.json") as fh:
            table[title] = json.load(fh)
    _overview(os.path.join(out, "overview.png"), rgb,
              [outputs["pseudo_labels"], outputs["classes"], scene["truth"]], N_CLASSES)
    print(f"\n{'':32s}{'OA %':>7s}{'AA %':>7s}{'κ':>8s}")
    for title, numbers in table.items():
        print(f"{title:32s}{100 * numbers['OA']:7.1f}{100 * numbers['AA']:7.1f}"
              f"{numbers['KAPPA']:8.3f}")
    print(f"\nOutputs in {out}: classes.tif, confidence.tif, pseudo_labels.tif, pseudo_rgb.tif, "
          f"accuracy_*.html, overview.png (pseudo-RGB | pseudo-labels | map | truth).\n"
          f"Open them in QGIS: scripts/qgis {out}/pseudo_rgb.tif {out}/classes.tif\n"
          f"(The scene is synthetic; unsuitable or random weights give meaningless maps.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
