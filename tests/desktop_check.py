# Run inside desktop QGIS (`qgis --code`): report whether the special plugin loaded its
# provider, save a screenshot, and quit. Used by tests/test_desktop.py.
import json
import os

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.utils import active_plugins, iface


def _check():
    out = os.environ["SPECIAL_DESKTOP_REPORT"]
    provider = QgsApplication.processingRegistry().providerById("special")
    report = {
        "active_plugins": list(active_plugins),
        "provider": provider is not None,
        "algorithms": [a.id() for a in provider.algorithms()] if provider else [],
    }
    iface.mainWindow().grab().save(out + ".png")
    with open(out, "w") as fh:
        json.dump(report, fh)
    QgsApplication.exit(0)


QTimer.singleShot(3000, _check)
