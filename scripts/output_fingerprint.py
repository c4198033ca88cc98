#!/usr/bin/env python3
"""Fingerprints of every output of the pipeline on a fixed generated scene, to show that a
refactoring changed no output: run it before and after and compare the JSON files.

  .venv/bin/python scripts/output_fingerprint.py out.json [--work DIR]
  .venv/bin/python scripts/output_fingerprint.py after.json --compare before.json

The scene comes from bench/scenes.py (seed 7, 96 × 96 pixels), the CLIP model is a tiny
open_clip ViT with random weights (seeded; mechanics only, never a result), stage II runs a
short schedule on the CPU with SEED 3. Each raster is fingerprinted by the SHA-256 of its
pixels, its grid and its category names; the accuracy report by its numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                   "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}
SHORT = dict(epochs=3, warmup_epochs=1, iterations=4, samples_per_class=64, seed=3)


def _raster(path: str) -> dict:
    import rasterio

    from special_qgis.core.classes import read_class_metadata

    with rasterio.open(path) as ds:
        data = ds.read()
        names = read_class_metadata(path)[0] if ds.dtypes[0].startswith("uint") else []
        return {"sha256": hashlib.sha256(data.tobytes()).hexdigest(), "dtype": ds.dtypes[0],
                "shape": list(data.shape), "crs": str(ds.crs), "transform": list(ds.transform),
                "nodata": None if ds.nodata is None else repr(ds.nodata), "names": names}


def fingerprint(work: str) -> dict:
    import open_clip
    import torch
    from scenes import make_scene, write_scene

    from special_qgis.core import accuracy, noiserobust, pseudolabel
    from special_qgis.core.pseudo_rgb import write_pseudo_rgb

    configs = os.path.join(work, "configs")
    os.makedirs(configs, exist_ok=True)
    with open(os.path.join(configs, "fingerprint-tiny.json"), "w") as fh:
        json.dump(TINY, fh)
    os.environ["SPECIAL_QGIS_MODEL_CONFIGS"] = configs
    open_clip.add_model_config(configs)
    torch.manual_seed(0)
    checkpoint = os.path.join(work, "tiny.pt")
    torch.save(open_clip.create_model("fingerprint-tiny").state_dict(), checkpoint)

    scene = make_scene(7, 96, 96, n_classes=4)
    files = {k: str(v) for k, v in write_scene(scene, os.path.join(work, "scene")).items()}
    cube, truth = files["cube"], files["truth"]
    out = {name: os.path.join(work, f"{name}.tif") for name in
           ("rgb", "labels", "confidence", "probabilities", "classes", "classes_conf",
            "applied", "applied_conf")}
    write_pseudo_rgb(cube, out["rgb"])
    pseudolabel.run(cube, [[n] for n in scene.class_names], out["labels"], out["confidence"],
                    out["probabilities"], model_name="fingerprint-tiny", pretrained=checkpoint,
                    device="cpu", window=32, stride=16)
    model = os.path.join(work, "model.pt")
    noiserobust.run(noiserobust.Inputs(cube, out["labels"], out["confidence"]),
                    out["classes"], out["classes_conf"], model,
                    noiserobust.Schedule(**SHORT), "cpu")
    noiserobust.apply_model(cube, model, out["applied"], out["applied_conf"], "cpu")
    result = accuracy.run(out["classes"], truth, reference_kind="raster")
    prints = {name: _raster(path) for name, path in out.items()}
    prints["accuracy"] = {"oa": round(float(result.accuracy.overall), 12),
                          "confusion": result.accuracy.confusion.astype(int).tolist()}
    return prints


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output")
    parser.add_argument("--work", help="folder for the scene and outputs (default: temporary)")
    parser.add_argument("--compare", help="an earlier fingerprint file: exit 1 if they differ")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        prints = fingerprint(args.work or scratch)
    with open(args.output, "w") as fh:
        json.dump(prints, fh, indent=1, sort_keys=True)
    if args.compare:
        with open(args.compare) as fh:
            before = json.load(fh)
        differ = sorted(k for k in set(before) | set(prints) if before.get(k) != prints.get(k))
        print("identical" if not differ else "DIFFERENT: " + ", ".join(differ))
        return 1 if differ else 0
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
