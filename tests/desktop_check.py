# Run inside desktop QGIS (`qgis --code`), driven by tests/test_desktop.py through env vars:
#   SPECIAL_DESKTOP_REPORT  the JSON report to write (screenshots go beside it)
#   SPECIAL_DESKTOP_SCENE   a folder with cube.tif, pseudo_labels.tif, confidence.tif
# It checks the plugin loaded without Python errors, shows the Toolbox, opens the dialog of
# special:classify (screenshot) and of special:pseudorgb, runs the latter from its dialog,
# runs special:importproduct from its dialog on a PRISMA .he5 (SPECIAL_DESKTOP_PRODUCT),
# runs special:noiserobust on the scene's simulated pseudo-labels, shows the styled result
# with its legend (screenshot) and quits. Every step is recorded in the report, and the
# QGIS message log goes into it, so a failing test can show what QGIS said.
import json
import os
import time
import traceback

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTabWidget
from qgis.utils import active_plugins, iface, plugins

OUT = os.environ["SPECIAL_DESKTOP_REPORT"]
SCENE = os.environ.get("SPECIAL_DESKTOP_SCENE", "")
SHOTS = os.path.dirname(OUT)
report = {"steps": [], "log": {}}
logged = []
QgsApplication.messageLog().messageReceived.connect(
    lambda text, tag, level: logged.append([tag, int(level), text]))


def _message_log():
    """The text of every tab of the Log Messages panel (what QGIS logged before us too)."""
    dock = iface.mainWindow().findChild(QDockWidget, "MessageLog")
    tabs = dock.findChild(QTabWidget) if dock else None
    if tabs is None:
        return {"(no Log Messages panel found)": ""}
    return {tabs.tabText(i): tabs.widget(i).toPlainText() for i in range(tabs.count())}


def _save(widget, name):
    QApplication.processEvents()
    path = os.path.join(SHOTS, name)
    widget.grab().save(path)
    report.setdefault("screenshots", []).append(path)


def _finish(error=None):
    if error:
        report["error"] = error
    report["log"] = _message_log()
    report["logged"] = logged
    with open(OUT, "w") as fh:
        json.dump(report, fh, indent=1)
    # QGIS 3.22 can crash while quitting with layers loaded (the style dock follows the
    # active layer as the tree is torn down): empty the project first.
    QgsProject.instance().clear()
    QTimer.singleShot(500, lambda: QgsApplication.exit(0))


def _step(func):
    """Run one step; on an exception, write the report with the traceback and quit."""
    def run():
        try:
            func()
        except Exception:  # noqa: BLE001 (everything goes to the report)
            _finish(traceback.format_exc())
    return run


def _wait(condition, then, timeout_s=120, label=""):
    start = time.time()

    def poll():
        if condition():
            QTimer.singleShot(0, _step(then))
        elif time.time() - start > timeout_s:
            _finish(f"timed out waiting for {label}")
        else:
            QTimer.singleShot(250, poll)

    poll()


@_step
def check_plugin():
    iface.mainWindow().resize(1280, 900)
    provider = QgsApplication.processingRegistry().providerById("special")
    report.update(active_plugins=list(active_plugins), provider=provider is not None,
                  algorithms=[a.id() for a in provider.algorithms()] if provider else [],
                  models=[a.id() for a in QgsApplication.processingRegistry()
                          .providerById("model").algorithms()])
    report["log_at_start"] = _message_log()
    report["steps"].append("plugin")
    toolbox = plugins["processing"].toolbox
    toolbox.show()
    toolbox.searchBox.setText("special")
    toolbox.algorithmTree.expandAll()
    QTimer.singleShot(500, _step(toolbox_shot))


@_step
def toolbox_shot():
    _save(iface.mainWindow(), "toolbox.png")
    report["steps"].append("toolbox")
    import processing

    dialog = processing.createAlgorithmDialog("special:classify", {
        "INPUT": os.path.join(SCENE, "cube.tif"),
        "CLASSES": "dense vegetation; bright soil; asphalt; shingle roofs"})
    dialog.resize(900, 760)
    dialog.show()
    QTimer.singleShot(800, _step(lambda: classify_dialog_shot(dialog)))


def classify_dialog_shot(dialog):
    _save(dialog, "dialog.png")
    dialog.close()
    report["steps"].append("classify dialog")
    from processing.modeler.ModelerDialog import ModelerDialog

    model = QgsApplication.processingRegistry().algorithmById("model:special_pipeline")
    modeller = ModelerDialog.create(model.create())
    modeller.resize(1200, 800)
    modeller.show()
    if hasattr(modeller, "zoomFull"):  # the whole chain in view
        QTimer.singleShot(300, modeller.zoomFull)
    QTimer.singleShot(1000, _step(lambda: modeller_shot(modeller)))


