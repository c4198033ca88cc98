#!/usr/bin/env python3
"""Benchmark stage I (special:pseudolabel's core): speed against the machine's own
matrix-multiply rate, and peak memory against scene size.

The CLIP model is the real ViT-B-16 architecture with random weights, saved as a
checkpoint and loaded through PRETRAINED=<file>, the users' path (no weights can be
downloaded here). Random weights cost exactly the same FLOPs as trained ones; the maps
they give are meaningless and are not looked at.

  .venv/bin/python bench/bench_stage1.py [--device cpu|cuda] [--sizes 512,2048]

Reports, per scene: windows, seconds, windows/s, megapixels/min, achieved GFLOP/s
(a multiply-add = 2 FLOPs, counted from the model's dimensions: ~35 GFLOPs per 224²
window for ViT-B/16) as a share of the measured float32 matmul rate (a 4096² torch.matmul
with the same threads; on CUDA also the bf16/fp16 rate autocast runs at), and peak memory.
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

CLASSES = "water;trees,forest;meadows;roofs;asphalt,road;bare soil"


def peak_rss_mib() -> float:
    """This process's own peak resident size (VmHWM). Not getrusage's ru_maxrss: that one
    survives fork and exec, so a child would report its parent's peak when it is higher."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def vit_flops_per_window(model, window: int) -> float:
    """FLOPs of one ViT forward at window², from the model's dimensions."""
    visual = model.visual
    patch = visual.patch_size[0]
    width = visual.conv1.out_channels
    layers = len(visual.transformer.resblocks)
    tokens = (-(-window // patch)) ** 2 + 1
    mlp = visual.transformer.resblocks[0].mlp.c_fc.out_features
    per_layer = 2 * tokens * (4 * width * width + 2 * width * mlp) + 4 * tokens * tokens * width
    embed = 2 * (tokens - 1) * width * 3 * patch * patch
    return layers * per_layer + embed


def matmul_rate(device: str, dtype) -> float:
    import torch

    n = 4096 if device == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    reps = 5 if device == "cpu" else 50
    if device != "cpu":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        torch.matmul(a, b)
    if device != "cpu":
        torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def model_only_rate(device: str, checkpoint: str, batch: int, seconds: float = 10.0) -> float:
    """Windows/s of the dense forward alone (window_logits on random windows)."""
    import torch

    from special_qgis.core import clip_backbone, dense_clip

    backbone = clip_backbone.load("ViT-B-16", checkpoint, device)
    clf = dense_clip.TextClassifier(backbone.model, backbone.tokenizer,
                                    [c.split(",") for c in CLASSES.split(";")],
                                    backbone.device, prompt_templates=[lambda c: c])
    x = torch.randn(batch, 3, 224, 224, device=backbone.device)
    cuda = backbone.device.type == "cuda"
    half = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16

    def step():
        with torch.inference_mode(), torch.autocast("cuda", dtype=half, enabled=cuda):
            dense_clip.window_logits(backbone.model.visual, clf, x, 16)

    step()
    count, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        step()
        count += batch
        if cuda:
            torch.cuda.synchronize()
    return count / (time.perf_counter() - t)


def write_scene(path: str, size: int, bands: int = 64) -> None:
    """A smooth synthetic cube with wavelengths, written block by block."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    wl = np.linspace(420, 2400, bands)
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype="int16",
                   crs="EPSG:32633", transform=from_origin(500000, 4100000, 2, 2),
                   tiled=True, blockxsize=256, blockysize=256, interleave="band")
    fields = rng.uniform(500, 4000, size=(bands, 8, 8))
    with rasterio.open(path, "w", **profile) as dst:
        for b in range(bands):
            dst.update_tags(b + 1, wavelength=f"{wl[b]:.1f}", wavelength_units="nm")
        step = 512
        for y in range(0, size, step):
            rows = np.arange(y, min(y + step, size))
            yy = (rows[:, None] * 8 // size)
            xx = (np.arange(size)[None, :] * 8 // size)
            block = fields[:, yy, xx] + rng.normal(0, 50, size=(bands, len(rows), size))
            dst.write(block.astype("int16"), window=((y, y + len(rows)), (0, size)))


def child(args) -> None:
    import torch

    from special_qgis.core import classes as classes_mod
    from special_qgis.core import clip_backbone, pseudolabel

    try:
        import osgeo.gdal  # noqa: F401
    except ImportError:  # a GPU box without GDAL's Python bindings: skip only the legend
        classes_mod.write_class_metadata = lambda *a, **k: None
    classes = [c.split(",") for c in CLASSES.split(";")]
    # Load the model and encode the class names first (both are cached per process), so
    # the timed run is the dense segmentation itself.
    t = time.perf_counter()
    backbone = clip_backbone.load("ViT-B-16", args.checkpoint, args.device)
    pseudolabel.DenseSegmenter(backbone, classes, pseudolabel.StageIOptions())
    setup = time.perf_counter() - t
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    result = pseudolabel.run(
        args.scene, classes, os.path.join(args.workdir, "labels.tif"),
        os.path.join(args.workdir, "conf.tif"), args.probabilities, model_name="ViT-B-16",
        pretrained=args.checkpoint, device=args.device, scales=args.scales)
    out = {"windows": result.windows, "setup_s": setup, "seconds": time.perf_counter() - t,
           "peak_rss_mb": peak_rss_mib()}
    if args.device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="512,2048")
    parser.add_argument("--scales", default="1,2")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--probabilities", help=argparse.SUPPRESS)
    parser.add_argument("--compare-cpu", action="store_true",
                        help="on CUDA: also run the first scene on the CPU in float32 and "
                             "compare the class probabilities and labels")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        child(args)
        return 0

    import open_clip
    import torch

    threads = torch.get_num_threads()
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, {threads} threads, "
          f"device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))
    rate32 = matmul_rate(args.device, torch.float32)
    print(f"float32 matmul: {rate32:.0f} GFLOP/s")
    rate = rate32
    if args.device == "cuda":
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        rate = matmul_rate(args.device, half)
        print(f"{str(half).split('.')[-1]} matmul (what autocast runs at): {rate:.0f} GFLOP/s")

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-16")
        flops = vit_flops_per_window(model, 224)
        checkpoint = os.path.join(tmp, "vit-b-16-random.pt")
        torch.save(model.state_dict(), checkpoint)
        del model
        print(f"ViT-B-16 at 224²: {flops / 1e9:.1f} GFLOPs per window; scales {args.scales}")
        batch = 64 if args.device == "cuda" else 4
        wps = model_only_rate(args.device, checkpoint, batch)
        print(f"dense forward alone (batch {batch}): {wps:.1f} windows/s = "
              f"{wps * flops / 1e9:.0f} GFLOP/s = {wps * flops / 1e9 / rate:.0%} of matmul")
        print(f"{'scene':>10} {'windows':>8} {'s':>7} {'win/s':>7} {'MP/min':>7} "
              f"{'GFLOP/s':>8} {'of matmul':>9} {'peak RSS MB':>11}"
              + (f" {'peak GPU MB':>11}" if args.device == "cuda" else ""))
        for size in (int(s) for s in args.sizes.split(",")):
            scene = os.path.join(tmp, f"scene{size}.tif")
            write_scene(scene, size)
            r = run_child(scene, checkpoint, args.device, args.scales, tmp,
                          os.path.join(tmp, f"probs-{args.device}.tif"))
            achieved = r["windows"] * flops / r["seconds"] / 1e9
            mp_min = size * size / 1e6 / r["seconds"] * 60
            print(f"{size:>5}²{'':>4} {r['windows']:>8} {r['seconds']:7.1f} "
                  f"{r['windows'] / r['seconds']:7.2f} {mp_min:7.2f} "
                  f"{achieved:8.0f} {achieved / rate:9.0%} {r['peak_rss_mb']:11.0f}"
                  + (f" {r['peak_gpu_mb']:11.0f}" if args.device == "cuda" else ""))
            if args.compare_cpu and args.device == "cuda":
                run_child(scene, checkpoint, "cpu", args.scales, tmp,
                          os.path.join(tmp, "probs-cpu.tif"))
                compare(os.path.join(tmp, "probs-cuda.tif"),
                        os.path.join(tmp, "probs-cpu.tif"))
                args.compare_cpu = False
            os.remove(scene)
    return 0


def run_child(scene, checkpoint, device, scales, workdir, probabilities) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--child", "--scene", scene, "--checkpoint", checkpoint,
         "--device", device, "--scales", scales, "--workdir", workdir,
         "--probabilities", probabilities], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare(gpu_path: str, cpu_path: str) -> None:
    import rasterio

    with rasterio.open(gpu_path) as a, rasterio.open(cpu_path) as b:
        pa, pb = a.read(), b.read()
    rel = np.linalg.norm(pa - pb) / np.linalg.norm(pb)
    agree = (pa.argmax(0) == pb.argmax(0)).mean()
    print(f"  GPU (autocast) vs CPU float32 probabilities: relative error {rel:.2e}, max "
          f"abs diff {np.abs(pa - pb).max():.3f}, labels agree on {agree:.2%} of pixels")


if __name__ == "__main__":
    sys.exit(main())
