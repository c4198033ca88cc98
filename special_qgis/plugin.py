"""The QGIS plugin object: registers the ``special`` Processing provider."""

from qgis.core import QgsApplication


def private_packages_folder() -> str:
    """Where the "Install dependencies…" button installs the plugin's Python packages:
    ``<profile>/python/special_qgis_deps/pyX.Y`` (core/pip_install/ says why)."""
    from .core.pip_install import private_folder

    return private_folder(QgsApplication.qgisSettingsDirPath())


def activate_private_packages() -> bool:
    """Put the private packages folder on sys.path, if there is one (before anything of
    the provider is imported): core/pip_install.activate says where and why."""
    from .core.pip_install import activate

    return activate(private_packages_folder())


class SpecialPlugin:
    def __init__(self, iface):
        self.iface = iface  # None inside qgis_process
        self.provider = None  # keep a reference: QGIS does not own the Python object
        activate_private_packages()

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        if self.provider is None:
            from .processing_provider.provider import SpecialProvider

            self.provider = SpecialProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        # Desktop QGIS only calls initGui; qgis_process only initProcessing.
        self.initProcessing()
        # The installer stays reachable after its message-bar item is closed.
        try:
            from qgis.PyQt.QtGui import QAction  # Qt 6
        except ImportError:
            from qgis.PyQt.QtWidgets import QAction  # Qt 5

        from .dependency_installer import BUTTON_TEXT, TAG, open_dialog

        self.install_action = QAction(BUTTON_TEXT, self.iface.mainWindow())
        self.install_action.setObjectName("special_qgis_install_dependencies_action")
        self.install_action.triggered.connect(lambda *_: open_dialog(self.iface))
        self.iface.addPluginToMenu(TAG, self.install_action)

    def unload(self):
        action = getattr(self, "install_action", None)
        if action is not None:
            from .dependency_installer import TAG

            self.iface.removePluginMenu(TAG, action)
            self.install_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
