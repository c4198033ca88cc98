"""Processing parameters built from an algorithm's spec (core/spec/), and the readers of the
values that several algorithms share."""

from __future__ import annotations

import os
from typing import Optional

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.errors import UserInputError
from ..core.spec import AlgorithmSpec, Output, Param
from ..core.spec.shared import SCHEDULE_FIELDS
from .settings import default_device

_OPTIONAL = QgsProcessingParameterDefinition.Flag.FlagOptional
_ADVANCED = QgsProcessingParameterDefinition.Flag.FlagAdvanced


class HyperspectralInputParameter(QgsProcessingParameterRasterLayer):
    """A raster-layer parameter that also takes a PRISMA (.he5) or EMIT (.nc) product file,
    which QGIS cannot open as one layer, and does not load a file path as a layer just to
    check it (that can write a .aux.xml beside the input); core checks the file."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        if isinstance(value, str) and os.path.isfile(value):
            return True
        return super().checkValueIsAcceptable(value, context)

    def clone(self):
        copy = HyperspectralInputParameter(self.name(), self.description(),
                                           self.defaultValue(), bool(self.flags() & _OPTIONAL))
        copy.setFlags(self.flags())
        return copy


_LAYER_TYPES = {"raster": QgsProcessing.SourceType.TypeRaster,
                "polygon": QgsProcessing.SourceType.TypeVectorPolygon}


def build_parameter(p: Param, default=None) -> QgsProcessingParameterDefinition:
    """The Processing parameter of ``p`` (``default``: instead of the spec's, e.g. DEVICE's
    from the plugin settings)."""
    default = p.default if default is None else default
    name, label, optional = p.name, p.label, p.optional
    if p.kind == "input":
        param = HyperspectralInputParameter(name, label, default, optional)
    elif p.kind == "raster":
        param = QgsProcessingParameterRasterLayer(name, label, default, optional)
    elif p.kind == "layer":
        param = QgsProcessingParameterMapLayer(
            name, label, default, optional, types=[_LAYER_TYPES[t] for t in p.layer_types])
    elif p.kind == "field":
        param = QgsProcessingParameterField(
            name, label, default, parentLayerParameterName=p.parent, optional=optional)
    elif p.kind == "string":
        param = QgsProcessingParameterString(name, label, default, optional=optional)
    elif p.kind in ("int", "float"):
        kind = (QgsProcessingParameterNumber.Type.Integer if p.kind == "int"
                else QgsProcessingParameterNumber.Type.Double)
        limits = {}
        if p.minimum is not None:
            limits["minValue"] = p.minimum
        if p.maximum is not None:
            limits["maxValue"] = p.maximum
        param = QgsProcessingParameterNumber(name, label, kind, defaultValue=default,
                                             optional=optional, **limits)
        if p.decimals is not None:
            param.setMetadata({"widget_wrapper": {"decimals": p.decimals}})
    elif p.kind == "enum":
        # Static strings: the value is the option's text (DEVICE=cpu), as in models and
        # scripts written when DEVICE was a string parameter.
        param = QgsProcessingParameterEnum(name, label, list(p.options), False, default,
                                           optional, True)
    elif p.kind == "file":
        param = QgsProcessingParameterFile(
            name, label, QgsProcessingParameterFile.Behavior.File, "", default, optional,
            p.file_filter)
    elif p.kind == "raster_out":
        param = QgsProcessingParameterRasterDestination(
            name, label, default, optional, createByDefault=p.create_by_default)
    elif p.kind == "file_out":
        param = QgsProcessingParameterFileDestination(
            name, label, p.file_filter, default, optional, p.create_by_default)
    else:
        raise ValueError(f"{name}: no Processing parameter for kind {p.kind!r}")
    if p.advanced:
        param.setFlags(param.flags() | _ADVANCED)
    if p.help:
        param.setHelp(p.help)
    return param


def build_output(o: Output):
    if o.kind == "number":
        return QgsProcessingOutputNumber(o.name, o.label)
    raise ValueError(f"{o.name}: no Processing output for kind {o.kind!r}")


def add_spec(alg, spec: AlgorithmSpec) -> None:
    """Every parameter and output of ``spec``, in its order. DEVICE's default is the one of
    the plugin settings."""
    for p in spec.params:
        alg.addParameter(build_parameter(p, default_device() if p.name == "DEVICE" else None))
    for o in spec.outputs:
        alg.addOutput(build_output(o))


# ------------------------------------------------------------------- shared values

def bad_bands(alg, parameters, context) -> Optional[str]:
    return alg.parameterAsString(parameters, "BAD_BANDS", context) or None


def device(alg, parameters, context) -> str:
    """DEVICE: the option's text (an option's index is accepted too, as QGIS does)."""
    return alg.parameterAsEnumString(parameters, "DEVICE", context)


def wavelength_arguments(alg, parameters, context, targets: bool = True) -> dict:
    arguments = dict(wavelengths_override=alg.parameterAsString(
        parameters, "WAVELENGTHS", context))
    if targets:
        arguments["targets"] = alg.parameterAsString(parameters, "TARGET_WAVELENGTHS", context)
    return arguments


def read_classes(alg, parameters, context) -> list:
    """CLASSES or CLASSES_FILE (exactly one of them), parsed by core."""
    from ..core import classes as classes_mod

    text = alg.parameterAsString(parameters, "CLASSES", context)
    path = alg.parameterAsFile(parameters, "CLASSES_FILE", context)
    try:
        if text.strip() and path:
            raise UserInputError("Give either CLASSES or CLASSES_FILE, not both.")
        if path:
            return classes_mod.read_classes_file(path)
        return classes_mod.parse_classes(text)
    except UserInputError as exc:
        raise QgsProcessingException(str(exc)) from None


def clip_arguments(alg, parameters, context) -> dict:
    """MODEL ... DEVICE as core.pseudolabel.run's (and core.pipeline.classify's) arguments."""
    return dict(
        model_name=alg.parameterAsString(parameters, "MODEL", context).strip(),
        pretrained=alg.parameterAsString(parameters, "PRETRAINED", context).strip(),
        scales=alg.parameterAsString(parameters, "SCALES", context),
        window=alg.parameterAsInt(parameters, "WINDOW", context),
        stride=alg.parameterAsInt(parameters, "STRIDE", context),
        device=device(alg, parameters, context),
    )


def schedule_from(alg, parameters, context):
    """The core.noiserobust.Schedule of EPOCHS ... SPECTRAL_PRIOR (core.spec.shared's
    SCHEDULE_FIELDS names the field each sets)."""
    from ..core import noiserobust

    spec = alg.spec()
    values = {}
    readers = {"int": alg.parameterAsInt, "float": alg.parameterAsDouble,
               "enum": alg.parameterAsEnumString}
    for name, field_name in SCHEDULE_FIELDS.items():
        values[field_name] = readers[spec.param(name).kind](parameters, name, context)
    return noiserobust.Schedule(**values)
