"""The run of bench/reproduce.py: read and check the inputs, convert the cube, run stage I
at scale 1 and with resolution scaling and stage II, score the three maps and report them
(standard output, and --json)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from typing import Optional

import numpy as np
from tqdm import tqdm

from special_qgis.core import classes as classes_mod
from special_qgis.core import clip_backbone, noiserobust, pseudolabel
from special_qgis.core.device import resolve_device
from special_qgis.core.errors import Cancelled, UserInputError
from special_qgis.core.progress import Progress

from .options import build_parser, make_schedule
from .report import ROW_SCALE1, ROW_SPECIAL, Row, format_table, machine_info, row_json, score
from .scene import read_cube, read_truth, resolve_wavelengths, write_cube_tif

_STEPS = 1000  # a stage's bar counts thousandths


@contextmanager
def stage_progress(label: str, enabled: bool = True):
    """A tqdm bar on standard error for one stage, fed by the core's progress (a fraction
    and a short text); closed when the stage ends, also by an error. On a terminal it is
    redrawn in place; into a file (a redirected log) it is written in ASCII, at most every
    10 s."""
    tty = sys.stderr.isatty()
    with tqdm(total=_STEPS, desc=label, file=sys.stderr, disable=not enabled, leave=True,
              bar_format="{desc} {percentage:3.0f}%|{bar:30}| {elapsed}{postfix}",
              mininterval=0.1 if tty else 10.0, ascii=not tty) as bar:
        def report(fraction: float, text: str) -> None:
            bar.set_postfix_str(text, refresh=False)
            bar.update(round(fraction * _STEPS) - bar.n)

        yield Progress(report)


def run(args) -> int:
    out = sys.stdout
    classes = (classes_mod.read_classes_file(args.classes_file, "--classes-file")
               if args.classes_file else classes_mod.parse_classes(args.classes, "--classes"))
    names = classes_mod.class_names(classes)
    n_classes = len(classes)
    scales = pseudolabel.parse_scales(args.scales, "--scales")
    schedule = make_schedule(args)
    device = resolve_device(args.device)
    clip_backbone.check_model_name(args.model)
    if clip_backbone.is_checkpoint_path(args.pretrained) and not os.path.isfile(
            args.pretrained):
        raise UserInputError(f"--pretrained: the checkpoint file '{args.pretrained}' does "
                             f"not exist.")

    truth, truth_grid = read_truth(args.truth, args.truth_key)
    cube = read_cube(args.cube, args.cube_key, truth.shape)
    if cube.data.shape[1:] != truth.shape:
        raise UserInputError(
            f"--cube is {cube.data.shape[1]} rows × {cube.data.shape[2]} columns "
            f"({cube.data.shape[0]} bands) but --truth is {truth.shape[0]} × {truth.shape[1]}: "
            f"they must cover the same pixel grid. Check that the files belong together "
            f"(and --cube-key / --truth-key).")
    if truth_grid is not None and cube.transform is not None and truth_grid != cube.transform:
        raise UserInputError(
            "--truth is georeferenced differently from --cube (another geotransform): it must "
            "lie on the cube's pixel grid.")
    top = int(truth.max(initial=0))
    if top == 0:
        raise UserInputError(f"--truth: '{args.truth}' has no labelled pixel (all 0).")
    if top > n_classes:
        raise UserInputError(
            f"--truth has class codes up to {top}, but {n_classes} class names were given "
            f"({'; '.join(names)}). Give one name per ground-truth code, in code order "
            f"1..{top}.")
    wl = resolve_wavelengths(args, cube)

    temporary = not args.workdir
    workdir = tempfile.mkdtemp(prefix="special-reproduce-") if temporary else args.workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        return _run_stages(args, out, classes, names, scales, schedule, device, truth, cube,
                           wl, workdir, temporary)
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_stages(args, out, classes, names, scales, schedule, device, truth, cube, wl,
                workdir, temporary) -> int:
    n_classes = len(classes)
    path = {k: os.path.join(workdir, f"{k}.tif") for k in (
        "cube", "clip_scale1_labels", "clip_scale1_confidence", "clip_rs_labels",
        "clip_rs_confidence", "special_labels", "special_confidence")}
    machine = machine_info(device)
    present = sorted(int(c) for c in np.unique(truth[truth > 0]))
    bands, rows, cols = cube.data.shape
    scale_text = ", ".join(f"{s:g}" for s in scales)

    print("SPECIAL reproduction (special_qgis, bench/reproduce.py)", file=out)
    print(f"  cube:     {args.cube}  ({rows} rows × {cols} cols × {bands} bands, "
          f"{cube.data.dtype})", file=out)
    if wl is not None:
        print(f"  bands:    {wl.min():.1f}–{wl.max():.1f} nm"
              f"{f' (--sensor {args.sensor})' if args.sensor else ''}", file=out)
    print(f"  truth:    {args.truth}  ({int(np.count_nonzero(truth))} labelled pixels, "
          f"{len(present)} of {n_classes} classes present)", file=out)
    print(f"  classes:  {'; '.join(', '.join(c) for c in classes)}", file=out)
    print(f"  model:    {args.model}, weights: {args.pretrained}", file=out)
    print(f"  stage I:  RS scales {scale_text}, window {args.window}, stride {args.stride}",
          file=out)
    print(f"  stage II: {schedule.epochs} epochs ({schedule.warmup_epochs} warm-up) × "
          f"{schedule.iterations} iterations, {schedule.samples_per_class} samples/class, "
          f"lr {schedule.learning_rate:g}, seed {schedule.seed}", file=out)
    gpu = f", GPU {machine['gpu']}" if machine["gpu"] else ""
    print(f"  machine:  {machine['cpu_count']} CPUs ({machine['torch_threads']} torch "
          f"threads), device {machine['device']}{gpu}", file=out)
    print(f"  workdir:  {workdir}{' (temporary)' if temporary else ''}", file=out)
    out.flush()

    t = time.perf_counter()
    notes = write_cube_tif(path["cube"], cube, wl)
    cube.data = None  # the stages read the GeoTIFF: free the array (160 MB for Pavia Centre)
    for note in notes:
        print(f"  note: {note}", file=out)
    convert_s = time.perf_counter() - t

    stage_i = dict(model_name=args.model, pretrained=args.pretrained, device=args.device,
                   window=args.window, stride=args.stride, targets=args.target_wavelengths)
    rs_name = f"CLIP pseudo-labels, RS (scales {scale_text})"
    rows_ = [Row(ROW_SCALE1, "clip_scale1", path["clip_scale1_labels"]),
             Row(rs_name, "clip_rs", path["clip_rs_labels"]),
             Row(ROW_SPECIAL, "special", path["special_labels"])]

    def progress(label):
        return stage_progress(label, enabled=not args.quiet)

    t = time.perf_counter()
    # Loaded once here (the core keeps it for both stage I runs), so that the stage times
    # compare the stages and not the loading.
    with progress("[0/3] loading CLIP") as p:
        clip_backbone.load(args.model, args.pretrained, args.device, progress=p)
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    with progress("[1/3] stage I, scale 1") as p:
        pseudolabel.run(path["cube"], classes, path["clip_scale1_labels"],
                        path["clip_scale1_confidence"], scales="1", progress=p, **stage_i)
    rows_[0].seconds = time.perf_counter() - t

    if scales == (1.0,):
        shutil.copyfile(path["clip_scale1_labels"], path["clip_rs_labels"])
        shutil.copyfile(path["clip_scale1_confidence"], path["clip_rs_confidence"])
        legend = path["clip_scale1_labels"] + ".aux.xml"  # class names, if GDAL put them there
        if os.path.exists(legend):
            shutil.copyfile(legend, path["clip_rs_labels"] + ".aux.xml")
        rows_[1].note = "--scales 1: the scale-1 map"
    else:
        t = time.perf_counter()
        with progress(f"[2/3] stage I, scales {scale_text}") as p:
            pseudolabel.run(path["cube"], classes, path["clip_rs_labels"],
                            path["clip_rs_confidence"], scales=scales, progress=p, **stage_i)
        rows_[1].seconds = time.perf_counter() - t

    t = time.perf_counter()
    status = 0
    stage2_warnings = []
    try:
        with progress("[3/3] stage II") as p:
            result = noiserobust.run(
                noiserobust.Inputs(path["cube"], path["clip_rs_labels"],
                                   path["clip_rs_confidence"], None),
                path["special_labels"], path["special_confidence"], schedule=schedule,
                device=args.device, progress=p)
        stage2_warnings = list(result.warnings)
        rows_[2].seconds = time.perf_counter() - t
    except UserInputError as exc:
        rows_[2].error = f"stage II refused the RS pseudo-labels: {exc}"
        rows_[2].labels = None
        status = 1

    for row in rows_:
        if row.labels:
            score(row, truth, n_classes)

    print("", file=out)
    counts = np.bincount(truth[truth > 0], minlength=n_classes + 1)[1:]
    print(format_table(rows_, names, counts), file=out)
    for row in rows_:
        if row.unscored:
            print(f"note: {row.key}: {row.unscored} labelled truth pixels have no prediction "
                  f"(no data in the cube) and are left out of its scores.", file=out)
    for w in stage2_warnings:
        print(f"stage II: {w}", file=out)
    print(f"(κ×100: Cohen's kappa in percent; scored over the truth's labelled pixels; "
          f"'pixels': the truth's pixels per class, to check the class-name order against "
          f"the dataset's documentation; model loading {load_s:.2f}s and cube conversion "
          f"{convert_s:.2f}s are not in the stage times)", file=out)

    if args.json:
        doc = {
            "scene": {"cube": os.path.abspath(args.cube), "truth": os.path.abspath(args.truth),
                      "rows": rows, "cols": cols, "bands": bands,
                      "wavelengths_nm": None if wl is None else [float(v) for v in wl],
                      "sensor": args.sensor, "labelled_pixels": int(np.count_nonzero(truth)),
                      "classes_in_truth": present},
            "class_names": names,
            "classes": classes,
            "model": args.model, "pretrained": args.pretrained,
            "stage_i": {"scales": list(scales), "window": args.window, "stride": args.stride,
                        "targets": args.target_wavelengths},
            "stage_ii": {"epochs": schedule.epochs, "warmup_epochs": schedule.warmup_epochs,
                         "iterations": schedule.iterations,
                         "samples_per_class": schedule.samples_per_class,
                         "learning_rate": schedule.learning_rate, "seed": schedule.seed,
                         "warnings": stage2_warnings},
            "machine": machine,
            "units": "OA, AA, kappa and per_class in percent; seconds of wall time",
            "cube_conversion_seconds": convert_s,
            "model_loading_seconds": load_s,
            "workdir": None if temporary else os.path.abspath(workdir),
            "rows": [row_json(r, names, temporary) for r in rows_],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, ensure_ascii=False)
        print(f"JSON written to {args.json}", file=out)
    return status


def main(argv: Optional[list] = None) -> int:
    import rasterio.errors

    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    try:
        return run(args)
    except UserInputError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
