"""The ``special`` Processing provider."""

import importlib

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProcessingProvider

from ..core import dependencies
from ..core.spec import ALGORITHMS
from .base import SpecialAlgorithm, UnavailableAlgorithm, icon
from .settings import (
    register_settings,
    set_models_folder,
    unregister_settings,
)

# One module per algorithm, named as its id (special:<name>), in core.spec's order.
ALGORITHM_MODULES = tuple(ALGORITHMS)
_reported = set()  # missing packages already told about in this QGIS session


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
        needs = set()
        for name in ALGORITHM_MODULES:
            try:
                module = importlib.import_module(f"{__package__}.{name}")
            except ImportError:
                if not dependencies.missing(dependencies.RASTER):
                    raise  # a bug, not a missing package: keep its traceback
                alg = UnavailableAlgorithm(name)
            else:
                alg = next(cls() for cls in vars(module).values()
                           if isinstance(cls, type) and issubclass(cls, SpecialAlgorithm)
                           and cls.ALG_ID == name)
            needs.update(alg.NEEDS)
            self.addAlgorithm(alg)
        _report_missing(dependencies.missing(sorted(needs)))

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]


def _refresh_models() -> None:
    models = QgsApplication.processingRegistry().providerById("model")
    if models is not None:
        models.refreshAlgorithms()


def _report_missing(absent) -> None:
    """Once per session: the message log (with the pip command), and in desktop QGIS a
    message bar warning with an "Install dependencies…" button (special_qgis/
    dependency_installer.py: pip into a folder of the QGIS profile)."""
    if not absent or set(absent) <= _reported:
        return
    _reported.update(absent)
    text = ("Some algorithms cannot run until this is fixed. "
            + dependencies.message(absent))
    QgsMessageLog.logMessage(text, "SPECIAL hyperspectral", Qgis.MessageLevel.Warning)
    try:
        from qgis.utils import iface
    except ImportError:
        iface = None
    if iface is not None:
        from ..dependency_installer import push_missing_message

        push_missing_message(iface, absent)
