"""Each algorithm's parameters are built from its spec (core/spec/): same names, order,
kinds, defaults, flags and limits; engine defaults are read from the engine; DEVICE is an
enum whose value is its option's text."""

import dataclasses

import pytest
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingParameterDefinition,
)

from special_qgis.core import clip_backbone, noiserobust, pseudo_rgb, pseudolabel
from special_qgis.core.spec import ALGORITHMS, all_specs, spec
from special_qgis.core.spec.shared import DEVICES, SCHEDULE_FIELDS, numbers

_TYPES = {"input": "raster", "raster": "raster", "layer": "layer", "field": "field",
          "string": "string", "int": "number", "float": "number", "enum": "enum",
          "file": "file", "raster_out": "rasterDestination", "file_out": "fileDestination"}
_FLAG = QgsProcessingParameterDefinition.Flag


def _alg(alg_id):
    return QgsApplication.processingRegistry().createAlgorithmById(f"special:{alg_id}")


@pytest.mark.parametrize("alg_id", list(ALGORITHMS))
def test_parameters_are_the_specs(provider, alg_id):
    alg, declared = _alg(alg_id), spec(alg_id)
    assert alg.displayName() == declared.title
    assert alg.shortHelpString() == declared.help
    built = alg.parameterDefinitions()
    assert [p.name() for p in built] == declared.names
    for param, p in zip(built, declared.params, strict=True):
        assert param.type() == _TYPES[p.kind], p.name
        assert param.description() == p.label, p.name
        assert bool(param.flags() & _FLAG.FlagOptional) == p.optional, p.name
        assert bool(param.flags() & _FLAG.FlagAdvanced) == p.advanced, p.name
        if p.name != "DEVICE":  # its default is the plugin setting's
            assert param.defaultValue() == p.default, p.name
        if p.minimum is not None:
            assert param.minimum() == p.minimum, p.name
    assert [o.name() for o in alg.outputDefinitions()
            if o.name() not in declared.names] == [o.name for o in declared.outputs]


def test_engine_defaults_are_read_from_the_engine():
    schedule = {f.name: f.default for f in dataclasses.fields(noiserobust.Schedule)}
    for alg_id in ("noiserobust", "classify"):
        for name, field_name in SCHEDULE_FIELDS.items():
            assert spec(alg_id).param(name).default == schedule[field_name]
    for alg_id in ("pseudolabel", "classify"):
        s = spec(alg_id)
        assert s.param("MODEL").default == clip_backbone.DEFAULT_MODEL
        assert s.param("PRETRAINED").default == clip_backbone.DEFAULT_PRETRAINED
        assert s.param("SCALES").default == numbers(pseudolabel.DEFAULT_SCALES)
        assert s.param("WINDOW").default == pseudolabel.DEFAULT_WINDOW
        assert s.param("STRIDE").default == pseudolabel.DEFAULT_STRIDE
        assert s.param("TARGET_WAVELENGTHS").default == numbers(pseudo_rgb.DEFAULT_TARGETS)
    # ... and the help text quotes them.
    help_text = spec("noiserobust").help
    assert f"<b>Epochs</b> ({schedule['epochs']})" in help_text
    assert f"<b>Samples per class</b> ({schedule['samples_per_class']})" in help_text


def test_specs_are_consistent():
    for s in all_specs():
        for p in s.params:
            assert p.label and p.help, (s.id, p.name)


def test_device_is_an_enum_of_its_option_texts(provider):
    from special_qgis.processing_provider.params import device

    context = QgsProcessingContext()
    for alg_id in ("pseudolabel", "noiserobust", "applymodel", "classify"):
        alg = _alg(alg_id)
        param = alg.parameterDefinition("DEVICE")
        assert param.type() == "enum" and param.usesStaticStrings()
        assert list(param.options()) == list(DEVICES)
        for text in DEVICES:  # as qgis_process, processing.run and models give it
            assert param.checkValueIsAcceptable(text, context), text
            assert device(alg, {"DEVICE": text}, context) == text
        assert device(alg, {}, context) == "auto"
        # Static-string enums take the option's text, not its index, nor another word.
        for value in ("gpu", 1):
            assert not param.checkValueIsAcceptable(value, context), value


def test_device_string_runs_through_processing(provider, tmp_path):
    """DEVICE=cpu as a string, and a refused value, through processing.run."""
    import numpy as np
    import processing
    from qgis.core import QgsProcessingException

    from rasters import write_gtiff

    src = write_gtiff(str(tmp_path / "labels.tif"), np.ones((1, 8, 8), dtype="uint8"))
    params = {"INPUT": src, "MODEL": str(tmp_path / "absent.pt"),
              "OUTPUT": str(tmp_path / "o.tif"), "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")}
    # A valid DEVICE passes the parameter check: the run fails later, on the missing model.
    with pytest.raises(QgsProcessingException) as valid:
        processing.run("special:applymodel", dict(params, DEVICE="cpu"))
    assert "DEVICE" not in str(valid.value)
    with pytest.raises(QgsProcessingException, match="DEVICE"):
        processing.run("special:applymodel", dict(params, DEVICE="gpu"))
