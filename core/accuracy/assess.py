"""``run``: assess a class raster against reference data and write the reports."""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from .. import metrics, raster_io
from ..errors import UserInputError
from ..progress import Progress, as_progress
from .histogram import accumulate
from .matching import match_values, parse_class_names, shorten, sort_key
from .raster_reference import RasterReference
from .report import render_html
from .results import AccuracyResult, ClassAccuracy, ReferenceValue
from .sources import Grid, category_names, is_vector, split_source
from .vector_reference import VectorReference

HTML_EXTENSIONS = (".html", ".htm")
JSON_EXTENSIONS = (".json",)
_LISTED = 12  # values named in a warning before "…"


def run(input_path: str, reference_path: str, output_html: Optional[str] = None,
        output_json: Optional[str] = None, class_field: Optional[str] = None,
        class_names: Optional[str] = None, reference_kind: Optional[str] = None,
        progress: Optional[Progress] = None,
        block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES) -> AccuracyResult:
    """Assess the class raster ``input_path`` against ``reference_path`` and write the
    reports.

    ``reference_path``: a raster of class codes, or a polygon layer (a file, or a QGIS
    layer source such as 'ref.gpkg|layername=fields') whose ``class_field`` holds each
    polygon's class. ``class_names``: 'reference value = INPUT class' entries separated by
    ';' (see :func:`parse_class_names`); without it, raster codes and numeric fields match
    INPUT's codes, and text fields INPUT's class names (case-insensitive).
    ``reference_kind``: 'raster', 'vector' or None (found out from the file).
    ``output_html`` / ``output_json``: optional report files, written only on success.
    """
    progress = as_progress(progress)
    warnings: list[str] = []
    ref_file = split_source(reference_path or "")[0]
    if not ref_file or not os.path.exists(ref_file):
        raise UserInputError(f"REFERENCE: the file '{ref_file}' does not exist.")
    if input_path and os.path.exists(input_path) and raster_io.same_file(input_path, ref_file):
        raise UserInputError("REFERENCE is the INPUT file itself; choose the reference data.")
    for path, param, ext, kind in ((output_html, "OUTPUT_HTML", HTML_EXTENSIONS, "HTML"),
                                   (output_json, "OUTPUT_JSON", JSON_EXTENSIONS, "JSON")):
        if path:
            raster_io.check_output_path(path, [input_path, ref_file], param, ext, kind)
    pairs = parse_class_names(class_names)
    if reference_kind not in (None, "raster", "vector"):
        raise ValueError(f"reference_kind must be 'raster', 'vector' or None, not "
                         f"{reference_kind!r}")

    with raster_io.gdal_env(), raster_io.open_raster(input_path, "INPUT") as src:
        if src.count != 1:
            raise UserInputError(
                f"INPUT: '{input_path}' has {src.count} bands; a class raster has one band "
                f"(values 1..C, 0 or nodata = unclassified), such as special:noiserobust's "
                f"OUTPUT."
            )
        grid = Grid(src.crs, src.transform, src.width, src.height, tuple(src.bounds))
        if reference_kind is None:
            reference_kind = "vector" if is_vector(ref_file) else "raster"
        reference: VectorReference | RasterReference
        if reference_kind == "vector":
            reference = VectorReference(reference_path, class_field, grid, warnings,
                                         progress.sub(0.0, 0.1))
        else:
            if class_field:
                warnings.append("CLASS_FIELD is ignored: REFERENCE is a raster.")
            reference = RasterReference(ref_file, grid, warnings)
        try:
            joint, max_value = accumulate(src, reference, progress.sub(0.1, 0.95),
                                           block_bytes)
        finally:
            reference.close()
        names = category_names(input_path)
        n_classes = max(len(names), max_value)
        if n_classes == 0:
            raise UserInputError(
                "INPUT has no classes: every pixel is 0 or nodata and it has no legend. "
                "Choose a class raster (values 1..C), such as special:noiserobust's OUTPUT."
            )
        names = [(names[k] if k < len(names) and names[k].strip() else f"class {k + 1}")
                 for k in range(n_classes)]
        if not joint.counts:
            raise UserInputError(
                "REFERENCE is empty on INPUT's grid: " + (
                    "no polygon covers the centre of an INPUT pixel." if reference.kind ==
                    "vector" else "every pixel it covers is 0 or nodata.")
                + " Choose reference data with labelled areas inside INPUT."
            )
        values = reference.describe(sorted(joint.counts), names, warnings)

    matched = match_values({rid: values[rid] for rid in joint.counts}, names, pairs, warnings)
    pixels = joint.pixels()
    if not any(code is not None for code in matched.values()):
        listed = ", ".join(values[rid].label for rid in sorted(joint.counts))
        classes_text = ", ".join(f"{i}={n}" for i, n in enumerate(names, start=1))
        hint = ("Check that CLASS_NAMES lists the reference values on the left of '='"
                if pairs else "Give CLASS_NAMES to say which is which, e.g. "
                f"'{values[min(joint.counts)].label}={names[0]}'")
        raise UserInputError(
            f"{'CLASS_NAMES' if pairs else 'REFERENCE'}: none of the reference values "
            f"({shorten(listed)}) matches a class of INPUT ({shorten(classes_text)}). "
            f"{hint}."
        )

    confusion = np.zeros((n_classes, n_classes + 1), np.int64)
    for rid, row in joint.counts.items():
        code = matched[rid]
        if code is None:
            continue
        confusion[code - 1, n_classes] += row[0]
        confusion[code - 1, : len(row) - 1] += row[1:]
    left_out = sorted((rid for rid in matched if matched[rid] is None),
                      key=lambda rid: -pixels[rid])
    if left_out:
        listed = ", ".join(f"'{values[rid].label}' ({pixels[rid]} px)"
                           for rid in left_out[:_LISTED])
        warnings.append(
            f"Reference values that match no INPUT class were left out: {listed}"
            f"{' …' if len(left_out) > _LISTED else ''}"
            f"{'' if pairs else '. Give CLASS_NAMES to match them'}.")

    accuracy = metrics.from_confusion(confusion)
    predicted = confusion[:, :n_classes].sum(0)
    per_class = [
        ClassAccuracy(k + 1, names[k], int(accuracy.reference_pixels[k]), int(predicted[k]),
                      int(confusion[k, k]), float(accuracy.producers[k]),
                      float(accuracy.users[k]), float(accuracy.f1[k]))
        for k in range(n_classes)]
    ref_values = [ReferenceValue(values[rid].label, pixels[rid], matched[rid])
                  for rid in sorted(joint.counts, key=lambda r: sort_key(values[r].label))]
    if accuracy.unclassified:
        warnings.append(f"{accuracy.unclassified} reference pixels are unclassified (0 or "
                        f"nodata) in INPUT; they count as errors.")
    result = AccuracyResult(accuracy, per_class, ref_values, input_path, reference_path,
                            class_field if reference.kind == "vector" else None,
                            class_names if pairs else None, output_html or None,
                            output_json or None, warnings)
    progress.update(0.96, "Writing the report")
    texts = {}
    if output_html:
        texts[output_html] = render_html(result)
    if output_json:
        texts[output_json] = json.dumps(result.as_dict(), indent=2, allow_nan=False,
                                        ensure_ascii=False) + "\n"
    _write_texts(texts)
    progress.update(1.0, "Done")
    return result


def _write_texts(texts: dict) -> None:
    """All reports or none (an earlier report stays as it was): raster_io's temporary
    names beside the outputs, moved into place only when every file is written."""
    paths = list(texts)
    with raster_io.atomic_outputs(paths) as temps:
        for path, tmp in zip(paths, temps, strict=True):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(texts[path])