def modeller_shot(modeller):
    _save(modeller, "modeller.png")
    modeller.setDirty(False)  # no "save changes?" question
    modeller.close()
    report["steps"].append("modeller")
    import processing

    output = os.path.join(SHOTS, "pseudo_rgb.tif")
    dialog = processing.createAlgorithmDialog("special:pseudorgb", {
        "INPUT": os.path.join(SCENE, "cube.tif"), "OUTPUT": output})
    dialog.show()
    report["pseudorgb_dialog"] = dialog.windowTitle()
    dialog.runAlgorithm()  # what the Run button does: a background task, then loading

    def loaded():
        return bool(QgsProject.instance().mapLayersByName("Pseudo-RGB"))

    _wait(loaded, lambda: check_pseudorgb(dialog), label="the Pseudo-RGB layer")


def check_pseudorgb(dialog):
    dialog.close()
    layer = QgsProject.instance().mapLayersByName("Pseudo-RGB")[0]
    red = layer.renderer().redContrastEnhancement()
    report["pseudorgb"] = {"source": layer.source(), "renderer": layer.renderer().type(),
                           "stretch": [red.minimumValue(), red.maximumValue()]}
    report["steps"].append("pseudorgb ran")
    product = os.environ.get("SPECIAL_DESKTOP_PRODUCT")
    if not product:
        run_stage_ii()
        return
    import processing

    # A PRISMA .he5, which QGIS cannot open as one layer, picked as the file of INPUT.
    before = sorted(os.listdir(os.path.dirname(product)))
    dialog = processing.createAlgorithmDialog("special:importproduct", {
        "INPUT": product, "OUTPUT": os.path.join(SHOTS, "imported.tif")})
    dialog.show()
    dialog.runAlgorithm()

    def loaded():
        return bool(QgsProject.instance().mapLayersByName("Imported product"))

    def check_import():
        dialog.close()
        layer = QgsProject.instance().mapLayersByName("Imported product")[0]
        renderer = layer.renderer()
        report["importproduct"] = {
            "source": layer.source(), "renderer": renderer.type(), "bands": layer.bandCount(),
            "rgb": [renderer.redBand(), renderer.greenBand(), renderer.blueBand()],
            "beside_product_unchanged": sorted(os.listdir(os.path.dirname(product))) == before}
        report["steps"].append("importproduct ran")
        run_stage_ii()

    _wait(loaded, check_import, label="the imported product")


def run_stage_ii():
    import processing

    processing.runAndLoadResults("special:noiserobust", {
        "INPUT": os.path.join(SCENE, "cube.tif"),
        "LABELS": os.path.join(SCENE, "pseudo_labels.tif"),
        "CONFIDENCE": os.path.join(SCENE, "confidence.tif"),
        "EPOCHS": 6, "WARMUP_EPOCHS": 3, "ITERATIONS": 10, "DEVICE": "cpu",
        "OUTPUT": os.path.join(SHOTS, "classes.tif"),
        "OUTPUT_CONFIDENCE": os.path.join(SHOTS, "confidence.tif")})
    project = QgsProject.instance()
    classes = project.mapLayersByName("Classes")[0]
    report["classes"] = {"renderer": classes.renderer().type(),
                         "legend": [c.label for c in classes.renderer().classes()],
                         "colours": [c.color.name() for c in classes.renderer().classes()]}
    report["confidence"] = project.mapLayersByName("Confidence")[0].renderer().type()
    root = project.layerTreeRoot()
    root.findLayer(project.mapLayersByName("Confidence")[0].id()).setItemVisibilityChecked(False)
    root.findLayer(classes.id()).setExpanded(True)
    for name in ("Confidence", "Pseudo-RGB"):
        root.findLayer(project.mapLayersByName(name)[0].id()).setExpanded(False)
    browser = iface.mainWindow().findChild(QDockWidget, "Browser")
    if browser is not None:  # room for the legend
        browser.hide()
    canvas = iface.mapCanvas()
    canvas.setExtent(classes.extent())
    canvas.refreshAllLayers()
    QTimer.singleShot(1500, _step(result_shot))


def result_shot():
    canvas = iface.mapCanvas()
    if canvas.isDrawing():
        QTimer.singleShot(500, _step(result_shot))
        return
    plugins["processing"].toolbox.hide()
    QTimer.singleShot(500, _step(lambda: (_save(iface.mainWindow(), "result.png"),
                                          report["steps"].append("result"), _finish())))


QTimer.singleShot(3000, check_plugin)
