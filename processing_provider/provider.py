"""The ``special`` Processing provider."""

from qgis.core import QgsProcessingProvider

from .common import icon
from .pseudorgb import PseudoRgbAlgorithm


class SpecialProvider(QgsProcessingProvider):
    def id(self):
        return "special"

    def name(self):
        return "SPECIAL hyperspectral"

    def longName(self):  # noqa: N802
        return "SPECIAL: zero-shot hyperspectral classification with CLIP"

    def icon(self):
        return icon()

    def loadAlgorithms(self):  # noqa: N802
        for alg in (PseudoRgbAlgorithm(),):
            self.addAlgorithm(alg)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]
