#!/usr/bin/env python3
"""Write the graphical-modeller model shipped with the plugin:
processing_provider/models/special_pipeline.model3.

The model chains special:pseudorgb → special:pseudolabel → special:noiserobust →
special:accuracy, so a user can open it in the modeller, see every step and change it.
It is generated rather than drawn by hand so that it stays in step with the algorithms'
parameter names; run this after changing them (the tests check that the shipped file
loads and runs):

  .venv/bin/python scripts/build_model.py
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(REPO, "processing_provider", "models", "special_pipeline.model3")
MODEL_NAME = "special_pipeline"
GROUP = "SPECIAL hyperspectral"

HELP = (
    "The SPECIAL pipeline step by step, with an accuracy check: the hyperspectral raster is "
    "rendered as pseudo-RGB (special:pseudorgb), CLIP labels the pseudo-RGB with the class "
    "names (special:pseudolabel), the noise-robust network learns from those pseudo-labels "
    "on the full spectra (special:noiserobust), and the final map is compared with your "
    "reference data (special:accuracy: OA, AA, kappa, an HTML report). Open it in the "
    "modeller to change any step. For a map without reference data, use 'Classify "
    "hyperspectral image (whole pipeline)'."
)


def build():
    from qgis.core import (
        QgsApplication,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterField,
        QgsProcessingParameterMapLayer,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
        QgsProcessingParameterString,
    )
    from qgis.PyQt.QtCore import QPointF

    from special_qgis.core import clip_backbone, noiserobust

    model = QgsProcessingModelAlgorithm(MODEL_NAME, GROUP)
    model.setHelpContent({"ALG_DESC": HELP, "ALG_CREATOR": "special_qgis",
                          "INPUT": "Hyperspectral raster with wavelengths in its metadata.",
                          "CLASSES": "Class names separated by ';', synonyms by ','.",
                          "REFERENCE": "Reference classes: a raster on any grid, or polygons "
                                       "with a class field.",
                          "CLASS_FIELD": "The reference polygons' class field.",
                          "CLASS_NAMES": "Optional mapping 'reference value=class name; ...'."})
    schedule = noiserobust.Schedule()
    integer = QgsProcessingParameterNumber.Type.Integer
    inputs = [
        QgsProcessingParameterRasterLayer("INPUT", "Hyperspectral raster"),
        QgsProcessingParameterString("CLASSES", "Classes (';' between classes, ',' between "
                                                "synonyms)"),
        QgsProcessingParameterString("MODEL", "CLIP model",
                                     defaultValue=clip_backbone.DEFAULT_MODEL),
        QgsProcessingParameterString("PRETRAINED", "CLIP weights (tag or checkpoint file)",
                                     defaultValue=clip_backbone.DEFAULT_PRETRAINED),
        QgsProcessingParameterString("SCALES", "Resolution scales", defaultValue="1,2"),
        QgsProcessingParameterNumber("EPOCHS", "Epochs", integer,
                                     defaultValue=schedule.epochs, minValue=1),
        QgsProcessingParameterNumber("WARMUP_EPOCHS", "Warm-up epochs", integer,
                                     defaultValue=schedule.warmup_epochs, minValue=0),
        QgsProcessingParameterString("DEVICE", "Device (auto, cpu or cuda)",
                                     defaultValue="auto"),
        QgsProcessingParameterMapLayer("REFERENCE", "Reference (raster or polygons)"),
        QgsProcessingParameterField("CLASS_FIELD", "Reference class field (polygons)",
                                    parentLayerParameterName="REFERENCE", optional=True),
        QgsProcessingParameterString("CLASS_NAMES", "Reference class mapping", optional=True),
    ]
    for i, param in enumerate(inputs):
        component = QgsProcessingModelParameter(param.name())
        component.setPosition(QPointF(130 + 260 * (i % 3), 50 + 55 * (i // 3)))
        model.addModelParameter(param, component)

    def given(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def from_child(child, output):
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child, output)]

    def child(alg_id, child_id, sources, outputs, row):
        step = QgsProcessingModelChildAlgorithm(alg_id)
        step.setChildId(child_id)
        step.setDescription(QgsApplication.processingRegistry().algorithmById(
            alg_id).displayName())
        step.setPosition(QPointF(390, 330 + 125 * row))
        for name, value in sources.items():
            step.addParameterSources(name, value)
        # Everything else at the algorithm's own default, visible (and editable) in the model.
        alg = QgsApplication.processingRegistry().algorithmById(alg_id)
        for param in alg.parameterDefinitions():
            if (param.name() not in sources and not param.isDestination()
                    and param.defaultValue() is not None):
                step.addParameterSources(param.name(), [
                    QgsProcessingModelChildParameterSource.fromStaticValue(param.defaultValue())])
        model_outputs = {}
        for output_name, (child_output, description) in outputs.items():
            out = QgsProcessingModelOutput(output_name, description)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            model_outputs[output_name] = out
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)

    child("special:pseudorgb", "pseudorgb", {"INPUT": given("INPUT")},
          {"RGB": ("OUTPUT", "Pseudo-RGB")}, 0)
    child("special:pseudolabel", "pseudolabel", {
        "INPUT": from_child("pseudorgb", "OUTPUT"), "CLASSES": given("CLASSES"),
        "MODEL": given("MODEL"), "PRETRAINED": given("PRETRAINED"),
        "SCALES": given("SCALES"), "DEVICE": given("DEVICE")},
        {"PSEUDO_LABELS": ("OUTPUT_LABELS", "Pseudo-labels")}, 1)
    child("special:noiserobust", "noiserobust", {
        "INPUT": given("INPUT"), "LABELS": from_child("pseudolabel", "OUTPUT_LABELS"),
        "CONFIDENCE": from_child("pseudolabel", "OUTPUT_CONFIDENCE"),
        "EPOCHS": given("EPOCHS"), "WARMUP_EPOCHS": given("WARMUP_EPOCHS"),
        "DEVICE": given("DEVICE")},
        {"CLASSIFICATION": ("OUTPUT", "Classes"),
         "CONFIDENCE_MAP": ("OUTPUT_CONFIDENCE", "Confidence")}, 2)
    child("special:accuracy", "accuracy", {
        "INPUT": from_child("noiserobust", "OUTPUT"), "REFERENCE": given("REFERENCE"),
        "CLASS_FIELD": given("CLASS_FIELD"), "CLASS_NAMES": given("CLASS_NAMES")},
        {"REPORT": ("OUTPUT_HTML", "Accuracy report")}, 3)
    return model


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    from special_qgis.processing_provider.provider import SpecialProvider

    Processing.initialize()
    provider = SpecialProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    model = build()
    valid, problems = model.validate()
    if not valid:
        print("\n".join(problems), file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(MODEL_PATH), exist_ok=True)
    if not model.toFile(MODEL_PATH):
        print(f"could not write {MODEL_PATH}", file=sys.stderr)
        return 1
    print(MODEL_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
