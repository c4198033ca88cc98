#!/usr/bin/env python3
"""Benchmark special:classify's core (the whole pipeline): wall time of each stage and the
process's peak memory on a 512×512×200 scene, with ViT-B-16 (random weights: the same
FLOPs as real ones; the map is not looked at) and the default stage II schedule.

  .venv/bin/python bench/bench_classify.py [--size 512] [--epochs 20] [--device cpu]

The run happens in a child process so that its peak resident size (VmHWM) is its own.
The CLIP model stays loaded (cached per process) while stage II trains, so the peak is
not simply the larger of the two stages' peaks.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_stage1 import peak_rss_mib, write_scene  # noqa: E402

BANDS = 200
CLASSES = "water; trees; meadows; bare soil; roofs; asphalt"


def child(args) -> None:
    from special_qgis.core import classes, noiserobust, pipeline
    from special_qgis.core.progress import Progress

    marks = {}

    def report(fraction, text):
        stage = text.split(":")[0]
        marks.setdefault(stage, time.perf_counter())

    start = time.perf_counter()
    pipeline.classify(
        args.scene, classes.parse_classes(CLASSES), os.path.join(args.workdir, "classes.tif"),
        os.path.join(args.workdir, "confidence.tif"), model_name="ViT-B-16",
        pretrained=args.checkpoint, device=args.device,
        schedule=noiserobust.Schedule(epochs=args.epochs, warmup_epochs=args.epochs // 2),
        progress=Progress(report))
    end = time.perf_counter()
    stage_ii = marks.get("stage II", end)
    print(json.dumps({"total_s": end - start, "stage_i_s": stage_ii - start,
                      "stage_ii_s": end - stage_ii, "peak_rss_mb": peak_rss_mib()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        child(args)
        return 0

    import open_clip
    import torch

    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        checkpoint = os.path.join(tmp, "vit-b-16-random.pt")
        torch.save(open_clip.create_model("ViT-B-16").state_dict(), checkpoint)
        scene = os.path.join(tmp, "scene.tif")
        write_scene(scene, args.size, BANDS)
        res = subprocess.run(
            [sys.executable, __file__, "--child", "--scene", scene, "--checkpoint",
             checkpoint, "--workdir", tmp, "--device", args.device, "--epochs",
             str(args.epochs)], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(res.stderr[-3000:])
        r = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"{args.size}² × {BANDS}, ViT-B-16 scales 1,2, {args.epochs} epochs: "
          f"stage I {r['stage_i_s']:.1f} s, stage II {r['stage_ii_s']:.1f} s, total "
          f"{r['total_s']:.1f} s, peak {r['peak_rss_mb']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
