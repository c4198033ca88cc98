#!/usr/bin/env python3
"""Benchmark stage II's accuracy on scenes with known truth, against the baselines any user
could run on the same pseudo-labels.

Two benches (``--scenes``):
  synthetic  bench/scenes.py: real earthlib spectra on Indian Pines' AVIRIS bands, ten
             classes of similar size, fields, roads and buildings, mixed borders;
  real       bench/real_scenes.py: every pixel made of real labelled EnMAP spectra of
             Berlin (six classes), imbalanced class shares (a few at 25–45 %, some at
             1–3 %), spatially correlated variation inside objects.
Both carry CLIP-like pseudo-labels with clustered errors. For every scene it reports OA,
AA and κ against the truth of
  - the pseudo-labels themselves,
  - random forests (scikit-learn) on the most confident fifth and quarter of each class's
    pseudo-labels, and the same forests with their class probabilities averaged over
    3 × 3 pixels (the post-filter any user can run),
  - stage II (special:noiserobust's core, default schedule) for each training SEED, and,
    scored from the same trained network, its final map made other ways: the network
    alone, without the scene's class priors, without the smoothing, with the pseudo-labels'
    frequencies as priors, with a wider smoothing (``VARIANTS``).
The truth is used only to score the maps, never by the methods.

  .venv/bin/python bench/bench_stage2_quality.py [--scenes real] [--seeds 1,2,3,4,5]
      [--train-seeds 0,100,200] [--size 256] [--jobs 2] [--json results.json]

With --jobs N the (scene, training seed) runs go to N processes side by side, each with
one thread (PyTorch and BLAS): training is chaotic, and another thread count changes float
rounding and, through it, a map by up to about 1.5 OA points. A network is trained with
SEED = scene seed + training-seed offset.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace

import numpy as np
import rasterio
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from special_qgis.core import metrics, noiserobust  # noqa: E402
from special_qgis.core.hsi_net import StageIIModel  # noqa: E402
from special_qgis.core.pseudolabel.options import GUIDED_EPS  # noqa: E402
from special_qgis.core.stage2.predict import predict_array  # noqa: E402


@dataclass
class ExperimentSchedule(noiserobust.Schedule):
    """Stage II's schedule with this benchmark's research switches, which the product's
    Schedule does not have (no Processing parameter or model file sees them). The trainer
    reads each through ``research_switch`` (core/stage2/schedule.py) with the product's
    behaviour as its default."""

    # The baseline: ordinary cross-entropy on every pseudo-labelled pixel, no robust phase
    # and no spectral prior.
    plain_cross_entropy: bool = False


def make(kind: str, seed: int, size: int):
    if kind == "real":
        from real_scenes import make_real_scene
        return make_real_scene(seed, size, size)
    from scenes import make_scene
    return make_scene(seed, size, size)


def write(kind: str, scene, folder: str) -> dict:
    from scenes import write_scene
    return {k: str(v) for k, v in write_scene(scene, folder).items()}


RF_FRACTIONS = {"fifth": 0.2, "quarter": 0.25}  # per class, the most confident share
RF_MAX_PER_CLASS = 2000


def forest_probabilities(scene, seed: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A random forest on the most confident ``fraction`` of each class's pseudo-labels,
    applied to every pixel: its classes (1..C) and (classes, rows, cols) probabilities."""
    from sklearn.ensemble import RandomForestClassifier

    bands = scene.cube.shape[0]
    pixels = scene.cube.reshape(bands, -1).T
    labels = scene.pseudo_labels.ravel()
    conf = scene.confidence.ravel()
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels[labels > 0]):
        members = np.flatnonzero(labels == c)
        top = members[np.argsort(conf[members])[::-1][:max(1, int(fraction * members.size))]]
        if top.size > RF_MAX_PER_CLASS:
            top = rng.choice(top, RF_MAX_PER_CLASS, replace=False)
        chosen.append(top)
    chosen = np.concatenate(chosen)
    forest = RandomForestClassifier(200, n_jobs=int(os.environ.get("OMP_NUM_THREADS", 2)),
                                    random_state=seed)
    forest.fit(pixels[chosen], labels[chosen])
    probs = np.concatenate([forest.predict_proba(pixels[i:i + 65536])
                            for i in range(0, len(pixels), 65536)])
    return forest.classes_, probs.T.reshape((-1,) + scene.truth.shape)


