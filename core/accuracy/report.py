"""The HTML report: ``report.html`` beside this module, filled in with :class:`string.Template`
(summary, per-class table, an SVG plot of producer's and user's accuracies, the confusion
matrix and the class matching).

Every value put into the page is escaped with :func:`html.escape` unless it is a fragment
this module built itself (:class:`_Html`), so no user text (class names, reference values,
file names, warnings, CLASS_NAMES) reaches the page unescaped. The repeated parts (rows,
cells, the plot's shapes) are small templates below; each row of the page comes with the
new line before it, so that the page reads the same with no rows at all.
"""

from __future__ import annotations

import datetime
import functools
import html
import math
import os
from collections.abc import Iterable, Sequence
from string import Template

from .results import AccuracyResult, ClassAccuracy
from .sources import split_source

_PAGE = "report.html"

_SUMMARY_ROW = Template("<tr><th>$key</th><td>$value</td></tr>")
_WARNINGS = Template("\n<h2>Warnings</h2><ul>$items\n</ul>")
_WARNING = Template('<li class="warn">$text</li>')
_CLASS_ROW = Template(
    '<tr><td class="n">$code</td><td>$name</td><td class="n">$reference_pixels</td>'
    '<td class="n">$predicted_pixels</td><td class="n">$correct</td>'
    '<td class="n">$producers</td><td class="n">$users</td><td class="n">$f1</td></tr>')
_COLUMN_HEAD = Template("<th>$name</th>")
_CONFUSION_ROW = Template("<tr><th>$name</th>$cells<td><b>$total</b></td></tr>")
_CELL = Template('<td style="background:rgba($colour,$alpha)">$count</td>')
_ZERO_CELL = Template('<td class="zero">$count</td>')
_TOTAL_CELL = Template("<td><b>$count</b></td>")
_MATCHING_ROW = Template('<tr><td>$label</td><td class="n">$pixels</td><td>$input_class</td>'
                         "</tr>")
_LEFT_OUT = "<i>left out</i>"

_SVG_OPEN = Template(
    '<svg xmlns="http://www.w3.org/2000/svg" width="$width" height="$height" role="img" '
    'aria-label="Producer\'s and user\'s accuracy" font-family="sans-serif" font-size="12">')
_SVG_LEGEND = Template(
    '<rect x="$x" y="4" width="12" height="10" fill="#1f77b4"/>'
    '<text x="$text_x" y="13">producer\'s</text>'
    '<rect x="$x_users" y="4" width="12" height="10" fill="#9ecae1"/>'
    '<text x="$text_x_users" y="13">user\'s</text>')
_SVG_GRID_LINE = Template('<line x1="$x" y1="22" x2="$x" y2="$bottom" stroke="#ddd"/>')
_SVG_LABEL = Template('<text x="$x" y="$y" text-anchor="end">$name</text>')
_SVG_UNDEFINED = Template('<text x="$x" y="$y" fill="#999">–</text>')
_SVG_BAR = Template(
    '<rect x="$x" y="$y" width="$width" height="12" fill="$colour">'
    "<title>$name: $value</title></rect>"
    '<text x="$text_x" y="$text_y">$value</text>')
_SVG_CLOSE = "</svg>"


class _Html(str):
    """A fragment of HTML built here from templates: put into a template as it is."""


def _fill(template: Template, **values) -> _Html:
    """``template`` with every value escaped, except the fragments (:class:`_Html`)."""
    return _Html(template.substitute(
        {k: v if isinstance(v, _Html) else html.escape(str(v)) for k, v in values.items()}))


def _lines(parts: Iterable[str]) -> _Html:
    """Fragments, each on a line of its own (the new line before it)."""
    return _Html("".join("\n" + part for part in parts))


@functools.lru_cache(maxsize=1)
def _page() -> Template:
    with open(os.path.join(os.path.dirname(__file__), _PAGE), encoding="utf-8") as fh:
        return Template(fh.read())


