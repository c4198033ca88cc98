#!/usr/bin/env python3
"""Write docs/algorithms.md, the reference of every Processing algorithm's parameters, from
the algorithms' specs (core/spec/). QGIS-free.

    .venv/bin/python scripts/gen_algorithms_doc.py          # (re)write docs/algorithms.md
    .venv/bin/python scripts/gen_algorithms_doc.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "algorithms.md")
COMMAND = "scripts/gen_algorithms_doc.py"


def _markdown(text: str) -> str:
    """The help's light HTML as Markdown, on one line (for a paragraph or a table cell)."""
    for tag, mark in (("b", "**"), ("i", "*"), ("code", "`")):
        text = re.sub(rf"<{tag}>(.*?)</{tag}>", rf"{mark}\1{mark}", text)
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|")


def _value(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        value = f"{value:g}"
    return f"`{value}`"


def _range(p) -> str:
    from special_qgis.core.spec.shared import numbers

    if p.options:
        return ", ".join(f"`{o}`" for o in p.options)
    if p.minimum is not None and p.maximum is not None:
        return f"{numbers([p.minimum])} – {numbers([p.maximum])}"
    if p.minimum is not None:
        return f"≥ {numbers([p.minimum])}"
    if p.maximum is not None:
        return f"≤ {numbers([p.maximum])}"
    if p.file_filter:
        return f"`{p.file_filter}`"
    if p.layer_types:
        return " or ".join(p.layer_types)
    if p.parent:
        return f"a field of `{p.parent}`"
    return ""


def _type(p) -> str:
    from special_qgis.core.spec import KINDS

    words = [KINDS[p.kind]]
    if p.optional:
        words.append("optional")
    if p.advanced:
        words.append("advanced")
    return ", ".join(words)


def render() -> str:
    """docs/algorithms.md's text."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from special_qgis.core.spec import GROUPS, all_specs

    specs = all_specs()
    lines = [
        "# Processing algorithms",
        "",
        f"<!-- Generated from core/spec/ by {COMMAND}: do not edit by hand. -->",
        "",
        "Every parameter of every algorithm of the `special` Processing provider, as "
        "`processing.run(\"special:<id>\", {...})`, graphical models and "
        "`qgis_process run special:<id> -- NAME=value ...` name them. The dialog shows the "
        "advanced parameters under *Advanced parameters*; the Toolbox's help panel has each "
        "algorithm's full help. `DEVICE`'s default is the plugin setting *Default device* "
        "(Settings ▸ Options ▸ Processing ▸ Providers ▸ SPECIAL hyperspectral), `auto` "
        "unless changed; its value is the option's text (`DEVICE=cpu`).",
        "",
        f"This file is generated from the algorithms' specs (core/spec/) by `{COMMAND}`.",
        "",
    ]
    lines += [f"- [special:{s.id}](#special{s.id}): {s.title}" for s in specs]
    for s in specs:
        lines += ["", f"## special:{s.id}", "", f"**{s.title}** ({GROUPS[s.group]})", "",
                  _markdown(s.summary), "",
                  "| Parameter | Type | Default | Range / options | Description |",
                  "|---|---|---|---|---|"]
        for p in s.params:
            description = _cell(p.label) + (f": {_cell(p.help)}" if p.help else "")
            lines.append(f"| `{p.name}` | {_type(p)} | {_value(p.default)} | {_range(p)} "
                         f"| {description} |")
        if s.outputs:
            lines += ["", "Results besides the files:", "", "| Output | Type | Description |",
                      "|---|---|---|"]
            lines += [f"| `{o.name}` | {o.kind} | {_cell(o.label)} |" for o in s.outputs]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write: exit 1 if docs/algorithms.md is out of date")
    args = parser.parse_args()
    text = render()
    try:
        with open(DOC, encoding="utf-8") as fh:
            current = fh.read()
    except FileNotFoundError:
        current = None
    if args.check:
        if current != text:
            print(f"docs/algorithms.md is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        with open(DOC, "w", encoding="utf-8") as fh:
            fh.write(text)
        print("docs/algorithms.md written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
