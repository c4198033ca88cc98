"""One declarative spec per Processing algorithm: its id, title, group, help and, in order,
its parameters and outputs. The Processing algorithms (processing_provider/) build their
parameters and help from it, and scripts/gen_algorithms_doc.py writes docs/algorithms.md
from it, so that a parameter's name, label and default are written once. Defaults of engine
settings are read from the engine (core.noiserobust.Schedule, core.pseudolabel's DEFAULT_*
constants, ...), never retyped.

QGIS-free: nothing here imports QGIS. An algorithm's spec imports the engine modules whose
defaults it reads only when it is asked for (``spec(alg_id)``), so that the spec of one
algorithm does not need another algorithm's Python packages.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Optional

# Parameter kinds and what they are in Processing (processing_provider/params.py builds them).
KINDS = {
    "input": "hyperspectral raster or product file",
    "raster": "raster layer",
    "layer": "map layer",
    "field": "field",
    "string": "string",
    "int": "integer",
    "float": "number",
    "enum": "enum",
    "file": "file",
    "raster_out": "raster destination",
    "file_out": "file destination",
}
OUTPUT_KINDS = {"number": "number"}
GROUPS = {"tools": "Hyperspectral tools", "special": "SPECIAL classification"}


@dataclass(frozen=True)
class Param:
    """One parameter of an algorithm. ``label`` is what the dialog shows, ``help`` one or two
    sentences for the parameter's tooltip and docs/algorithms.md."""

    name: str
    kind: str
    label: str
    default: Any = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    options: tuple = ()  # enum: the values (static strings)
    optional: bool = False
    advanced: bool = False
    help: str = ""
    file_filter: str = ""  # file, file_out
    parent: str = ""  # field: the layer parameter it lists the fields of
    layer_types: tuple = ()  # layer: "raster" and/or "polygon"
    create_by_default: bool = True  # raster_out, file_out
    decimals: Optional[int] = None  # float: decimals shown by the dialog

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown parameter kind {self.kind!r}")
        if self.kind == "enum" and self.default is not None and self.default not in self.options:
            raise ValueError(f"{self.name}: default {self.default!r} is not an option")

    def but(self, **changes) -> Param:
        """This parameter with some attributes changed (e.g. ``advanced=True``)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Output:
    """A result that is not a file (a number for graphical models)."""

    name: str
    kind: str
    label: str
    help: str = ""


@dataclass(frozen=True)
class AlgorithmSpec:
    """``help`` is the algorithm's help text (Processing's shortHelpString: light HTML, <b>,
    <i>, <code>, newlines); its first paragraph is the summary."""

    id: str
    title: str
    group: str
    help: str
    params: tuple
    outputs: tuple = field(default=())

    def __post_init__(self) -> None:
        names = [p.name for p in self.params] + [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: a parameter or output name is given twice")
        if self.group not in GROUPS:
            raise ValueError(f"{self.id}: unknown group {self.group!r}")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.id} has no parameter {name}")

    @property
    def names(self) -> list:
        return [p.name for p in self.params]

    @property
    def summary(self) -> str:
        return self.help.split("\n\n")[0]


# The algorithms, in the provider's order, and the module of core/spec/ that declares each
# (a function named as the id returns its AlgorithmSpec).
ALGORITHMS = {
    "pseudorgb": "tools",
    "importproduct": "tools",
    "pseudolabel": "stage1",
    "noiserobust": "stage2",
    "applymodel": "stage2",
    "classify": "pipeline",
    "accuracy": "tools",
}


@cache
def spec(alg_id: str) -> AlgorithmSpec:
    """The spec of special:<alg_id>."""
    module = importlib.import_module(f"{__name__}.{ALGORITHMS[alg_id]}")
    made = getattr(module, alg_id)()
    if made.id != alg_id:
        raise ValueError(f"{module.__name__}.{alg_id}() gave the spec of {made.id}")
    return made


def all_specs() -> list:
    return [spec(alg_id) for alg_id in ALGORITHMS]
