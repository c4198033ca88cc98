"""The ``special`` Processing provider."""

from qgis.core import QgsProcessingProvider

from .applymodel import ApplyModelAlgorithm
from .classify import ClassifyAlgorithm
from .common import icon, register_settings, unregister_settings
from .noiserobust import NoiseRobustAlgorithm
from .pseudolabel import PseudoLabelAlgorithm
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

    def load(self):
        register_settings(self.name(), self.icon())
        self.refreshAlgorithms()
        return True

    def unload(self):
        unregister_settings()

    def loadAlgorithms(self):  # noqa: N802
        for alg in (PseudoRgbAlgorithm(), PseudoLabelAlgorithm(), NoiseRobustAlgorithm(),
                    ApplyModelAlgorithm(), ClassifyAlgorithm()):
            self.addAlgorithm(alg)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]