def forest_rows(scene, n: int) -> dict:
    out = {}
    for name, fraction in RF_FRACTIONS.items():
        t = time.perf_counter()
        classes, probs = forest_probabilities(scene, scene.seed, fraction)
        plain = classes[probs.argmax(0)]
        smooth = classes[ndimage.uniform_filter(probs, size=(1, 3, 3), mode="nearest")
                         .argmax(0)]
        out[f"RF {name}"] = {**metrics.assess(scene.truth, plain, n).as_dict(),
                             "seconds": time.perf_counter() - t}
        out[f"RF {name} 3×3"] = metrics.assess(scene.truth, smooth, n).as_dict()
    return out


def train(paths: dict, folder: str, schedule) -> np.ndarray:
    """Stage II through the product's own entry point; its class map."""
    out = os.path.join(folder, "map.tif")
    noiserobust.run(noiserobust.Inputs(paths["cube"], paths["pseudo_labels"],
                                       paths["confidence"]),
                    out, os.path.join(folder, "conf.tif"), os.path.join(folder, "model.pt"),
                    schedule, "cpu")
    with rasterio.open(out) as ds:
        return ds.read(1)


# The final map made other ways from the same trained network (its file): name →
# (spectral prior's weight relative to the trained one: 0 = the network alone; class
# priors; smoothing radius[; the guided filter's ε, default stage I's 0.01]). Class priors:
# "equal"; "EM" (Saerens et al.'s EM to convergence); "EM^0.5" (their square root: half
# way); "EM1" (one EM step: the mean posterior); "labels" (the pseudo-labels' class
# frequencies).
STAGE_I_EPS = GUIDED_EPS  # stage I's guided filter's ε (0.01)
VARIANTS = {
    "network alone": (0, "equal", 0),
    "equal priors, no smoothing (0.5)": (1, "equal", 0),
    "equal priors, smoothing 1": (1, "equal", 1),
    "equal priors, smoothing 2": (1, "equal", 2),
    "EM priors": (1, "EM", 0),
    "EM priors, smoothing 1": (1, "EM", 1),
    "EM priors, smoothing 2": (1, "EM", 2),
    "EM1 priors": (1, "EM1", 0),
    "EM1 priors, smoothing 1": (1, "EM1", 1),
    "EM1 priors, smoothing 2": (1, "EM1", 2),
    "label priors": (1, "labels", 0),
    "label priors, smoothing 1": (1, "labels", 1),
    "label priors, smoothing 2": (1, "labels", 2),
    "network alone, EM priors, smoothing 1": (0, "EM", 1),
    "spectral prior ×2, EM priors, smoothing 1": (2, "EM", 1),
    "spectral prior ×2, label priors, smoothing 1": (2, "labels", 1),
    "half EM priors": (1, "EM^0.5", 0),
    "half EM priors, smoothing 1": (1, "EM^0.5", 1),
    "equal priors, smoothing 1, ε 0.001": (1, "equal", 1, 1e-3),
    "equal priors, smoothing 1, ε 0.0001": (1, "equal", 1, 1e-4),
    "EM priors, smoothing 1, ε 0.001": (1, "EM", 1, 1e-3),
    "network alone, smoothing 1, ε 0.001": (0, "equal", 1, 1e-3),
}


