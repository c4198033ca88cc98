#!/usr/bin/env python3
"""Benchmark special:classify's core (special_qgis.core.pipeline.classify, the whole
pipeline) on a generated PRODUCT-SIZED scene of each supported product layout: seconds per
stage and the peak memory (resident set size) of the process that ran it. Target: under
4 GB (4096 MiB) peak on a full EnMAP-sized scene (~1000 × 1000 × 224).

  .venv/bin/python bench/bench_products.py [--products enmap,desis,prisma,emit,aviris]
      [--scale 1.0] [--epochs N --warmup N --iterations N] [--device cpu|cuda|auto]
      [--no-rgb] [--json bench/products.json] [--workdir DIR] [--force]

Scenes at --scale 1.0 (rows and columns are multiplied by --scale; bands are not):
EnMAP L2A 1000 × 1000, 91 VNIR + 133 SWIR bands (GeoTIFF, detector order); DESIS L2A
1024 × 1024 × 235; PRISMA L2D 1000 × 1000, 66 VNIR + 173 SWIR slots (HDF-EOS5); EMIT L2A
1280 downtrack × 1242 crosstrack × 285 bands (netCDF; the pipeline works on its ortho
grid, which is larger); AVIRIS-NG 1000 × 600 × 425 (ENVI BIL float32). They are written
by the miniature-product generators of tests/products.py, in each product's own layout.

Each product's scene is generated in one subprocess; classify then runs in a FRESH
subprocess, so its peak resident size (VmHWM) measures the pipeline alone. The CLIP model
is ViT-B-16 with random weights, saved as a checkpoint and loaded through
PRETRAINED=<file> with HF_HUB_OFFLINE=1: the same work as real weights, but the maps are
meaningless and are not looked at. Stage II runs the default schedule
(noiserobust.Schedule()) unless --epochs/--warmup/--iterations say otherwise.

Stages, timed from the pipeline's progress texts: "read" (opening INPUT and finding the
bands without data), "RGB" (the pseudo-RGB, OUTPUT_RGB; --no-rgb leaves it out, as the
algorithm's default does), "stage I" (loading CLIP and labelling every window at scales
1 and 2), "II train" (reading the training data and training) and "II predict" (the
spectral prior, prediction of every tile and writing the outputs).

The generators hold whole cubes (the expected values the tests compare with): several
GiB per full-size scene, about 9 GiB for EMIT, whose float32 expected cube is on its
larger ortho grid. A product whose generator would not fit in the available memory is
skipped (--force tries anyway); --scale lowers it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_classify import CLASSES  # noqa: E402
from bench_stage1 import peak_rss_mib  # noqa: E402

LIMIT_MIB = 4096  # "under 4 GB"
# name: (label, {size parameter of the generator: size at scale 1.0})
PRODUCTS = {
    "enmap": ("EnMAP L2A (GeoTIFF, detector order)", {"rows": 1000, "cols": 1000}),
    "desis": ("DESIS L2A (GeoTIFF, BIP, LZW)", {"rows": 1024, "cols": 1024}),
    "prisma": ("PRISMA L2D (HDF-EOS5)", {"rows": 1000, "cols": 1000}),
    "emit": ("EMIT L2A (netCDF, GLT ortho grid)", {"downtrack": 1280, "crosstrack": 1242}),
    "aviris": ("AVIRIS-NG (ENVI BIL float32)", {"rows": 1000, "cols": 600}),
}
BANDS = {"enmap": 91 + 133, "desis": 235, "prisma": 66 + 173, "emit": 285, "aviris": 425}
STAGES = [("read", "read"), ("rgb", "RGB"), ("stage1", "stage I"), ("train", "II train"),
          ("predict", "II predict")]


# ---------------------------------------------------------------- child: generate a scene

def source_sizes(product: str, scale: float) -> dict:
    return {k: max(32, round(v * scale)) for k, v in PRODUCTS[product][1].items()}


def generator_gib(product: str, scale: float) -> float:
    """Rough peak memory of the tests/products.py generator (not of the pipeline): they
    build the whole cube in float64 (_reflectance, then the expected ``cube``), several
    copies at once. EMIT's also holds its float32 expected cube on the larger ortho grid
    and the gathered source pixels, about 9 GiB at full size."""
    import math

    sizes = source_sizes(product, scale)
    pixels = math.prod(sizes.values())
    cube = pixels * BANDS[product] * 8 / 2 ** 30
    if product != "emit":
        return {"enmap": 3.3, "desis": 3.3, "prisma": 2.5, "aviris": 2.5}[product] * cube
    a = math.radians(25.0)   # write_emit_l2a's default angle and 1.15 ortho cells per pixel
    dt, ct = sizes["downtrack"], sizes["crosstrack"]
    ortho = ((dt * math.cos(a) + ct * math.sin(a)) * 1.15 + 2) * (
        (ct * math.cos(a) + dt * math.sin(a)) * 1.15 + 2)
    return 2.0 * cube + 1.6 * ortho * BANDS[product] * 4 / 2 ** 30


def mem_available_gib():
    try:
        with open("/proc/meminfo") as fh:
            return next(int(line.split()[1]) / 2 ** 20 for line in fh
                        if line.startswith("MemAvailable"))
    except (OSError, StopIteration):
        return None


def generate(product: str, scale: float, folder: str) -> dict:
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import products as gen

    sizes = source_sizes(product, scale)
    t = time.perf_counter()
    if product == "enmap":
        ns = gen.write_enmap_l2a(folder, order="detector", fmt="GTiff", n_vnir=91, n_swir=133,
                                 **sizes)
    elif product == "desis":
        ns = gen.write_desis_l2a(folder, bands=BANDS["desis"], **sizes)
    elif product == "prisma":
        ns = gen.write_prisma_l2d(folder, n_vnir=66, n_swir=173, **sizes)
    elif product == "emit":
        ns = gen.write_emit_l2a(folder, bands=BANDS["emit"], **sizes)
    else:
        ns = gen.write_aviris(folder, flavour="ng", bands=BANDS["aviris"], **sizes)
    seconds = time.perf_counter() - t
    return {"path": ns.path, "source_size": sizes, "seconds": seconds,
            "bytes": sum(os.path.getsize(f) for f in ns.files),
            "peak_rss_mb": peak_rss_mib()}


# ---------------------------------------------------------------- child: run the pipeline

def stage_of(text: str):
    """The bench stage a progress text belongs to (None: no change)."""
    if text.startswith("INPUT"):
        return "read"
    if text.lower().startswith("pseudo-rgb"):
        return "rgb"
    if text.startswith("stage II"):
        if "spectral prior" in text or "predicting" in text:
            return "predict"
        return "train"
    if text.startswith(("stage I", "loading ", "downloading ")):
        return "stage1"
    return None


def run_classify(args) -> dict:
    import torch

    from special_qgis.core import classes, noiserobust, pipeline, scene
    from special_qgis.core.progress import Progress

    marks: dict = {}
    detail: dict = {}   # inside stage I: class-name encoding, windows
    log: list = []
    last = {"stage": None, "said": 0.0}

    def report(fraction, text):
        now = time.perf_counter()
        stage = stage_of(text)
        if stage is not None and stage not in marks:
            marks[stage] = now
        for key, prefix in (("text", "stage I: encoding"), ("windows", "stage I: window")):
            if text.startswith(prefix):
                detail.setdefault(key, now)
        if (stage is not None and stage != last["stage"]) or now - last["said"] > 60:
            print(f"    [{now - start:7.1f} s] {fraction:4.0%} {text}", file=sys.stderr,
                  flush=True)
            last["said"] = now
            if stage is not None:
                last["stage"] = stage

    schedule = noiserobust.Schedule()
    if args.epochs is not None:
        schedule.epochs = args.epochs
        if args.warmup is None:
            schedule.warmup_epochs = min(schedule.warmup_epochs, args.epochs // 2)
    if args.warmup is not None:
        schedule.warmup_epochs = args.warmup
    if args.iterations is not None:
        schedule.iterations = args.iterations
    out = args.out
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    result = pipeline.classify(
        args.input, classes.parse_classes(CLASSES), os.path.join(out, "classes.tif"),
        os.path.join(out, "confidence.tif"),
        output_rgb=None if args.no_rgb else os.path.join(out, "rgb.tif"),
        model_name="ViT-B-16", pretrained=args.checkpoint, device=args.device,
        schedule=schedule, progress=Progress(report, log=log.append))
    end = time.perf_counter()
    peak = peak_rss_mib()
    gpu = (torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_initialized()
           else None)

    # each stage lasts from its first progress text to the next stage's first
    bounds = [("read", start)] + [(k, marks[k]) for k, _ in STAGES[1:] if k in marks]
    stages = {k: (bounds[i + 1][1] if i + 1 < len(bounds) else end) - t
              for i, (k, t) in enumerate(bounds)}
    # stage I in parts: loading CLIP and the scene statistics; encoding the class names
    # (6 classes × 80 prompts through the text encoder) and the first batch of windows;
    # the remaining windows and writing the labels
    parts = [("load_and_statistics", marks.get("stage1")), ("class_text_and_first_batch",
             detail.get("text")), ("windows", detail.get("windows")),
             ("end", marks.get("train", end))]
    stage1_detail = ({parts[i][0]: parts[i + 1][1] - parts[i][1] for i in range(3)}
                     if all(t is not None for _, t in parts) else None)
    with scene.open_scene(args.input) as src:   # bands without data: cached by the run
        grid = [src.height, src.width, src.count]
        good, name = len(src.good), src.product
    return {"product": name, "grid": grid, "good_bands": good, "stages_s": stages,
            "stage1_detail_s": stage1_detail,
            "total_s": end - start, "peak_rss_mb": peak, "peak_gpu_mb": gpu,
            "windows": result.windows, "torch_threads": torch.get_num_threads(),
            "schedule": {"epochs": schedule.epochs, "warmup_epochs": schedule.warmup_epochs,
                         "iterations": schedule.iterations},
            "warnings": list(result.warnings), "log": list(dict.fromkeys(log))}


# ---------------------------------------------------------------- parent

def run_child(*argv: str) -> dict:
    """Run this script with ``--child ...``; its stderr (progress) goes to ours."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, __file__, "--child", *argv], env=env,
                         stdout=subprocess.PIPE, text=True)
    if res.returncode < 0:
        raise RuntimeError(f"child {argv[0]} killed by signal {-res.returncode}"
                           + (" (out of memory?)" if res.returncode == -9 else ""))
    if res.returncode != 0:
        raise RuntimeError(f"child {argv[0]} exited with status {res.returncode}")
    lines = res.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"child {argv[0]} printed no result")
    return json.loads(lines[-1])


