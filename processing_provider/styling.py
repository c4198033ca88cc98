"""How the outputs look when Processing loads them: class rasters with their legend,
confidence with a ramp, pseudo-RGB stretched; also saved as each file's default style."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsRasterShader,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

_post_processors = []  # QGIS does not keep the Python objects alive: we must.


class _RasterStyler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, apply: Callable[[QgsRasterLayer], None]) -> None:
        super().__init__()
        self._apply = apply

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if isinstance(layer, QgsRasterLayer):
            self._apply(layer)
            layer.triggerRepaint()


def _on_load(context, path: str, name: str, apply: Callable[[QgsRasterLayer], None]) -> None:
    """Style ``path`` now (a default .qml beside it, which QGIS applies whenever the file is
    opened later, from any route) and when Processing loads it into the project."""
    layer = QgsRasterLayer(path, name, "gdal")
    if layer.isValid():
        apply(layer)
        # The layer's default style (a .qml named as the file); saveDefaultStyle is
        # deprecated from 3.40 on, saveNamedStyle does the same on 3.22 to 4.x.
        layer.saveNamedStyle(os.path.splitext(path)[0] + ".qml")
    if not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    styler = _RasterStyler(apply)
    _post_processors.append(styler)
    details.setPostProcessor(styler)


def style_class_raster(context, path: str, name: str, names: Sequence[str],
                       colours: Sequence[Sequence[int]]) -> None:
    """Show ``path`` as a paletted layer with the class names as legend labels."""
    def apply(layer):
        classes = [QgsPalettedRasterRenderer.Class(i, QColor(*rgb[:3]), label)
                   for i, (label, rgb) in enumerate(zip(names, colours, strict=True), start=1)]
        layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))

    _on_load(context, path, name, apply)


def style_confidence_raster(context, path: str, name: str) -> None:
    """Show a [0, 1] confidence raster with a viridis ramp (dark = unsure)."""
    def apply(layer):
        ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
        shader_fn = QgsColorRampShader(0.0, 1.0, ramp)
        shader_fn.classifyColorRamp(5, -1, QgsRectangle(), None)
        shader = QgsRasterShader(0.0, 1.0)
        shader.setRasterShaderFunction(shader_fn)
        renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
        renderer.setClassificationMin(0.0)
        renderer.setClassificationMax(1.0)
        layer.setRenderer(renderer)

    _on_load(context, path, name, apply)


def style_rgb_raster(context, path: str, name: str, bands: Sequence[int] = (1, 2, 3)) -> None:
    """Show ``bands`` (1-based red, green, blue) as RGB stretched to their 2–98 %
    cumulative counts (the values are unstretched reflectance or radiance)."""
    def apply(layer):
        renderer = QgsMultiBandColorRenderer(layer.dataProvider(), *bands)
        layer.setRenderer(renderer)
        layer.setContrastEnhancement(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum,
                                     QgsRasterMinMaxOrigin.Limits.CumulativeCut)

    _on_load(context, path, name, apply)