def variants(scene, model_path: str) -> dict:
    """Maps of the VARIANTS, in memory, from the saved model; and the product's default
    made in memory ("default, in memory"), to compare with its raster path."""
    from special_qgis.core.final_map import estimate_priors, finish, grid_sample

    model = StageIIModel.load(model_path)
    n = model.classes
    invalid = np.zeros(scene.truth.shape, bool)
    cube = scene.cube.astype(np.float32)
    off = replace(model.final, class_priors="equal", smoothing_radius=0)
    raw = {}
    for ratio in sorted({v[0] for v in VARIANTS.values()}):
        m = copy.copy(model)
        if ratio == 0:
            m.prior_weight = m.prior_bias = None
        else:
            m.prior_weight, m.prior_bias = model.prior_weight * ratio, model.prior_bias * ratio
        raw[ratio] = predict_array(m, cube, invalid, "cpu", 256, off)
    guide = off.guide(model.stats.apply(cube, invalid))
    step = grid_sample(invalid.shape)
    freq = np.bincount(scene.pseudo_labels.ravel(), minlength=n + 1)[1:].astype(float)
    out = {"default, in memory": predict_array(model, cube, invalid, "cpu", 256).argmax(0) + 1}
    for name, (ratio, priors, radius, *eps) in VARIANTS.items():
        probs = raw[ratio]
        sample = probs[:, ::step, ::step].reshape(n, -1).T
        weights = {"equal": lambda _: None, "EM": estimate_priors,
                   "EM^0.5": lambda x: np.sqrt(estimate_priors(x)),
                   "EM1": lambda x: x.mean(0),
                   "labels": lambda _: freq / freq.sum()}[priors](sample)
        final = replace(off, smoothing_radius=radius,
                        smoothing_eps=eps[0] if eps else STAGE_I_EPS)
        out[name] = finish(probs, guide, final, weights).argmax(0) + 1
    return out


def run_one(kind: str, seed: int, offset: int, size: int, epochs: int = 0,
            keep: str = "") -> dict:
    scene = make(kind, seed, size)
    n = len(scene.class_names)
    row = {"scenes": kind, "seed": seed, "train seed": seed + offset, "classes": n,
           "bands": scene.cube.shape[0],
           "shares": np.bincount(scene.truth.ravel(), minlength=n + 1)[1:].tolist(),
           "pseudo-labels": metrics.assess(scene.truth, scene.pseudo_labels, n).as_dict()}
    if offset == 0:  # the forests do not depend on the training seed
        row.update(forest_rows(scene, n))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(kind, scene, tmp)
        t = time.perf_counter()
        schedule = noiserobust.Schedule(seed=seed + offset)
        if epochs:  # a quick check of the benchmark itself, not a result
            schedule = replace(schedule, epochs=epochs, warmup_epochs=epochs // 2,
                               iterations=2)
        pred = train(paths, tmp, schedule)
        row["stage II"] = {**metrics.assess(scene.truth, pred, n).as_dict(),
                           "seconds": time.perf_counter() - t}
        if keep:  # to score other final maps later without training again (--rescore)
            os.makedirs(keep, exist_ok=True)
            shutil.copy(os.path.join(tmp, "model.pt"),
                        os.path.join(keep, f"{kind}-{seed}-{seed + offset}.pt"))
        maps = variants(scene, os.path.join(tmp, "model.pt"))
        # The raster path (two passes through a temporary file) and the in-memory one
        # must make the same map.
        row["stage II"]["share equal to the in-memory map"] = float(
            (maps.pop("default, in memory") == pred).mean())
        for name, other in maps.items():
            row[name] = metrics.assess(scene.truth, other, n).as_dict()
    return row


ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                 "SPECIAL_QGIS_THREADS")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", choices=("synthetic", "real"), default="synthetic")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--train-seeds", default="0,100,200",
                        help="training-seed offsets: SEED = scene seed + offset")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--jobs", type=int, default=0,
                        help="run in this many one-thread processes side by side")
    parser.add_argument("--json", default=None)
    parser.add_argument("--tasks", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--keep-models", default="",
                        help="copy every trained model file into this folder")
    parser.add_argument("--docs", default="", metavar="VARIANT",
                        help="with --rescore: print docs/benchmarks.md's tables, the "
                             "product's defaults being this variant's map")
    parser.add_argument("--rescore", default="", metavar="RESULTS_JSON",
                        help="train nothing: score the VARIANTS again from the model files "
                             "in --keep-models and the baselines of this earlier --json")
    args = parser.parse_args()
    if args.rescore:
        return rescore(args)
    if args.tasks:
        tasks = [tuple(map(int, t.split(":"))) for t in args.tasks.split(",")]
    else:
        tasks = [(s, o) for o in map(int, args.train_seeds.split(","))
                 for s in map(int, args.seeds.split(","))]
    if args.jobs > 0:
        rows = run_jobs(args, tasks)
        if rows is None:
            return 1
    else:
        rows = []
        for seed, offset in tasks:
            rows.append(run_one(args.scenes, seed, offset, args.size, args.epochs,
                                args.keep_models))
            print_row(rows[-1])
            if args.json:  # after every row: a run stopped early keeps what it measured
                with open(args.json, "w") as fh:
                    json.dump(rows, fh, indent=1)
    if args.json and args.jobs > 0:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    if not args.tasks:
        print(f"machine: {platform.node()}, {os.cpu_count()} CPUs; {args.scenes} scenes "
              f"{args.size}²")
        print_summary(rows)
    return 0