def percent(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def render_html(result: AccuracyResult) -> str:
    """A self-contained HTML report: summary, per-class table, an SVG plot of producer's
    and user's accuracies, the confusion matrix and the class matching."""
    names = [c.name for c in result.classes]
    n = len(names)
    ref_label = os.path.basename(split_source(result.reference_path)[0])
    if result.class_field:
        ref_label += f" (field {result.class_field})"
    rows = [
        ("Overall accuracy (OA)", percent(result.overall)),
        ("Average accuracy (AA, mean producer's accuracy)", percent(result.average)),
        ("Cohen's κ", f"{result.kappa:.4f}"),
        ("Reference pixels assessed", f"{result.n_pixels:,}"),
        ("of which unclassified in INPUT (errors)", f"{result.unclassified_pixels:,}"),
        ("Reference pixels left out (value matches no INPUT class)",
         f"{result.left_out_pixels:,}"),
        ("INPUT", os.path.basename(result.input_path)),
        ("REFERENCE", ref_label),
    ]
    if result.class_names_text:
        rows.append(("CLASS_NAMES", result.class_names_text))
    warnings = _fill(_WARNINGS, items=_lines(_fill(_WARNING, text=w) for w in result.warnings)
                     ) if result.warnings else _Html("")
    class_rows = _lines(
        _fill(_CLASS_ROW, code=c.code, name=c.name, reference_pixels=f"{c.reference_pixels:,}",
              predicted_pixels=f"{c.predicted_pixels:,}", correct=f"{c.correct:,}",
              producers=percent(c.producers), users=percent(c.users),
              f1="–" if math.isnan(c.f1) else f"{c.f1:.3f}")
        for c in result.classes)
    confusion = result.confusion
    confusion_rows = []
    for k in range(n):
        total = int(confusion[k].sum())
        cells = []
        for j in range(n + 1):
            count = int(confusion[k, j])
            if not count:
                cells.append(_fill(_ZERO_CELL, count=f"{count:,}"))
                continue
            share = count / total if total else 0.0
            cells.append(_fill(_CELL, colour="44,160,44" if j == k else "214,39,40",
                               alpha=f"{0.08 + 0.72 * share:.3f}", count=f"{count:,}"))
        confusion_rows.append(_fill(_CONFUSION_ROW, name=names[k], cells=_Html("".join(cells)),
                                    total=f"{total:,}"))
    matching_rows = _lines(
        _fill(_MATCHING_ROW, label=v.label, pixels=f"{v.pixels:,}",
              input_class=f"{v.input_class} {names[v.input_class - 1]}" if v.input_class
              else _Html(_LEFT_OUT))
        for v in result.reference_values)
    return str(_fill(
        _page(),
        input_name=os.path.basename(result.input_path),
        summary_rows=_lines(_fill(_SUMMARY_ROW, key=k, value=v) for k, v in rows),
        warnings=warnings,
        class_rows=class_rows,
        bars=_svg_bars(result.classes),
        confusion_header=_lines(_fill(_COLUMN_HEAD, name=name) for name in names),
        confusion_rows=_lines(confusion_rows),
        column_totals=_Html("".join(_fill(_TOTAL_CELL, count=f"{int(t):,}")
                                    for t in confusion.sum(0))),
        total=f"{int(confusion.sum()):,}",
        matching_rows=matching_rows,
        created=datetime.datetime.now().isoformat(timespec="seconds"),
    ))


def _svg_bars(classes: Sequence[ClassAccuracy]) -> _Html:
    """Horizontal bars of producer's (dark) and user's (light) accuracy per class."""
    label_w, bar_w, row_h = 190, 360, 34
    height = 30 + row_h * len(classes)
    parts = [_fill(_SVG_OPEN, width=label_w + bar_w + 70, height=height),
             _fill(_SVG_LEGEND, x=label_w, text_x=label_w + 16, x_users=label_w + 100,
                   text_x_users=label_w + 116)]
    for pct in (0, 0.5, 1.0):
        x = label_w + bar_w * pct
        parts.append(_fill(_SVG_GRID_LINE, x=f"{x:.1f}", bottom=height - 2))
    for i, c in enumerate(classes):
        y = 26 + row_h * i
        name = c.name if len(c.name) <= 28 else c.name[:27] + "…"
        parts.append(_fill(_SVG_LABEL, x=label_w - 6, y=y + 18, name=name))
        for j, (value, colour) in enumerate(((c.producers, "#1f77b4"),
                                             (c.users, "#9ecae1"))):
            top = y + 3 + 14 * j
            if math.isnan(value):
                parts.append(_fill(_SVG_UNDEFINED, x=label_w + 4, y=top + 11))
                continue
            width = bar_w * value
            parts.append(_fill(_SVG_BAR, x=label_w, y=top, width=f"{width:.1f}", colour=colour,
                               name=c.name, value=percent(value),
                               text_x=f"{label_w + width + 4:.1f}", text_y=top + 11))
    parts.append(_Html(_SVG_CLOSE))
    return _Html("".join(parts))