def machine_info() -> dict:
    cpu = platform.processor() or ""
    ram = None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as fh:
            ram = next(int(line.split()[1]) / 2 ** 20 for line in fh
                       if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    return {"node": platform.node(), "machine": platform.machine(), "cpu": cpu,
            "cores": os.cpu_count(), "ram_gib": ram}


def versions() -> dict:
    import importlib.metadata as md

    from special_qgis.core.version import software_version

    out = {"special_qgis": software_version(), "python": platform.python_version()}
    for dist in ("torch", "open_clip_torch", "numpy", "rasterio", "h5py", "scikit-learn"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    try:
        from osgeo import gdal
        out["gdal"] = gdal.__version__
    except ImportError:
        import rasterio
        out["gdal"] = rasterio.__gdal_version__
    return out


def fmt_s(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def table(rows: list) -> str:
    head = (["product", "grid rows×cols×bands", "good bands", "CLIP windows"]
            + [h for _, h in STAGES]
            + ["total s", "peak MiB", "< 4 GB"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(
        "---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    for r in rows:
        if "error" in r:
            cells = [r["name"], "failed: " + r["error"]] + [""] * (len(head) - 2)
        else:
            cells = ([r["name"], "×".join(str(v) for v in r["grid"]), str(r["good_bands"]),
                      str(r["windows"])]
                     + [fmt_s(r["stages_s"].get(k)) for k, _ in STAGES]
                     + [fmt_s(r["total_s"]), f"{r['peak_rss_mb']:.0f}",
                        "yes" if r["peak_rss_mb"] < LIMIT_MIB else "NO"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", default=",".join(PRODUCTS))
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every scene's rows and columns (1.0 = full size)")
    parser.add_argument("--epochs", type=int, help="stage II epochs (default: Schedule's)")
    parser.add_argument("--warmup", type=int, help="stage II warm-up epochs")
    parser.add_argument("--iterations", type=int, help="stage II iterations per epoch")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--no-rgb", action="store_true",
                        help="no OUTPUT_RGB (the algorithm's default); else it is timed too")
    parser.add_argument("--json", default=os.path.join(HERE, "products.json"))
    parser.add_argument("--workdir", help="keep the scenes and outputs here (default: a "
                        "temporary folder, deleted at the end)")
    parser.add_argument("--force", action="store_true", help="generate a scene even when "
                        "its generator looks too big for the available memory")
    parser.add_argument("--child", choices=("generate", "classify"), help=argparse.SUPPRESS)
    for name in ("product", "folder", "input", "checkpoint", "out"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "generate":
        print(json.dumps(generate(args.product, args.scale, args.folder)))
        return 0
    if args.child == "classify":
        print(json.dumps(run_classify(args)))
        return 0

    names = [p.strip().lower() for p in args.products.split(",") if p.strip()]
    unknown = sorted(set(names) - set(PRODUCTS))
    if unknown or not names:
        parser.error(f"--products: unknown {unknown}; choose from {','.join(PRODUCTS)}")
    if args.scale <= 0:
        parser.error("--scale must be positive")

    import open_clip
    import torch

    machine = machine_info()
    machine["torch_threads"] = torch.get_num_threads()
    print(f"machine: {machine['node']} {machine['cpu']}, {machine['cores']} cores, "
          f"{machine['ram_gib'] or 0:.1f} GiB RAM, torch {torch.__version__}, "
          f"{machine['torch_threads']} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})"
             if args.device != "cpu" and torch.cuda.is_available() else ""))
    print("CLIP: ViT-B-16 with RANDOM weights (same work as real ones; the maps are "
          "meaningless)", flush=True)
    keep = args.workdir is not None
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-products-",
                                               dir=os.environ.get("BENCH_TMP"))
    os.makedirs(workdir, exist_ok=True)
    rows = []
    try:
        torch.manual_seed(0)
        checkpoint = os.path.join(workdir, "vit-b-16-random.pt")
        torch.save(open_clip.create_model("ViT-B-16").state_dict(), checkpoint)
        common = ["--device", args.device, "--checkpoint", checkpoint]
        for opt in ("epochs", "warmup", "iterations"):
            if getattr(args, opt) is not None:
                common += [f"--{opt}", str(getattr(args, opt))]
        if args.no_rgb:
            common.append("--no-rgb")
        for name in names:
            folder = os.path.join(workdir, name)
            row = {"name": name, "label": PRODUCTS[name][0]}
            try:
                need, free = generator_gib(name, args.scale), mem_available_gib()
                print(f"{name}: generating ({PRODUCTS[name][0]}, scale {args.scale:g}; the "
                      f"generator needs ≈ {need:.1f} GiB)", flush=True)
                if free is not None and need > free - 1 and not args.force:
                    raise RuntimeError(
                        f"skipped: its generator (tests/products.py) needs ≈ {need:.0f} GiB, "
                        f"only {free:.0f} GiB are available (--force tries anyway)")
                g = run_child("generate", "--product", name, "--scale", str(args.scale),
                              "--folder", os.path.join(folder, "scene"))
                row["generation"] = g
                print(f"  written in {g['seconds']:.0f} s, {g['bytes'] / 2 ** 20:.0f} MiB on "
                      f"disk (generator peak {g['peak_rss_mb']:.0f} MiB); classify:",
                      flush=True)
                row.update(run_child("classify", "--input", g["path"], "--out",
                                     os.path.join(folder, "out"), *common))
                print(f"  {row['grid'][0]}×{row['grid'][1]}×{row['grid'][2]}, "
                      f"{row['good_bands']} good bands, {row['windows']} CLIP windows: "
                      f"{row['total_s']:.0f} s, peak {row['peak_rss_mb']:.0f} MiB"
                      + (f", GPU peak {row['peak_gpu_mb']:.0f} MiB"
                         if row.get("peak_gpu_mb") is not None else ""), flush=True)
                row["under_4gb"] = row["peak_rss_mb"] < LIMIT_MIB
            except (RuntimeError, ValueError, OSError) as exc:
                row["error"] = str(exc)
                print(f"  FAILED: {exc}", flush=True)
            rows.append(row)
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nspecial:classify, scale {args.scale:g}, ViT-B-16 (random weights), scales 1,2, "
          f"device {args.device}; seconds per stage, peak RSS of the classify process:\n")
    print(table(rows))
    report = {"benchmark": "bench_products", "note": "ViT-B-16 with random weights: the "
              "timings and memory are real, the maps are meaningless",
              "machine": machine, "versions": versions(),
              "options": {"scale": args.scale, "device": args.device, "epochs": args.epochs,
                          "warmup": args.warmup, "iterations": args.iterations,
                          "rgb": not args.no_rgb, "classes": CLASSES},
              "limit_mib": LIMIT_MIB, "products": rows}
    with open(args.json, "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"\nwritten {args.json}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
