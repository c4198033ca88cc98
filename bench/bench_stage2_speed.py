#!/usr/bin/env python3
"""Benchmark stage II (special:noiserobust / special:applymodel's core): seconds per
epoch on a 512×512×200 scene, and peak memory of training and of prediction on a
2048×2048×200 scene (target: under 4 GB).

  .venv/bin/python bench/bench_stage2_speed.py [--sizes 512,2048] [--device cpu]

Each measurement runs in its own process and reports that process's own peak resident
size (VmHWM). The scene is int16 (as AVIRIS delivers reflectance), 200 bands, written by
bench_stage1's generator; the labels are its fields and the confidence is random.
Timing needs no meaningful labels: the work per iteration does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_stage1 import peak_rss_mib, write_scene  # noqa: E402

BANDS = 200


def write_labels(folder: str, size: int) -> tuple[str, str]:
    """Labels 1..6 by field (bench_stage1's 8 × 8 fields) and a random confidence."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(1)
    profile = dict(driver="GTiff", width=size, height=size, count=1, crs="EPSG:32633",
                   transform=from_origin(500000, 4100000, 2, 2), tiled=True,
                   blockxsize=256, blockysize=256)
    labels, conf = os.path.join(folder, "labels.tif"), os.path.join(folder, "conf.tif")
    with rasterio.open(labels, "w", dtype="uint8", nodata=0, **profile) as dl, \
            rasterio.open(conf, "w", dtype="float32", **profile) as dc:
        for y in range(0, size, 512):
            rows = np.arange(y, min(y + 512, size))
            field = (rows[:, None] * 8 // size) * 8 + np.arange(size)[None, :] * 8 // size
            window = ((y, y + len(rows)), (0, size))
            dl.write((field % 6 + 1)[None].astype("uint8"), window=window)
            dc.write(rng.uniform(0, 1, (1, len(rows), size)).astype("float32"), window=window)
    return labels, conf


def child(args) -> None:
    from special_qgis.core import noiserobust

    out = {}
    t0 = time.perf_counter()
    if args.mode == "apply":
        noiserobust.apply_model(args.scene, args.model, os.path.join(args.workdir, "a.tif"),
                                os.path.join(args.workdir, "ac.tif"), args.device)
        out["seconds"] = time.perf_counter() - t0
    else:
        stamps = []
        schedule = noiserobust.Schedule(epochs=args.epochs, warmup_epochs=1,
                                        iterations=args.iterations)
        noiserobust.run(noiserobust.Inputs(args.scene, args.labels, args.conf),
                        os.path.join(args.workdir, "o.tif"),
                        os.path.join(args.workdir, "oc.tif"), args.model, schedule,
                        args.device,
                        on_epoch=lambda e, _: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        out.update(seconds=total, epoch_ends=[s - t0 for s in stamps],
                   predict_s=total - (stamps[-1] - t0))
    out["peak_rss_mb"] = peak_rss_mib()
    print(json.dumps(out))


def run_child(**kwargs) -> dict:
    argv = [sys.executable, __file__, "--child"]
    for key, value in kwargs.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,2048")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("mode", "scene", "labels", "conf", "model", "workdir"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    import torch

    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, device {args.device}")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            scene = os.path.join(tmp, "scene.tif")
            t = time.perf_counter()
            write_scene(scene, size, BANDS)
            labels, conf = write_labels(tmp, size)
            print(f"{size}² × {BANDS}: scene written in {time.perf_counter() - t:.0f} s "
                  f"({os.path.getsize(scene) / 2 ** 30:.2f} GiB int16)", flush=True)
            model = os.path.join(tmp, "model.pt")
            # Epoch 1 is warm-up (random set only); later epochs add the refresh of the
            # confident and hard sets (a prediction over the training cache, GMMs).
            train = run_child(mode="train", scene=scene, labels=labels, conf=conf,
                              model=model, workdir=tmp, device=args.device, epochs=3,
                              iterations=20)
            ends = [0.0] + train["epoch_ends"]
            warm = ends[1] - ends[0]
            robust = (ends[-1] - ends[1]) / (len(ends) - 2)
            print(f"  train (3 epochs × 20 iterations) + predict: {train['seconds']:.0f} s; "
                  f"warm-up epoch {warm:.1f} s (incl. reading the scene), later epochs "
                  f"{robust:.1f} s each; spectral prior + prediction "
                  f"{train['predict_s']:.1f} s; peak {train['peak_rss_mb']:.0f} MiB", flush=True)
            applied = run_child(mode="apply", scene=scene, model=model, workdir=tmp,
                                device=args.device)
            print(f"  applymodel: {applied['seconds']:.1f} s "
                  f"({size * size / applied['seconds'] / 1e6:.2f} Mpx/s), peak "
                  f"{applied['peak_rss_mb']:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
