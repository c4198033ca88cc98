"""The QGIS plugin object: registers the ``special`` Processing provider."""

from qgis.core import QgsApplication


class SpecialPlugin:
    def __init__(self, iface):
        self.iface = iface  # None inside qgis_process
        self.provider = None  # keep a reference: QGIS does not own the Python object

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        if self.provider is None:
            from .processing_provider.provider import SpecialProvider

            self.provider = SpecialProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        # Desktop QGIS only calls initGui; qgis_process only initProcessing.
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