def rescore(args) -> int:
    """The rows of an earlier run with every final-map variant scored again from its saved
    model files (after a change to VARIANTS; the networks are the same)."""
    with open(args.rescore) as fh:
        rows = json.load(fh)
    if args.docs:
        print_docs_tables(rows, args.docs)
        return 0
    for row in rows:
        scene = make(row["scenes"], row["seed"], args.size)
        path = os.path.join(args.keep_models,
                            f"{row['scenes']}-{row['seed']}-{row['train seed']}.pt")
        maps = variants(scene, path)
        maps.pop("default, in memory")
        for name in [k for k, v in row.items() if isinstance(v, dict) and "OA" in v
                     and k not in BASELINES + ("stage II",)]:
            del row[name]
        for name, other in maps.items():
            row[name] = metrics.assess(scene.truth, other, row["classes"]).as_dict()
        print_row(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    print_summary(rows)
    return 0


def run_jobs(args, tasks: list):
    """The tasks dealt round-robin to ``args.jobs`` child processes of one thread each."""
    groups = [tasks[i::args.jobs] for i in range(args.jobs) if tasks[i::args.jobs]]
    with tempfile.TemporaryDirectory() as tmp:
        children = []
        for i, group in enumerate(groups):
            # Beside --json when given, so that a stopped run leaves its rows there.
            out = f"{args.json}.part{i}" if args.json else os.path.join(tmp, f"{i}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--scenes", args.scenes,
                   "--size", str(args.size), "--json", out, "--epochs", str(args.epochs),
                   "--keep-models", args.keep_models,
                   "--tasks", ",".join(f"{s}:{o}" for s, o in group)]
            children.append((subprocess.Popen(cmd, env={**os.environ, **ONE_THREAD}), out))
        failed = [c.wait() for c, _ in children]
        if any(failed):
            print(f"a benchmark process failed (exit codes {failed})", file=sys.stderr)
            return None
        rows = []
        for _, out in children:
            with open(out) as fh:
                rows.extend(json.load(fh))
            if args.json:
                os.remove(out)
    return sorted(rows, key=lambda r: (r["seed"], r["train seed"]))


def _cell(r: dict) -> str:
    return f"{100 * r['OA']:.1f} / {100 * r['AA']:.1f} / {r['KAPPA']:.3f}"


def print_row(row: dict) -> None:
    lines = [f"scene {row['seed']}, SEED {row['train seed']} ({row['classes']} classes, "
             f"shares {row['shares']}):"]
    for name, r in row.items():
        if isinstance(r, dict) and "OA" in r:
            extra = f", {r['seconds']:.0f} s" if "seconds" in r else ""
            lines.append(f"  {name:36s} OA / AA / κ {_cell(r)}{extra}")
    print("\n".join(lines), flush=True)


BASELINES = ("pseudo-labels", "RF fifth", "RF quarter", "RF fifth 3×3", "RF quarter 3×3")
STAGE_II = ("stage II",) + tuple(VARIANTS)


def scene_means(rows: list) -> dict:
    """Per scene: the baselines, and every stage II map's OA/AA/κ averaged over the
    training seeds (with the OA of each seed)."""
    out = {}
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        entry = {m: next(r[m] for r in mine if m in r) for m in BASELINES
                 if any(m in r for r in mine)}
        for m in STAGE_II:
            runs = [r[m] for r in mine if m in r]
            entry[m] = {k: float(np.mean([x[k] for x in runs])) for k in ("OA", "AA", "KAPPA")}
            entry[m]["OA each"] = [x["OA"] for x in runs]
        out[seed] = entry
    return out


def print_docs_tables(rows: list, default: str) -> None:
    """The tables of docs/benchmarks.md: per scene, the baselines and the map of the
    product's defaults (``default``: the variant they make) as a mean over the training
    seeds; then every variant's mean OA / AA over the scenes and its scenes on target."""
    means = scene_means(rows)
    print("| scene (class shares %) | pseudo-labels | RF fifth | RF quarter | RF fifth, 3×3 "
          "| RF quarter, 3×3 | **stage II** (OA of each SEED) | network alone | target met? |")
    print("|---" * 9 + "|")
    first = {r["seed"]: r for r in rows}
    for seed, e in means.items():
        shares = np.array(first[seed]["shares"], float)
        shares = "/".join(f"{100 * v:.0f}" for v in shares / shares.sum())
        s = e[default]
        each = ", ".join(f"{100 * v:.1f}" for v in s["OA each"])
        print(f"| {seed} ({shares}) | " + " | ".join(_cell(e[m]) for m in BASELINES)
              + f" | **{_cell(s)}** ({each}) | {_cell(e['network alone'])} | "
              + _verdict(e, default) + " |")
    print("\n| final map | mean OA | mean AA | scenes on target |")
    print("|---|---|---|---|")
    for m in STAGE_II:
        print(f"| {m} | {100 * np.mean([e[m]['OA'] for e in means.values()]):.1f} | "
              f"{100 * np.mean([e[m]['AA'] for e in means.values()]):.1f} | "
              f"{sum(_verdict(e, m) == 'yes' for e in means.values())} of {len(means)} |")


def _verdict(e: dict, m: str) -> str:
    """Issue 17's target for map ``m`` of one scene: 'yes', or what is missing."""
    rf = max(e["RF fifth"]["OA"], e["RF quarter"]["OA"])
    smooth = max(e["RF fifth 3×3"]["OA"], e["RF quarter 3×3"]["OA"])
    s = e[m]
    missing = []
    if s["OA"] < rf + 0.03 - 1e-9:
        missing.append(f"{100 * (s['OA'] - rf):+.1f} over the RF")
    if s["OA"] < smooth + 0.01 - 1e-9:
        missing.append(f"{100 * (s['OA'] - smooth):+.1f} over the smoothed RF")
    if s["AA"] < e["pseudo-labels"]["AA"] - 1e-9:
        missing.append(f"AA {100 * (s['AA'] - e['pseudo-labels']['AA']):+.1f} under the labels'")
    return "yes" if not missing else "no: " + ", ".join(missing)


def print_summary(rows: list) -> None:
    means = scene_means(rows)
    print("\n| scene | " + " | ".join(BASELINES) + " | " + " | ".join(STAGE_II) + " |")
    print("|---" * (len(BASELINES) + len(STAGE_II) + 1) + "|")
    for seed, e in means.items():
        print(f"| {seed} | " + " | ".join(_cell(e[m]) if m in e else "—"
                                          for m in BASELINES + STAGE_II) + " |")
    print("\nstage II maps (mean over the training seeds) against issue 17's target: ≥ the "
          "better confident-RF + 3 OA, ≥ the better smoothed RF + 1 OA, AA ≥ the "
          "pseudo-labels' AA")
    for m in STAGE_II:
        met = [seed for seed, e in means.items() if _verdict(e, m) == "yes"]
        gaps = ", ".join(
            f"{100 * (e[m]['OA'] - max(e['RF fifth 3×3']['OA'], e['RF quarter 3×3']['OA'])):+.1f}"
            for e in means.values())
        print(f"  {m:36s} met on {len(met)} of {len(means)} scenes {met}; OA − smoothed RF: "
              f"{gaps}")


if __name__ == "__main__":
    sys.exit(main())
