"""The ``special`` Processing provider."""

from qgis.core import QgsApplication, QgsProcessingProvider

from .accuracy import AccuracyAlgorithm
from .applymodel import ApplyModelAlgorithm
from .classify import ClassifyAlgorithm
from .common import icon, register_settings, set_models_folder, unregister_settings
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
        # Processing's model provider reloads its models when a provider is added (us, now),
        # or, when it is added after us (qgis_process loads plugins first), when it is.
        set_models_folder(True)
        QgsApplication.processingRegistry().providerAdded.connect(self._provider_added)
        self.refreshAlgorithms()
        return True

    def unload(self):
        QgsApplication.processingRegistry().providerAdded.disconnect(self._provider_added)
        unregister_settings()
        set_models_folder(False)
        _refresh_models()

    def _provider_added(self, provider_id):
        if provider_id == "model":
            set_models_folder(True)
            _refresh_models()

    def loadAlgorithms(self):  # noqa: N802
        for alg in (PseudoRgbAlgorithm(), PseudoLabelAlgorithm(), NoiseRobustAlgorithm(),
                    ApplyModelAlgorithm(), ClassifyAlgorithm(), AccuracyAlgorithm()):
            self.addAlgorithm(alg)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]


def _refresh_models() -> None:
    models = QgsApplication.processingRegistry().providerById("model")
    if models is not None:
        models.refreshAlgorithms()
